"""PyTorch -> ONNX with ``torch.onnx.export`` (the dynamo exporter, torch's default in 2.x).

Sources: a ``torch.export`` ``.pt2`` archive (reopened by ``converters.safety.pt2.load_pt2_safely``; no user
code needed, nothing from the file runs without trust), a
TorchScript archive (exported with the TorchScript-based exporter, since the dynamo exporter cannot trace
a ScriptModule), or a pickled ``nn.Module`` (only with ``trust``: unpickling runs code from the file).

Choices, and why:
* ``optimize=True`` by default. The optimised graph is what people deploy and the only form onnx2tf and
  onnx2torch read (the unoptimised one keeps ``CastLike``/``Constant`` chains that both reject). It folds
  BatchNorm into Conv and drops Dropout, so 4 of 19 module calls of a ResNet block lose their own tensor.
  ``onnx_optimize=False`` keeps one node group per module (full per-layer parity) and is honoured only
  when ONNX is the final target.
* One file (``external_data=False``) unless the weights pass 2 GB (protobuf's limit), then
  ``<output>.data`` beside it.
* Correspondence from the exporter's ``pkg.torch.onnx.name_scopes`` node metadata: a module call is the
  last non-Constant node whose scope chain contains the module path; its output 0 is the module output.
"""
from __future__ import annotations

import ast
import os
import re
import warnings

from ..errors import TensorbridgeError, TrustRequired, UnsupportedOp
from ..tbmap import write_map
from .common import tool_version
from .options import BadOption, ConvertOptions

TWO_GB = 2 * 1024 ** 3


def _output_keys(ep) -> list[str] | None:
    """The names a program gives its outputs (a dict, or a library's output class such as transformers'
    ``BaseModelOutput``, whose keys are ``last_hidden_state``, ``pooler_output``), when every output is one
    tensor; ONNX outputs then keep those names instead of the last op's (``layer_norm_4``)."""
    try:
        spec = ep.call_spec.out_spec
        keys = spec.context if spec is not None and spec.type is dict else None
        if keys and all(isinstance(k, str) for k in keys) and all(c.is_leaf() for c in spec.children_specs):
            return list(keys)
    except Exception:
        return None
    return None


def load_torch(src: str, family: str, opts: ConvertOptions):
    """(module or ExportedProgram, example args, input names, is_exported_program)."""
    import torch

    if family == "torch.export":
        from ..safety.pt2 import load_pt2_safely
        ep = load_pt2_safely(src, trust=opts.trust)
        names, args = [], []
        specs = [s for s in ep.graph_signature.input_specs if s.kind.name == "USER_INPUT"]
        opts.check_input_names([s.arg.name for s in specs], src)
        for spec in specs:
            node = next(n for n in ep.graph.nodes if n.op == "placeholder" and n.name == spec.arg.name)
            val = node.meta.get("val")
            if val is None or not hasattr(val, "shape"):
                raise TensorbridgeError(f"{src}: input '{spec.arg.name}' is not a tensor; only tensor "
                                        f"inputs can be exported to ONNX")
            names.append(spec.arg.name)
            shape = opts.shape_for(spec.arg.name, len(names) - 1, len(specs)) or \
                [int(d) if isinstance(d, int) or str(d).isdigit() else 1 for d in val.shape]
            args.append(torch.zeros([int(d) for d in shape], dtype=val.dtype))
        return ep, tuple(args), names, True
    if family == "torchscript":
        from ..safety.torchscript import check_torchscript
        check_torchscript(src, trust=opts.trust, action="run")
        model = torch.jit.load(src, map_location="cpu")
    elif family == "torch.pickle":
        if not opts.trust:
            raise TrustRequired(f"{src}: a pickled PyTorch file runs code from the file when loaded; "
                                f"convert it only if you trust it (--trust), or save it with torch.export")
        from ..formats.pytorch.user_code import add_user_folders_to_path
        add_user_folders_to_path(src)  # the user's own modules: beside the file, or where they work
        model = torch.load(src, map_location="cpu", weights_only=False)
        if not isinstance(model, torch.nn.Module):
            raise TensorbridgeError(f"{src}: holds {type(model).__name__}, not a whole model (nn.Module); "
                                    f"weights alone cannot be converted: load them into the model's code "
                                    f"and save it with torch.export.save")
    else:
        raise TensorbridgeError(f"{src}: {family} is not a PyTorch model file")
    model.eval()
    shapes = opts.input_shapes or {}
    if not shapes:
        raise BadOption(f"{src}: {family} files do not record input shapes; give them with "
                        f"--input-shape NAME:1,3,224,224 (one per input)")
    names = list(shapes.keys())
    names = [n if n and not n.isdigit() else f"input_{i}" for i, n in enumerate(names)]
    args = tuple(torch.zeros(s) for s in shapes.values())
    return model, args, names, False


