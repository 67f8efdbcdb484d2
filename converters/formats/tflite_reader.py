"""TFLite reader: parses the flatbuffer with the TFLite schema module; the model is never run.

* Subgraph 0 is ``Model.graph``; every other subgraph (bodies of WHILE/IF/CALL_ONCE, decomposed functions)
  is in ``Model.functions`` under its name (or ``subgraph_<i>``), and control-flow nodes point at the
  bodies they call in ``Node.subgraphs``.
* One :class:`Node` per operator: ``op_type`` is the builtin operator name (``CONV_2D``) or the custom
  code of a custom op (``domain`` = ``custom``); ``attrs`` are the builtin options (activation and padding
  by name). Node name = first name of its first output tensor (unique-suffixed); ``scope`` = that name's
  prefix before the last ``/`` (TFLite joins fused tensor names with ``;``: the first one is used).
* Values are tensors: shape from ``shape_signature`` when present (``-1`` -> ``None``) else ``shape``;
  dtype from the tensor type. Constant tensors (a buffer with data) are graph initializers whose data is
  read lazily from the file (inline buffers and the offset/size buffers of >2 GB models alike).
  Quantization parameters (scale, zero point, axis) of a node's tensors are in ``attrs["quantization"]``.
* ``param_count`` = elements of every constant tensor (after conversion: folded BN, shape constants too).
* SignatureDefs: ``Model.signatures[key]`` shares the subgraph's nodes, with inputs/outputs in the
  signature's order; ``extra["signature_io"]`` maps signature names to tensor names.
"""
from __future__ import annotations

import mmap
import os
import struct
from typing import Any, Callable

from ..errors import CorruptFile, UnsupportedFormat, text_of
from ..graph import Graph, Model, Node, Tensor, Value

__all__ = ["load"]

_CONTROL_FLOW_SUBGRAPHS = {  # option field -> subgraph role
    "condSubgraphIndex": "cond", "bodySubgraphIndex": "body", "thenSubgraphIndex": "then",
    "elseSubgraphIndex": "else", "subgraph": "callee", "initSubgraphIndex": "init",
    "decompositionSubgraphIndex": "decomposition",
}


# option fields that hold an enum of the schema: shown by name, as Netron does (not as a bare number)
_ENUM_FIELDS = {"weightsFormat": "FullyConnectedOptionsWeightsFormat", "kernelType": "LSTMKernelType",
                "combiner": "CombinerType", "mode": "MirrorPadMode", "compareType": "StablehloComparisonType",
                **{k: "TensorType" for k in ("quantizedBiasType", "inDataType", "outDataType", "outputType",
                                             "outType", "idxOutType")}}


def _schema():
    try:
        from ai_edge_litert import schema_py_generated as schema
        return schema
    except ImportError:
        pass
    try:
        from tensorflow.lite.python import schema_py_generated as schema
        return schema
    except ImportError as exc:
        raise UnsupportedFormat("reading .tflite files needs ai-edge-litert or tensorflow; install one and "
                                "try again") from exc


def _enum_names(enum_cls) -> dict[int, str]:
    return {v: k for k, v in vars(enum_cls).items() if not k.startswith("_") and isinstance(v, int)}


def load(path: str, *, trust: bool = False, progress: Callable = lambda *a: None, **options) -> Model:
    """Read a ``.tflite`` flatbuffer (memory-mapped) into a Model with one graph per subgraph."""
    schema = _schema()
    progress(0.05, "mapping the file")
    size = os.path.getsize(path)
    with open(path, "rb") as f:
        buf = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) if size else b""
    try:
        return _parse(path, buf, size, schema, progress)
    except (CorruptFile, UnsupportedFormat):
        raise
    except (struct.error, IndexError, ValueError):  # flatbuffers read past the end of cut files
        raise CorruptFile(f"{path}: damaged or truncated .tflite file (its tables point past the end of the "
                          f"{size:,}-byte file); re-convert or re-download it") from None
    except Exception as exc:
        raise CorruptFile(f"{path}: damaged .tflite file ({type(exc).__name__}: "
                          f"{text_of(exc, 160)}); re-convert or re-download it") from None


