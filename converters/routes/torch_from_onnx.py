"""ONNX -> PyTorch: onnx2torch rebuilds the graph as modules, ``torch.export`` saves it as a ``.pt2``.

The ``.pt2`` reopens with ``torch.export.load`` alone: no onnx2torch and no user code is needed.

Workarounds (measured with onnx2torch 1.5.15, torch 2.13):
* onnx2torch imports torchvision, whose registry wheel is a CUDA build that fails with CPU torch; a stub
  ``torchvision.ops`` is put in ``sys.modules`` (only its NMS / RoiAlign converters use it, and they then
  raise a clear error). This runs in the worker process only.
* dynamo-exported ONNX: Reshape carries ``allowzero=1`` (not implemented in onnx2torch): set to 0 where the
  shape is a constant without zeros (the two agree then); opset >= 19 is converted down to 17
  (``ReduceMean-18`` is not implemented either), dropping the ``noop_with_empty_axes`` attribute the
  down-conversion leaves behind.
* ``torch.export`` cannot trace onnx2torch's modules that read constant tensors as Python values
  (Squeeze/Unsqueeze axes from initializers, as tf2onnx writes them): those are replaced with their static
  forms. When export still meets data-dependent code, the graph is traced on the example input instead
  (``make_fx``), which fixes every shape to that input's; the result says so.

Correspondence: onnx2torch registers one submodule per ONNX node under the node's exact name; the
exported program keeps that module path in each node's ``nn_module_stack``.
"""
from __future__ import annotations

import sys
import types

from ..errors import TensorbridgeError, UnsupportedOp, first_line
from ..onnx_fold import fold_constants, static_shapes
from ..tbmap import write_map
from .common import tool_version
from .options import ConvertOptions


def _stub_torchvision() -> None:
    if "torchvision" in sys.modules and "torchvision.ops" in sys.modules:
        return
    tv = types.ModuleType("torchvision")
    ops = types.ModuleType("torchvision.ops")

    def _missing(*_a, **_k):
        raise UnsupportedOp("this model needs torchvision (NMS / RoiAlign), which is not installed for CPU")

    ops.nms = ops.roi_align = ops.box_convert = ops.batched_nms = _missing
    tv.ops = ops
    sys.modules["torchvision"] = tv
    sys.modules["torchvision.ops"] = ops


def import_onnx2torch():
    """Import onnx2torch with the torchvision stub, then take the stub out of ``sys.modules`` again so
    that other libraries (torch.onnx probes for torchvision) do not mistake it for the real package."""
    real = "torchvision" in sys.modules
    _stub_torchvision()
    try:
        import onnx2torch
    finally:
        if not real:
            sys.modules.pop("torchvision", None)
            sys.modules.pop("torchvision.ops", None)
    return onnx2torch


def _inline_identity_weights(model) -> None:
    """Replace ``Identity(initializer)`` nodes by a copy of the initializer under the output's name.

    The legacy torch exporter shares equal weights this way (for example folded Conv biases), and
    onnx2torch looks weights up in the initializers only (``KeyError: 'onnx::Conv_504'``).
    """
    g = model.graph
    inits = {t.name: t for t in g.initializer}
    graph_outputs = {o.name for o in g.output}
    keep = []
    for n in g.node:
        if n.op_type == "Identity" and len(n.input) == 1 and n.input[0] in inits \
                and n.output[0] not in graph_outputs and n.output[0] not in inits:
            t = g.initializer.add()
            t.CopyFrom(inits[n.input[0]])
            t.name = n.output[0]
            inits[t.name] = t
        else:
            keep.append(n)
    if len(keep) != len(g.node):
        del g.node[:]
        g.node.extend(keep)


def _global_max_pool_as_reduce(model) -> int:
    """``GlobalMaxPool`` (no onnx2torch converter) as the ``ReduceMax`` over the spatial axes it is, or from
    opset 18 on (where onnx2torch has no ``ReduceMax`` either) a ``MaxPool`` over the whole, static, window."""
    from onnx import helper

    nodes = [n for n in model.graph.node if n.op_type == "GlobalMaxPool" and n.domain in ("", "ai.onnx")]
    if not nodes:
        return 0
    shapes = static_shapes(model)
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 17)
    done = 0
    for n in nodes:
        shape = shapes.get(n.input[0]) or []
        if len(shape) < 3:
            continue
        axes = list(range(2, len(shape)))
        if opset >= 18:
            if not all(shape[2:]):
                continue
            new = helper.make_node("MaxPool", [n.input[0]], list(n.output), name=n.name, kernel_shape=shape[2:])
        else:
            new = helper.make_node("ReduceMax", [n.input[0]], list(n.output), name=n.name, axes=axes, keepdims=1)
        pos = list(model.graph.node).index(n)
        del model.graph.node[pos]
        model.graph.node.insert(pos, new)
        done += 1
    return done