def run(src: str, out: str, opts: ConvertOptions, *, family: str, final: bool, log=print, **_) -> dict:
    """Export ``src`` to ONNX at ``out``; write the sidecar; return {"output", "extra"}."""
    import onnx
    import torch

    model, args, names, is_ep = load_torch(src, family, opts)
    optimize = True if (opts.onnx_optimize is None or not final) else bool(opts.onnx_optimize)
    if opts.onnx_optimize is False and not final:
        log("note: keeping the unoptimised ONNX only applies when ONNX is the final target; "
            "the next converter needs the optimised graph")
    nbytes = _param_bytes(model)
    external = nbytes > TWO_GB
    dynamic_shapes = None
    if opts.dynamic_batch:
        batch = torch.export.Dim("batch", min=1, max=4096)
        dynamic_shapes = tuple({0: batch} if a.dim() > 0 else None for a in args)
    kwargs = dict(external_data=external, optimize=optimize, input_names=opts.input_names or names,
                  output_names=opts.output_names or (_output_keys(model) if is_ep else None))
    if opts.opset:
        kwargs["opset_version"] = int(opts.opset)
    log(f"torch.onnx.export(dynamo=True, optimize={optimize}, external_data={external})")
    try:
        if family == "torchscript":
            # The dynamo exporter cannot trace a ScriptModule; the TorchScript-based exporter can.
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)
                dyn_axes = {n: {0: "batch"} for n in kwargs["input_names"]} if opts.dynamic_batch else None
                torch.onnx.export(model, args, f=out, dynamo=False, opset_version=opts.opset or 17,
                                  input_names=kwargs["input_names"], output_names=opts.output_names,
                                  dynamic_axes=dyn_axes)
        elif is_ep and not opts.dynamic_batch and not opts.input_shapes:
            try:
                torch.onnx.export(model, (), f=out, dynamo=True, **kwargs)
            except Exception as exc:
                # The dynamo exporter re-traces the program on fake tensors, and a saved program's strides
                # can then forbid a view that ran fine (T5: "Cannot view a tensor with shape [1, 8, 2, 16]
                # and strides …"). The program is one fixed graph: the TorchScript-based exporter traces
                # it on real tensors instead.
                log(f"the dynamo exporter failed ({_first_line(exc)}); exporting the program with the "
                    f"TorchScript-based exporter (dynamo=False)")
                _export_program_traced(model, args, out, kwargs, opts)
        else:
            example = args
            if opts.dynamic_batch:
                # torch.export specialises dims whose example size is 1: trace with a batch of 2.
                args = tuple(torch.cat([a, a]) if a.dim() > 0 and a.shape[0] == 1 else a for a in args)
            if is_ep:
                # Re-export the program's graph with the new shapes; its guards pin the old ones.
                ep = _reexport(src, model, args, dynamic_shapes, example)
                torch.onnx.export(ep, (), f=out, dynamo=True, **kwargs)
            else:
                torch.onnx.export(model, args, f=out, dynamo=True, dynamic_shapes=dynamic_shapes, **kwargs)
    except TensorbridgeError:
        raise
    except Exception as exc:
        raise UnsupportedOp(f"{src}: torch.onnx.export failed: {_first_line(exc)}") from exc
    extra = [p for p in (out + ".data",) if os.path.exists(p)]
    mp = onnx.load(out, load_external_data=False)
    if opts.dynamic_batch and not external and _name_batch_dim(mp):
        onnx.save(mp, out)
    _write_map(src, out, family, mp, names, optimize)
    return {"output": out, "extra": extra}


def _export_program_traced(ep, args, out: str, kwargs: dict, opts: ConvertOptions) -> None:
    """``torch.onnx.export(dynamo=False)`` of an exported program: its module is traced with ``args``
    (one per user input, in the program's order; keyword inputs by name)."""
    import torch

    gm = ep.module()
    for p in gm.parameters():
        p.requires_grad_(False)
    from ..safety.pt2 import keyword_inputs

    specs = [s.arg.name for s in ep.graph_signature.input_specs if s.kind.name == "USER_INPUT"]
    kw_names = keyword_inputs(ep)

    class Program(torch.nn.Module):
        def __init__(self):
            super().__init__()
            object.__setattr__(self, "_gm", gm)  # not a submodule: the exporter's train(False) would reach it

        def forward(self, *flat):
            npos = len(flat) - len(kw_names)
            return self._gm(*flat[:npos], **dict(zip(kw_names, flat[npos:])))

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(Program(), tuple(args), f=out, dynamo=False, opset_version=opts.opset or 17,
                          input_names=kwargs.get("input_names") or specs, output_names=kwargs.get("output_names"))