def custom_op_names(path: str) -> list[str]:
    """The custom operator names in a ``.tflite`` file's operator table (``FlexConv3D`` …), read alone."""
    schema = _schema()
    with open(path, "rb") as f:  # mapped, as load() does: only the operator table is read
        buf = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
    try:
        fb = schema.Model.GetRootAs(buf, 0)
        return [oc.CustomCode().decode(errors="replace") for oc in
                (fb.OperatorCodes(i) for i in range(fb.OperatorCodesLength())) if oc.CustomCode()]
    finally:
        buf.close()


def _parse(path: str, buf, size: int, schema, progress) -> Model:
    if size < 8 or bytes(buf[4:8]) != b"TFL3":
        raise CorruptFile(f"{path}: not a TFLite flatbuffer (no TFL3 identifier); re-convert the model")
    fb = schema.Model.GetRootAs(buf, 0)
    ops = _enum_names(schema.BuiltinOperator)
    ttypes = _enum_names(schema.TensorType)
    acts = _enum_names(schema.ActivationFunctionType)
    pads = _enum_names(schema.Padding)
    opts_names = _enum_names(schema.BuiltinOptions)

    codes = []
    for i in range(fb.OperatorCodesLength()):
        oc = fb.OperatorCodes(i)
        code = max(int(oc.BuiltinCode()), int(oc.DeprecatedBuiltinCode()))
        name = ops.get(code, f"BUILTIN_{code}")
        if name == "CUSTOM":
            cc = oc.CustomCode()
            codes.append((cc.decode(errors="replace") if cc else "CUSTOM", "custom"))
        else:
            codes.append((name, ""))

    # buffer index -> (file offset, byte size) for buffers that hold data
    buffers: dict[int, tuple[int, int]] = {}
    for i in range(fb.BuffersLength()):
        b = fb.Buffers(i)
        off, n = int(b.Offset()), int(b.Size())
        if off > 1 and n > 0:  # large models: data after the flatbuffer, addressed by offset
            buffers[i] = (off, n)
            continue
        o = b._tab.Offset(4)  # the `data` vector: its position in the file, without copying it
        if o:
            n = b._tab.VectorLen(o)
            if n:
                buffers[i] = (b._tab.Vector(o), n)
    for i, (off, n) in buffers.items():
        if off + n > size:
            raise CorruptFile(f"{path}: weight buffer {i} ends at byte {off + n:,} but the file has {size:,} "
                              f"bytes; the file is truncated; re-convert or re-download it")

    model = Model("tflite", path)
    model.extra["schema_version"] = int(fb.Version())
    desc = fb.Description()
    if desc:
        model.extra["description"] = desc.decode(errors="replace")
    n_sub = fb.SubgraphsLength()
    if n_sub == 0:
        raise CorruptFile(f"{path}: the TFLite model has no subgraphs; re-convert the model")
    graphs: list[Graph] = []
    sub_names: list[str] = []
    pending_calls: list[tuple[Node, dict[str, int]]] = []
    quantized = 0
    # Every tensor reference costs the file at least 4 bytes unless tables are shared (see below).
    refs, ref_budget = 0, size // 4 + 10_000
    for si in range(n_sub):
        progress(0.1 + 0.8 * si / n_sub, f"reading subgraph {si}")
        sg = fb.Subgraphs(si)
        sname = (sg.Name() or b"").decode(errors="replace") or ("main" if si == 0 else f"subgraph_{si}")
        g = Graph(sname)
        names: list[str] = []
        seen: set[str] = set()
        quant: dict[int, dict] = {}
        refs += sg.TensorsLength()
        if refs > ref_budget:
            raise CorruptFile(f"{path}: subgraph {si} lists more tensors than a {size:,}-byte file can hold; "
                              f"the file is forged or damaged")
        for ti in range(sg.TensorsLength()):
            t = sg.Tensors(ti)
            name = (t.Name() or b"").decode(errors="replace") or f"tensor_{ti}"
            if name in seen:
                name = f"{name}#{ti}"
            seen.add(name)
            names.append(name)
            shape = _tensor_shape(t)
            dtype = ttypes.get(int(t.Type()), str(t.Type())).lower()
            g.values[name] = Value(name, dtype, shape)
            q = t.Quantization()
            if q is not None and q.ScaleLength():
                quant[ti] = {"scale": q.ScaleAsNumpy().tolist()[:64], "zero_point": q.ZeroPointAsNumpy().tolist()[:64],
                             "axis": int(q.QuantizedDimension())}
                quantized += 1
            bi = int(t.Buffer())
            if bi in buffers and not t.IsVariable():
                off, n = buffers[bi]
                g.initializers[name] = Tensor(name, dtype, shape, _buffer_loader(path, off, n, dtype, shape))
        g.inputs = [names[i] for i in sg.InputsAsNumpy().tolist()] if sg.InputsLength() else []
        g.outputs = [names[i] for i in sg.OutputsAsNumpy().tolist()] if sg.OutputsLength() else []
        node_names: set[str] = set()
        next_suffix: dict[str, int] = {}
        op_tables: set[int] = set()
        for oi in range(sg.OperatorsLength()):
            op = sg.Operators(oi)
            # A converter writes one table per operator; a file that points many operators at one table
            # describes a graph far bigger than itself (300,000 operators from 1 MB): refuse it.
            if op._tab.Pos in op_tables:
                raise CorruptFile(f"{path}: operators {oi} and an earlier one share one table, which no "
                                  f"converter writes; the file is forged or damaged")
            op_tables.add(op._tab.Pos)
            refs += op.InputsLength() + op.OutputsLength() + 1
            if refs > ref_budget:
                raise CorruptFile(f"{path}: its operators list more tensor references ({refs:,}) than a "
                                  f"{size:,}-byte file can hold; the file is forged or damaged")
            ci = int(op.OpcodeIndex())
            op_type, domain = codes[ci] if ci < len(codes) else (f"OPCODE_{ci}", "")
            ins = [names[i] if i >= 0 else "" for i in (op.InputsAsNumpy().tolist() if op.InputsLength() else [])]
            outs = [names[i] for i in (op.OutputsAsNumpy().tolist() if op.OutputsLength() else [])]
            first = (outs[0] if outs else op_type).split(";")[0]
            nname = first
            k = next_suffix.get(first, 1)
            while nname in node_names:  # amortised linear: each base name resumes where it stopped
                nname = f"{first}_{k}"
                k += 1
            next_suffix[first] = k
            node_names.add(nname)
            attrs, calls = _options(schema, op, opts_names, acts, pads)
            qs = {names[i]: quant[i] for i in (list(op.InputsAsNumpy()) if op.InputsLength() else []) +
                  (list(op.OutputsAsNumpy()) if op.OutputsLength() else []) if i >= 0 and i in quant}
            if qs:
                attrs["quantization"] = qs
            if domain == "custom" and op.CustomOptionsLength():
                attrs["custom_options_bytes"] = int(op.CustomOptionsLength())
            node = Node(nname, op_type, ins, outs, attrs, _scope(first), domain)
            g.nodes.append(node)
            if calls:
                pending_calls.append((node, calls))
        graphs.append(g)
        sub_names.append(sname)

    for node, calls in pending_calls:
        for role, idx in calls.items():
            if 0 <= idx < len(graphs):
                node.subgraphs[role] = graphs[idx]
    model.graph = graphs[0]
    for i, g in enumerate(graphs[1:], 1):
        key = sub_names[i] if sub_names[i] not in model.functions else f"{sub_names[i]}_{i}"
        model.functions[key] = g
    if quantized:
        model.extra["quantized_tensors"] = quantized

    sig_io = {}
    index_names: dict[int, dict[int, str]] = {}
    if fb.SignatureDefsLength() > 10_000:
        raise CorruptFile(f"{path}: lists {fb.SignatureDefsLength():,} signatures; the file is forged or damaged")
    for i in range(fb.SignatureDefsLength()):
        sd = fb.SignatureDefs(i)
        key = (sd.SignatureKey() or b"").decode(errors="replace") or f"signature_{i}"
        gi = int(sd.SubgraphIndex())
        if not 0 <= gi < len(graphs):
            continue
        base = graphs[gi]
        sub = fb.Subgraphs(gi)
        tname = lambda ti: (sub.Tensors(ti).Name() or b"").decode(errors="replace")  # noqa: E731
        ins = {(sd.Inputs(j).Name() or b"").decode(): int(sd.Inputs(j).TensorIndex()) for j in range(sd.InputsLength())}
        outs = {(sd.Outputs(j).Name() or b"").decode(): int(sd.Outputs(j).TensorIndex())
                for j in range(sd.OutputsLength())}
        if gi not in index_names:
            index_names[gi] = _index_names(base, sub)
        by_index_in = index_names[gi]
        g = Graph(key, base.nodes, [by_index_in[t] for t in ins.values() if t in by_index_in],
                  [by_index_in[t] for t in outs.values() if t in by_index_in], base.values, base.initializers)
        model.signatures[key] = g if gi != 0 or g.inputs != base.inputs or g.outputs != base.outputs else base
        sig_io[key] = {"subgraph": gi, "inputs": {k: tname(v) for k, v in ins.items()},
                       "outputs": {k: tname(v) for k, v in outs.items()}}
    if sig_io:
        model.extra["signature_io"] = sig_io
    model.extra["operator_count"] = sum(len(g.nodes) for g in graphs)
    progress(1.0, "done")
    return model


