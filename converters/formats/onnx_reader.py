"""ONNX reader: .onnx files, with external data files read lazily from beside the model.

Parsing only (protobuf), nothing is executed. Shapes come from the file's value_info; when most node
outputs lack one, ONNX shape inference (with data propagation) fills them in. Scopes come from the torch
dynamo exporter's ``pkg.torch.onnx.name_scopes`` metadata when present, else from ``/``-separated node
names (legacy torch exporter, tf2onnx, most zoo models).
"""
from __future__ import annotations

import os
from typing import Any

from ..errors import CorruptFile, first_line
from ..graph import Graph, Model, Node, Tensor, Value
from ..scopes import parse_py_list_of_str, scope_from_module_chain, scope_from_name

_ELEM_DTYPES: dict[int, str] = {}


def _dtype_name(elem_type: int) -> str | None:
    if elem_type == 0:
        return None
    name = _ELEM_DTYPES.get(elem_type)
    if name is None:
        import onnx

        try:
            name = str(onnx.helper.tensor_dtype_to_np_dtype(elem_type))
        except Exception:
            name = onnx.TensorProto.DataType.Name(elem_type).lower()
        # onnx maps bfloat16/float8 to custom ml_dtypes names; keep them readable
        name = {"bfloat16": "bfloat16"}.get(name, name)
        _ELEM_DTYPES[elem_type] = name
    return name


def _value_from_proto(vi) -> Value:
    t = vi.type
    which = t.WhichOneof("value")
    if which == "tensor_type":
        tt = t.tensor_type
        dtype = _dtype_name(tt.elem_type)
        if tt.HasField("shape"):
            dims = []
            for d in tt.shape.dim:
                w = d.WhichOneof("value")
                dims.append(d.dim_value if w == "dim_value" else (d.dim_param or None) if w == "dim_param" else None)
            shape = tuple(dims)
        else:
            shape = None
        return Value(vi.name, dtype, shape)
    if which == "sequence_type":
        return Value(vi.name, "sequence", None)
    if which == "map_type":
        return Value(vi.name, "map", None)
    if which == "optional_type":
        return Value(vi.name, "optional", None)
    return Value(vi.name, None, None)


def _tensor_from_proto(tp, base_dir: str) -> Tensor:
    def load(tp=tp, base_dir=base_dir):
        from onnx import numpy_helper

        return numpy_helper.to_array(tp, base_dir)

    return Tensor(tp.name, _dtype_name(tp.data_type), tuple(tp.dims), load)


_A: dict[str, int] = {}


def _attr_value(attr, base_dir: str, subgraphs: dict[str, Graph], node_name: str, depth: int) -> Any:
    t = attr.type
    # the common scalar and list kinds first, without the generic helper (hot path at 50k nodes)
    if t == 2:  # INT
        return attr.i
    if t == 7:  # INTS
        return list(attr.ints)
    if t == 1:  # FLOAT
        return attr.f
    if t == 6:  # FLOATS
        return list(attr.floats)
    if t == 3:  # STRING
        try:
            return attr.s.decode("utf-8")
        except UnicodeDecodeError:
            return f"<{len(attr.s)} bytes>"
    from onnx import AttributeProto, helper

    if t == AttributeProto.GRAPH:
        subgraphs[attr.name] = _graph_from_proto(attr.g, base_dir, depth + 1)
        return f"<subgraph {attr.name}>"
    if t == AttributeProto.GRAPHS:
        for i, g in enumerate(attr.graphs):
            subgraphs[f"{attr.name}[{i}]"] = _graph_from_proto(g, base_dir, depth + 1)
        return f"<{len(attr.graphs)} subgraphs>"
    if t == AttributeProto.TENSOR:
        tensor = _tensor_from_proto(attr.t, base_dir)
        n = tensor.numel
        if n <= 16:
            try:
                return tensor.numpy().tolist()
            except Exception:
                pass
        return tensor
    if t == AttributeProto.SPARSE_TENSOR:
        return "<sparse tensor>"
    if t == AttributeProto.TENSORS:
        return f"<{len(attr.tensors)} tensors>"
    v = helper.get_attribute_value(attr)
    if isinstance(v, bytes):
        try:
            return v.decode("utf-8")
        except UnicodeDecodeError:
            return f"<{len(v)} bytes>"
    if isinstance(v, list) and v and isinstance(v[0], bytes):
        return [x.decode("utf-8", "replace") for x in v]
    return v