def _explicit_same_pads(model) -> int:
    """``auto_pad=SAME_UPPER/SAME_LOWER`` (tf2onnx writes it for grouped convolutions; onnx2torch has
    no such mode) as the explicit ``pads`` it stands for: where the spatial input shape is known, or
    where every stride is 1 (the padding is then ``(k - 1) * dilation`` whatever the size)."""
    import math

    from onnx import helper

    ops = ("Conv", "MaxPool", "AveragePool", "LpPool")  # not ConvTranspose: its SAME padding is another rule

    def auto_pad(n):
        a = next((a for a in n.attribute if a.name == "auto_pad"), None)
        return a.s.decode() if a is not None else ""

    nodes = [n for n in model.graph.node if n.op_type in ops and auto_pad(n) in ("SAME_UPPER", "SAME_LOWER")]
    if not nodes:
        return 0
    shapes = static_shapes(model)
    inits = {t.name: list(t.dims) for t in model.graph.initializer}
    done = 0
    for n in nodes:
        attrs = {a.name: helper.get_attribute_value(a) for a in n.attribute}
        k = attrs.get("kernel_shape") or (inits.get(n.input[1], [])[2:] if n.op_type == "Conv" else None)
        if not k:
            continue
        strides = attrs.get("strides") or [1] * len(k)
        dil = attrs.get("dilations") or [1] * len(k)
        spatial = (shapes.get(n.input[0]) or [])[2:]
        if len(spatial) != len(k) or not all(spatial):
            if any(st != 1 for st in strides):
                continue  # the padding depends on a size nobody knows yet
            spatial = [None] * len(k)
        begin, end = [], []
        for size, kk, st, dd in zip(spatial, k, strides, dil):
            total = (kk - 1) * dd if size is None else \
                max((math.ceil(size / st) - 1) * st + (kk - 1) * dd + 1 - size, 0)
            small, large = total // 2, total - total // 2
            b, e = (small, large) if auto_pad(n) == "SAME_UPPER" else (large, small)
            begin.append(b)
            end.append(e)
        keep = [a for a in n.attribute if a.name not in ("auto_pad", "pads")]
        del n.attribute[:]
        n.attribute.extend(keep)
        n.attribute.append(helper.make_attribute("pads", begin + end))
        done += 1
    return done


def _module_safe_names(model) -> int:
    """Node names without ``,`` and ``;``: onnx2torch names each submodule after its node, and the
    ``.pt2`` stores module paths in ``nn_module_stack`` text joined with those two characters, so a
    tf2onnx name such as ``…/Relu6;…/batchnorm/add_1`` makes the saved program unreadable
    (``torch.export.load``: "expected metadata_split to return 3 parts")."""
    import re

    names = {n.name for n in model.graph.node}
    done = 0
    for n in model.graph.node:
        if "," in n.name or ";" in n.name:
            new = base = re.sub(r"[,;]", "_", n.name)
            k = 1
            while new in names:
                new, k = f"{base}_{k}", k + 1
            names.add(new)
            n.name = new
            done += 1
    return done


def prepare_onnx(model):
    """Rewrite what onnx2torch cannot read (see module docs); returns the (possibly new) ModelProto."""
    import numpy as np
    import onnx
    from onnx import numpy_helper

    fold_constants(model)  # weights computed by Constant / ConstantOfShape / Identity chains
    _inline_identity_weights(model)
    _module_safe_names(model)
    consts = {i.name: i for i in model.graph.initializer}
    for n in model.graph.node:
        if n.op_type == "Constant":
            for a in n.attribute:
                if a.name == "value":
                    consts[n.output[0]] = a.t
    for n in model.graph.node:
        if n.op_type != "Reshape":
            continue
        for a in n.attribute:
            if a.name == "allowzero" and a.i == 1:
                shape = consts.get(n.input[1]) if len(n.input) > 1 else None
                if shape is not None and not np.any(numpy_helper.to_array(shape) == 0):
                    a.i = 0
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 17)
    if opset > 18:
        model = onnx.version_converter.convert_version(model, 17)
        for n in model.graph.node:
            if n.op_type in ("ReduceMean", "ReduceSum", "ReduceMax", "ReduceMin", "ReduceProd"):
                keep = [a for a in n.attribute if a.name != "noop_with_empty_axes" or a.i]
                if len(keep) != len(n.attribute):
                    del n.attribute[:]
                    n.attribute.extend(keep)
    _global_max_pool_as_reduce(model)
    _explicit_same_pads(model)
    return model


UPGRADE_OPSET = 17