def _reexport(src, ep, args, dynamic_shapes, example):
    import torch

    mod = ep.module(check_guards=False)
    try:
        new = torch.export.export(mod, args, dynamic_shapes=dynamic_shapes)
    except Exception as exc:
        raise TensorbridgeError(f"{src}: the exported program was traced with fixed input shapes and cannot "
                                f"be re-traced with a dynamic batch or new shapes ({_first_line(exc)}); "
                                f"export it again with torch.export dynamic_shapes") from exc
    with torch.no_grad():  # the new program must compute what the old one did (on the old shapes)
        a, b = ep.module()(*example), new.module()(*example)
    a = a[0] if isinstance(a, (tuple, list)) else a
    b = b[0] if isinstance(b, (tuple, list)) else b
    if not torch.allclose(a, b, rtol=1e-4, atol=1e-5):
        raise TensorbridgeError(f"{src}: re-tracing the exported program with new input shapes changed its "
                                f"results; export it again from the model's code with dynamic_shapes")
    return new


def _name_batch_dim(mp) -> bool:
    """Call the exporter's batch symbol (``s77``) ``batch`` everywhere; True if anything changed."""
    g = mp.graph
    syms = {i.type.tensor_type.shape.dim[0].dim_param for i in g.input
            if i.type.tensor_type.shape.dim and i.type.tensor_type.shape.dim[0].dim_param}
    if len(syms) != 1:
        return False
    (sym,) = syms
    changed = False
    for vi in list(g.input) + list(g.output) + list(g.value_info):
        for d in vi.type.tensor_type.shape.dim:
            if d.dim_param == sym:
                d.dim_param = "batch"
                changed = True
    return changed


def _param_bytes(model) -> int:
    try:
        sd = model.state_dict()
        return sum(t.numel() * t.element_size() for t in sd.values() if hasattr(t, "numel"))
    except Exception:
        return 0


def _first_line(exc: BaseException) -> str:
    """The reason an export failed: torch.onnx wraps the cause in a long, coloured "Next steps" text; the
    cause itself ("shape '[-1, 768]' is invalid for input of size 2048") is what the user needs."""
    from ..errors import first_line, root_cause

    cause = root_cause(exc)
    text = str(cause).strip()
    summary = re.search(r"## Exception summary\s*\n\s*\n?(.+)", text)
    msg = first_line(summary.group(1) if summary else text, 300) or type(cause).__name__
    return f"{type(cause).__name__}: {msg}"


def module_outputs(mp) -> list[dict]:
    """Module path -> ONNX tensor, from the dynamo exporter's name_scopes metadata (see module docs)."""
    last: dict[str, tuple[str, str]] = {}   # module path -> (tensor, node)
    for node in mp.graph.node:
        if node.op_type == "Constant" or not node.output:
            continue
        meta = {p.key: p.value for p in node.metadata_props}
        raw = meta.get("pkg.torch.onnx.name_scopes")
        if not raw:
            continue
        try:
            scopes = ast.literal_eval(raw)
        except (ValueError, SyntaxError):
            continue
        classes = []
        try:
            classes = ast.literal_eval(meta.get("pkg.torch.onnx.class_hierarchy", "[]"))
        except (ValueError, SyntaxError):
            pass
        for i, scope in enumerate(scopes[:-1]):
            if not scope:
                continue
            last[scope] = (node.output[0], node.name, classes[i] if i < len(classes) else None,
                           meta.get("pkg.onnxscript.rewriter.rule_name"))
    out = []
    for scope, (tensor, node, cls, rule) in last.items():
        entry = {"source": scope, "source_kind": "module", "target": tensor, "target_node": node,
                 "layout": None}
        if cls:
            entry["source_class"] = cls
        if rule:
            entry["fused_by"] = rule
        out.append(entry)
    return out


def _write_map(src, out, family, mp, names, optimize) -> None:
    g = mp.graph
    init = {i.name for i in g.initializer}
    onnx_inputs = [i.name for i in g.input if i.name not in init]
    inputs = [{"source": s, "target": t, "layout": None} for s, t in zip(names, onnx_inputs)]
    outputs = [{"source": f"output_{i}", "target": o.name, "layout": None} for i, o in enumerate(g.output)]
    tensors = module_outputs(mp)
    notes = []
    if optimize:
        notes.append("ONNX optimizer on: BatchNorm folded into Conv (the Conv keeps the BatchNorm's scope) "
                     "and Dropout removed, so those module calls have no tensor of their own")
    if family == "torchscript":
        notes.append("TorchScript source: the TorchScript-based exporter records no module scopes; "
                     "only inputs and outputs are mapped")
    notes.append("repeated calls of one module share a scope; the last call's output is recorded")
    write_map(out, hop="onnx_from_torch", tool=tool_version("torch"), source=src, source_format=family,
                  target_format="onnx", inputs=inputs, outputs=outputs, tensors=tensors, notes=notes)