def _node_scope(np_, has_meta: bool) -> str:
    if has_meta:
        for p in np_.metadata_props:
            if p.key == "pkg.torch.onnx.name_scopes":
                chain = parse_py_list_of_str(p.value)
                if chain:
                    # every element but the last is the module-path chain; the last is the op's own name
                    return scope_from_module_chain(chain[:-1])
                break
    return scope_from_name(np_.name) if np_.name else ""


def _graph_from_proto(gp, base_dir: str, depth: int = 0) -> Graph:
    g = Graph(name=gp.name)
    for tp in gp.initializer:
        g.initializers[tp.name] = t = _tensor_from_proto(tp, base_dir)
        g.values[tp.name] = Value(tp.name, t.dtype, t.shape)
    for vi in gp.value_info:
        g.values[vi.name] = _value_from_proto(vi)
    init_names = g.initializers
    for vi in gp.input:
        g.values[vi.name] = v = _value_from_proto(vi)
        if vi.name not in init_names:  # IR < 4 lists initializers as inputs too
            g.inputs.append(vi.name)
        elif v.shape is None:
            g.values[vi.name] = Value(vi.name, init_names[vi.name].dtype, init_names[vi.name].shape)
    for vi in gp.output:
        g.values[vi.name] = _value_from_proto(vi)
        g.outputs.append(vi.name)
    nodes = g.nodes
    for i, np_ in enumerate(gp.node):
        has_meta = len(np_.metadata_props) > 0
        subgraphs: dict[str, Graph] = {}
        name = np_.name or f"{np_.op_type}_{i}"
        attrs = {a.name: _attr_value(a, base_dir, subgraphs, name, depth) for a in np_.attribute} \
            if len(np_.attribute) else {}
        if has_meta:
            for p in np_.metadata_props:
                if p.key in ("pkg.torch.onnx.class_hierarchy", "pkg.onnxscript.rewriter.rule_name"):
                    attrs.setdefault("_meta", {})[p.key.rsplit(".", 1)[-1]] = p.value
        nodes.append(Node(name, np_.op_type, list(np_.input), list(np_.output), attrs,
                          _node_scope(np_, has_meta), np_.domain, subgraphs))
    return g


def _needs_inference(gp) -> bool:
    known = {vi.name for vi in gp.value_info}
    known.update(vi.name for vi in gp.output)
    outs = [o for n in gp.node for o in n.output if o]
    if not outs:
        return False
    missing = sum(1 for o in outs if o not in known)
    return missing > 0.1 * len(outs)


def load(path: str, *, trust: bool = False, progress=None, infer_shapes: bool = True, **_: Any) -> Model:
    """Read an ONNX model. ``infer_shapes`` runs ONNX shape inference when value_info is sparse."""
    import onnx
    from google.protobuf.message import DecodeError

    progress = progress or (lambda *a, **k: None)
    base_dir = os.path.dirname(os.path.abspath(path))
    progress(0.05, "parsing ONNX protobuf")
    try:
        mp = onnx.load_model(path, load_external_data=False)
    except DecodeError as exc:
        raise CorruptFile(f"{path}: cannot be parsed as ONNX ({exc}); the file is damaged, truncated "
                          f"or not an ONNX model") from None
    except (RuntimeWarning, ValueError, OSError) as exc:
        raise CorruptFile(f"{path}: cannot be read as ONNX ({exc})") from None
    if not mp.HasField("graph") or (len(mp.graph.node) == 0 and len(mp.graph.output) == 0):
        raise CorruptFile(f"{path}: parsed as protobuf but holds no ONNX graph; the file is damaged or "
                          f"not an ONNX model")
    warnings: list[str] = []
    if infer_shapes and _needs_inference(mp.graph):
        progress(0.2, "inferring shapes")
        try:
            inferred = onnx.shape_inference.infer_shapes(mp, strict_mode=False, data_prop=True)
            mp = inferred
        except Exception as exc:  # keep the file's own info; inference is best effort
            warnings.append(f"shape inference failed ({first_line(exc)}); some shapes are unknown")
    _check_external_locations(path, mp)
    progress(0.5, "building graph")
    try:
        model = _build(path, mp, base_dir, warnings, progress)
        _check_text(model)
        return model
    except TypeError as exc:
        if "bytes" not in str(exc):
            raise
        # protobuf hands back bytes for a proto2 string that is not UTF-8 (a name, a doc string)
        raise CorruptFile(f"{path}: holds names or text that are not valid UTF-8, which ONNX requires; the "
                          f"file is damaged or was written by a faulty exporter") from None