def _upgraded(model, log):
    """``model`` converted to opset :data:`UPGRADE_OPSET` by ``onnx.version_converter`` (then prepared
    again), or None when it is already that new or the converter cannot upgrade it."""
    import onnx

    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), UPGRADE_OPSET)
    if opset >= UPGRADE_OPSET:
        return None
    inputs = {i.name for i in model.graph.input}
    if model.ir_version < 4 and any(t.name not in inputs for t in model.graph.initializer):
        # IR 3 wants every initializer listed as an input too; files written without that run everywhere,
        # but the version converter stops at the first one ("Input W is undefined"). IR 4 allows it.
        fixed = onnx.ModelProto()
        fixed.CopyFrom(model)
        fixed.ir_version = 4
        model = fixed
    try:
        up = onnx.version_converter.convert_version(model, UPGRADE_OPSET)
    except Exception as exc:
        log(f"onnx.version_converter could not upgrade opset {opset} ({type(exc).__name__}); keeping it")
        return None
    log(f"upgraded the model from opset {opset} to {UPGRADE_OPSET} for onnx2torch (onnx.version_converter)")
    return prepare_onnx(up)


def _static_axes(gm) -> int:
    """Replace Squeeze/Unsqueeze modules fed constant axes with their static forms; returns the count."""
    import torch
    from onnx2torch.node_converters import squeeze as sq
    from onnx2torch.node_converters import unsqueeze as usq

    swaps = 0
    for node in list(gm.graph.nodes):
        if node.op != "call_module" or len(node.args) != 2:
            continue
        mod = gm.get_submodule(node.target)
        axes_node = node.args[1]
        if not (isinstance(axes_node, torch.fx.Node) and axes_node.op == "get_attr"):
            continue
        obj = gm
        for part in axes_node.target.split("."):
            obj = getattr(obj, part)
        if not isinstance(obj, torch.Tensor) or obj.dtype not in (torch.int64, torch.int32):
            continue
        axes = [int(v) for v in obj.reshape(-1).tolist()]
        if isinstance(mod, sq.OnnxSqueezeDynamicAxes):
            new = sq.OnnxSqueezeStaticAxes(axes=axes)
        elif type(mod).__name__ == "OnnxUnsqueezeDynamicAxes" and hasattr(usq, "OnnxUnsqueezeStaticAxes"):
            new = usq.OnnxUnsqueezeStaticAxes(axes=axes)
        else:
            continue
        parent, _, name = node.target.rpartition(".")
        setattr(gm.get_submodule(parent) if parent else gm, name, new)
        node.args = (node.args[0],)
        swaps += 1
    if swaps:
        gm.graph.eliminate_dead_code()
        gm.recompile()
    return swaps


def _example_inputs(model, opts: ConvertOptions):
    import numpy as np
    import torch
    from onnx import helper

    init = {i.name for i in model.graph.initializer}
    inputs = [i for i in model.graph.input if i.name not in init]
    opts.check_input_names([i.name for i in inputs], "the ONNX model")
    args, dyn = [], []
    for idx, vi in enumerate(inputs):
        t = vi.type.tensor_type
        user = opts.shape_for(vi.name, idx, len(inputs))
        dims = [d.dim_value if d.HasField("dim_value") and d.dim_value > 0 else None for d in t.shape.dim]
        if user:
            dims = list(user)
        if any(d is None for d in dims[1:]):
            raise TensorbridgeError(f"input '{vi.name}' has unknown dims {dims}; give its shape with "
                                    f"--input-shape {vi.name}:...")
        batch_dynamic = bool(dims) and dims[0] is None
        if dims and dims[0] is None:
            dims[0] = 2  # 2, not 1: torch.export specialises dims of size 1
        np_dtype = helper.tensor_dtype_to_np_dtype(t.elem_type)
        if np.issubdtype(np_dtype, np.floating):
            arr = np.random.default_rng(0).random(dims).astype(np_dtype)
        elif np_dtype == np.bool_:
            arr = np.ones(dims, dtype=np_dtype)
        else:
            # Ones, not zeros: an integer input may be a shape (Expand's, Tile's repeats), where 1 is the
            # value that fits any tensor and 0 empties it; as token ids or indices 1 is as valid as 0.
            arr = np.ones(dims, dtype=np_dtype)
        args.append(torch.from_numpy(arr))
        dyn.append(batch_dynamic or opts.dynamic_batch)
    return inputs, tuple(args), dyn