def _index_names(g: Graph, sub) -> dict[int, str]:
    """Tensor index -> value name (the same de-duplication as the reader used)."""
    out, seen = {}, set()
    for ti in range(sub.TensorsLength()):
        name = (sub.Tensors(ti).Name() or b"").decode(errors="replace") or f"tensor_{ti}"
        if name in seen:
            name = f"{name}#{ti}"
        seen.add(name)
        out[ti] = name
    return out


def _tensor_shape(t) -> tuple | None:
    if t.ShapeSignatureLength():
        return tuple(None if d < 0 else int(d) for d in t.ShapeSignatureAsNumpy().tolist())
    if t.ShapeLength():
        return tuple(int(d) for d in t.ShapeAsNumpy().tolist())
    has_rank = getattr(t, "HasRank", None)
    # an empty shape is a scalar, unless the converter says the rank itself is unknown
    return None if has_rank is not None and not has_rank() and t.ShapeIsNone() else ()


def _scope(name: str) -> str:
    return name.rsplit("/", 1)[0] if "/" in name else ""


def _buffer_loader(path: str, offset: int, nbytes: int, dtype: str, shape):
    def load():
        import numpy as np

        try:
            dt = np.dtype(dtype)
        except TypeError:  # int4, string, resource …: hand back the raw bytes
            dt = np.dtype(np.uint8)
        arr = np.fromfile(path, dtype=np.uint8, count=nbytes, offset=offset)
        if dt.itemsize and nbytes % dt.itemsize == 0 and dt != np.uint8:
            arr = arr.view(dt)
        if shape is not None and all(d is not None for d in shape) and arr.size == int(np.prod(shape)):
            arr = arr.reshape(shape)
        return arr
    return load