def _check_text(model: Model) -> None:
    """Raise TypeError (handled by the caller) when a node's op type, domain, name or edge is bytes: protobuf
    hands those back for non-UTF-8 strings, and they would break every later step (packs, JSON, layout)."""
    graphs = [model.graph] + list(model.functions.values())
    while graphs:
        g = graphs.pop()
        if g is None:
            continue
        for n in g.nodes:
            if not isinstance(n.op_type, str) or not isinstance(n.domain, str) or not isinstance(n.name, str) \
                    or any(not isinstance(x, str) for x in n.inputs) or any(not isinstance(x, str) for x in n.outputs) \
                    or any(not isinstance(k, str) for k in list(n.attrs) + list(n.subgraphs)):
                raise TypeError("node text is bytes, not str")
            graphs.extend(n.subgraphs.values())
        if any(not isinstance(k, str) for k in list(g.initializers) + list(g.values) + list(g.inputs)
               + list(g.outputs)):
            raise TypeError("a tensor name is bytes, not str")


def _check_external_locations(path: str, mp) -> None:
    """External weight files must lie beside the model: no absolute paths, no '..', regular files only.

    A forged location could otherwise read any file the user can read (shown as weight statistics) or
    block forever on a FIFO.
    """
    import onnx

    base = os.path.realpath(os.path.dirname(os.path.abspath(path)))
    for t in mp.graph.initializer:
        if t.data_location != onnx.TensorProto.EXTERNAL:
            continue
        for e in t.external_data:
            if e.key != "location":
                continue
            loc = e.value if isinstance(e.value, str) else "?"
            full = os.path.realpath(os.path.join(base, loc))
            if os.path.isabs(loc) or not (full == base or full.startswith(base + os.sep)):
                raise CorruptFile(f"{path}: weight '{t.name}' points at '{loc[:120]}', outside the model's "
                                  f"folder; refusing to read it (external data must lie beside the model)")
            if os.path.exists(full) and not os.path.isfile(full):
                raise CorruptFile(f"{path}: weight '{t.name}' points at '{loc[:120]}', which is not a regular "
                                  f"file; refusing to read it")


def _build(path: str, mp, base_dir: str, warnings: list[str], progress) -> Model:
    import onnx

    graph = _graph_from_proto(mp.graph, base_dir)
    functions = {}
    for fp in mp.functions:
        fg = Graph(name=f"{fp.domain}.{fp.name}" if fp.domain else fp.name,
                   inputs=list(fp.input), outputs=list(fp.output))
        for i, np_ in enumerate(fp.node):
            sub: dict[str, Graph] = {}
            attrs = {a.name: _attr_value(a, base_dir, sub, np_.name, 1) for a in np_.attribute}
            fg.nodes.append(Node(np_.name or f"{np_.op_type}_{i}", np_.op_type, list(np_.input),
                                 list(np_.output), attrs, scope_from_name(np_.name), np_.domain, sub))
        functions[fg.name] = fg
    missing_external = sorted({
        e.value for t in mp.graph.initializer if t.data_location == onnx.TensorProto.EXTERNAL
        for e in t.external_data if e.key == "location" and not os.path.exists(os.path.join(base_dir, e.value))
    })
    if missing_external:
        warnings.append(f"external data file(s) not found beside the model: {', '.join(missing_external[:3])}; "
                        f"weights cannot be shown or run")
    extra: dict[str, Any] = {
        "ir_version": mp.ir_version,
        "opset": ", ".join(f"{o.domain or 'ai.onnx'} {o.version}" for o in mp.opset_import),
        "producer": f"{mp.producer_name} {mp.producer_version}".strip(),
    }
    if mp.doc_string:
        extra["doc"] = mp.doc_string.strip()[:500]
    if mp.metadata_props:
        extra["metadata"] = {p.key: p.value[:500] for p in mp.metadata_props}
    if any(t.data_location == onnx.TensorProto.EXTERNAL for t in mp.graph.initializer):
        extra["external_data"] = True
    progress(1.0, "done")
    return Model(format="onnx", path=os.path.abspath(path), graph=graph, functions=functions,
                 extra=extra, warnings=warnings)