def run(src: str, out: str, opts: ConvertOptions, *, log=print, **_) -> dict:
    """Convert ONNX ``src`` to a torch.export archive at ``out``; write the sidecar."""
    import onnx
    import torch

    import_onnx2torch()
    import onnx2torch

    model = onnx.load(src)
    model = prepare_onnx(model)
    try:
        try:
            gm = onnx2torch.convert(model)
        except NotImplementedError:
            # onnx2torch converts most ops from a given opset version on: an old file's ops (Upsample-9,
            # Resize-10, Clip-6 …) often convert once ONNX's own version converter has upgraded them
            upgraded = _upgraded(model, log)
            if upgraded is None:
                raise
            gm = onnx2torch.convert(upgraded)
            model = upgraded
    except NotImplementedError as exc:
        text = str(exc)
        op = text.split("operation_type='")[1].split("'")[0] if "operation_type='" in text else None
        ver = text.split("version=")[1].split(")")[0] if "version=" in text else "?"
        node = next((n.name for n in model.graph.node if n.op_type == op), None)
        what = (f"ONNX op '{op}' (version {ver}{f', node {node}' if node else ''})" if op else text[:200])
        raise UnsupportedOp(f"{src}: {what} is not supported by onnx2torch") from None
    gm.eval()
    swaps = _static_axes(gm)
    inputs, args, dyn = _example_inputs(model, opts)
    specialised = False
    notes = []
    batch = torch.export.Dim("batch", min=1, max=4096)
    dynamic_shapes = tuple({0: batch} if d and a.dim() > 0 else None for a, d in zip(args, dyn))
    try:
        with torch.no_grad():
            ep = torch.export.export(gm, args, dynamic_shapes=dynamic_shapes if any(dyn) else None)
    except Exception as first:
        log(f"torch.export of the onnx2torch graph failed ({type(first).__name__}: "
            f"{first_line(first)}); retrying with static shapes")
        # Static from here on: a dynamic batch is fixed to 1, the batch a model is usually run with (the
        # 2 above only keeps torch.export from specialising the dim while it is dynamic).
        args = tuple(a[:1] if d and a.dim() > 0 and a.shape[0] == 2 else a for a, d in zip(args, dyn))
        try:
            with torch.no_grad():
                ep = torch.export.export(gm, args)
        except Exception:
            from torch.fx.experimental.proxy_tensor import make_fx
            try:
                with torch.no_grad():
                    flat = make_fx(gm, tracing_mode="real", _error_on_data_dependent_ops=False)(*args)
                    ep = torch.export.export(flat, args)
            except Exception as exc:
                raise UnsupportedOp(f"{src}: torch.export cannot trace the model onnx2torch built "
                                    f"({type(exc).__name__}: {first_line(exc)})") from exc
            specialised = True
            notes.append("traced on the example input: every shape is fixed to "
                         + ", ".join(str(list(a.shape)) for a in args)
                         + " and node-to-module names are not kept")
        else:
            notes.append("exported with static shapes: the batch is fixed to "
                         + ", ".join(str(int(a.shape[0])) for a in args if a.dim() > 0))
    torch.export.save(ep, out)
    # Reopen once: the archive must load without onnx2torch or any user code.
    torch.export.load(out)
    _write_map(src, out, model, gm, ep, inputs, specialised, notes, swaps)
    return {"output": out, "extra": [], "specialised": specialised}


def _write_map(src, out, model, gm, ep, inputs, specialised, notes, swaps) -> None:
    user_inputs = [s.arg.name for s in ep.graph_signature.input_specs if s.kind.name == "USER_INPUT"]
    ins = [{"source": vi.name, "target": t, "layout": None} for vi, t in zip(inputs, user_inputs)]
    user_outputs = [getattr(s.arg, "name", None) for s in ep.graph_signature.output_specs
                    if s.kind.name == "USER_OUTPUT"]
    outs = [{"source": o.name, "target": t, "layout": None} for o, t in zip(model.graph.output, user_outputs)]
    modules = dict(gm.named_modules())
    # ONNX node name -> last exported-program node inside that module (its output is the node's output)
    last_fx: dict[str, str] = {}
    if not specialised:
        for n in ep.graph.nodes:
            stack = n.meta.get("nn_module_stack") or {}
            if stack:
                path = list(stack.values())[-1][0]
                last_fx[path] = n.name
    tensors = []
    for node in model.graph.node:
        if node.name in modules and node.output:
            e = {"source": node.output[0], "source_node": node.name, "source_op": node.op_type,
                 "target": node.name, "target_kind": "module", "layout": None}
            fx = last_fx.get(node.name) or last_fx.get(node.name.replace("/", "."))
            if fx:
                e["target_fx_node"] = fx
            tensors.append(e)
    notes = list(notes) + ["targets are onnx2torch module paths (the ONNX node names); hook a module "
                           "to read the tensor"]
    if swaps:
        notes.append(f"{swaps} Squeeze/Unsqueeze module(s) with constant axes were replaced by their "
                     f"static forms so that torch.export can trace them")
    write_map(out, hop="torch_from_onnx", tool=f"{tool_version('onnx2torch')}, {tool_version('torch')}",
                  source=src, source_format="onnx", target_format="torch.export", inputs=ins,
                  outputs=outs, tensors=tensors, notes=notes)