def _options(schema, op, opts_names, acts, pads) -> tuple[dict[str, Any], dict[str, int]]:
    """Builtin options as plain attributes, plus the subgraph indices a control-flow op calls."""
    attrs: dict[str, Any] = {}
    calls: dict[str, int] = {}
    otype = int(op.BuiltinOptionsType())
    if otype == 0:
        return attrs, calls
    table = op.BuiltinOptions()
    if table is None:
        return attrs, calls
    obj = schema.BuiltinOptionsCreator(otype, table)
    if obj is None:
        return {"options": opts_names.get(otype, otype)}, calls
    for k, v in vars(obj).items():
        if k in _CONTROL_FLOW_SUBGRAPHS and isinstance(v, int):
            calls[_CONTROL_FLOW_SUBGRAPHS[k]] = v
        if k == "fusedActivationFunction":
            v = acts.get(v, v)
        elif k == "padding":
            v = pads.get(v, v)
        elif k in _ENUM_FIELDS and isinstance(v, int) and hasattr(schema, _ENUM_FIELDS[k]):
            v = _enum_names(getattr(schema, _ENUM_FIELDS[k])).get(v, v)
        elif hasattr(v, "tolist"):
            v = v.tolist()
        elif hasattr(v, "__dict__"):  # a nested table (e.g. a quantization spec): its plain fields
            v = {kk: (vv.tolist() if hasattr(vv, "tolist") else vv) for kk, vv in vars(v).items()
                 if hasattr(vv, "tolist") or isinstance(vv, (int, float, str, bool))}
        elif not isinstance(v, (int, float, str, bool, list, type(None))):
            continue
        attrs[k] = v
    return attrs, calls
