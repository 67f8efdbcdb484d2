"""Fold the constant part of an ONNX graph into initializers, cheaply, before a converter sees it.

Model-zoo files often compute their weights with nodes: ``Constant`` nodes instead of initializers,
``ConstantOfShape`` biases, ``Identity`` chains, ``Reshape``/``Transpose``/``Cast`` of constants.
onnx2tf then meets a weight it cannot transpose ("axes don't match array") and onnx2torch looks the
weight up among the initializers only (``KeyError``). onnx2tf's own default run survives these files
because it runs onnxsim first, which costs seconds on every model; this pass does only the folding,
in time proportional to the constant subgraph, and nothing at all on a graph without one.

Folded: every node whose inputs are all constants (initializers, ``Constant`` outputs, earlier folds) and
whose op is deterministic and has no subgraph, when its result is small enough (:data:`MAX_ELEMENTS`).
Values come from ``onnx.reference`` (ONNX's own reference implementation). A graph output is never folded
away, and the pass never changes what the graph computes.
"""
from __future__ import annotations

from typing import Any

__all__ = ["fold_constants", "pick_from_concat", "static_shapes", "MAX_ELEMENTS"]

# the layout rewrites for onnx2tf live in converters.onnx_rewrites; their names still import from here
_REWRITES = ("conv1d_from_unit_conv2d", "global_pool_as_reduce", "fold_scale_into_conv", "uniform_gather_elements")

MAX_ELEMENTS = 1 << 26  # 64M elements: no weight worth folding is larger; bigger results stay as nodes

_NON_DETERMINISTIC = {"RandomNormal", "RandomNormalLike", "RandomUniform", "RandomUniformLike", "Multinomial",
                      "Bernoulli", "Dropout"}
_SOURCES = {"Constant"}  # ops with no inputs that are constant


def static_shapes(model) -> dict[str, list[int | None]]:
    """Every value's shape as ONNX shape inference sees it (None for a dimension it cannot tell)."""
    from onnx import shape_inference

    g = shape_inference.infer_shapes(model).graph
    return {vi.name: [d.dim_value if d.HasField("dim_value") else None for d in vi.type.tensor_type.shape.dim]
            for vi in list(g.value_info) + list(g.input) + list(g.output) if vi.type.tensor_type.HasField("shape")}


def _has_subgraph(node) -> bool:
    from onnx import AttributeProto

    return any(a.type in (AttributeProto.GRAPH, AttributeProto.GRAPHS) for a in node.attribute)


def _opset(model) -> int:
    return next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 13)


def fold_constants(model, *, log=None) -> int:
    """Fold in place; returns how many nodes were folded (0: the model is untouched)."""
    from onnx import numpy_helper

    g = model.graph
    consts: dict[str, Any] = {t.name: t for t in g.initializer}
    graph_outputs = {o.name for o in g.output}
    # Folding starts from a Constant node or a node fed by initializers alone; without one there is
    # nothing to do, and the pass costs one look at each node.
    if not any(n.op_type in _SOURCES or (n.input and all(i == "" or i in consts for i in n.input))
               for n in g.node):
        return 0
    opset = _opset(model)
    values: dict[str, Any] = {}
    folded: list = []
    for n in g.node:
        if n.domain not in ("", "ai.onnx") or _has_subgraph(n) or n.op_type in _NON_DETERMINISTIC:
            continue
        if not n.output or any(o in graph_outputs for o in n.output):
            continue
        if n.op_type not in _SOURCES and (not n.input or not all(i == "" or i in consts for i in n.input)):
            continue
        try:
            outs = _evaluate(n, consts, values, opset)
        except Exception as exc:  # an op the reference cannot run: leave it to the converter
            if log:
                log(f"constant folding: kept {n.op_type} node {n.name or n.output[0]} ({type(exc).__name__})")
            continue
        if outs is None or any(o is None or getattr(o, "size", 0) > MAX_ELEMENTS for o in outs):
            continue
        for name, arr in zip(n.output, outs):
            if not name:
                continue
            values[name] = arr
            consts[name] = name
        folded.append(n)
    if not folded:
        return 0
    gone = {id(n) for n in folded}
    kept = [n for n in g.node if id(n) not in gone]
    used = {i for n in kept for i in n.input} | graph_outputs | {i.name for i in g.input}
    for sub in kept:  # names read inside subgraphs (If/Loop bodies) count as used too
        used |= _subgraph_inputs(sub)
    for name, arr in values.items():
        if name in used:
            t = g.initializer.add()
            t.CopyFrom(numpy_helper.from_array(arr, name))
    # initializers only the folded nodes read are dropped (a weight fed through Identity stays once)
    keep_inits = [t for t in g.initializer if t.name in used]
    del g.initializer[:]
    g.initializer.extend(keep_inits)
    del g.node[:]
    g.node.extend(kept)
    folded_names = set(values)
    keep_vi = [vi for vi in g.value_info if vi.name not in folded_names]
    del g.value_info[:]
    g.value_info.extend(keep_vi)
    if log:
        log(f"constant folding: {len(folded)} node(s) folded into initializers")
    return len(folded)


def _subgraph_inputs(node) -> set[str]:
    from onnx import AttributeProto

    names: set[str] = set()
    for a in node.attribute:
        graphs = [a.g] if a.type == AttributeProto.GRAPH else list(a.graphs) if a.type == AttributeProto.GRAPHS else []
        for sg in graphs:
            for n in sg.node:
                names.update(n.input)
                names |= _subgraph_inputs(n)
    return names


def _evaluate(node, consts: dict, values: dict, opset: int):
    from onnx import helper, numpy_helper
    from onnx.reference import ReferenceEvaluator

    feeds = {}
    for i in node.input:
        if not i:
            continue
        if i in values:
            feeds[i] = values[i]
        else:
            feeds[i] = numpy_helper.to_array(consts[i])
        if getattr(feeds[i], "size", 0) > MAX_ELEMENTS:
            return None
    model = helper.make_model(
        helper.make_graph([node], "fold", [helper.make_tensor_value_info(i, 0, None) for i in feeds],
                          [helper.make_tensor_value_info(o, 0, None) for o in node.output if o]),
        opset_imports=[helper.make_opsetid("", opset)])
    outs = ReferenceEvaluator(model).run(None, feeds)
    return [o if hasattr(o, "dtype") else None for o in outs]


def pick_from_concat(model, *, log=None) -> int:
    """Rewrite ``Gather(Concat(x_0 … x_n, axis=k), i, axis=k)`` with a constant scalar ``i`` into
    ``Squeeze(x_i, k)`` when every ``x_j`` is 1 wide along ``k``: the same values, without the concat.

    PyTorch exports ``h_n[-1]`` of a stacked ``nn.LSTM`` / ``nn.GRU`` this way (the layers' final states
    are concatenated, then the last one is taken); onnx2tf gives that concat of recurrent states the
    wrong axis, and the result comes out with the layer count as its batch. Returns how many were
    rewritten (0: the model is untouched)."""
    from onnx import helper, numpy_helper

    g = model.graph
    producer = {o: n for n in g.node for o in n.output}
    consts = {t.name: t for t in g.initializer}
    consts.update({n.output[0]: next((a.t for a in n.attribute if a.name == "value"), None)
                   for n in g.node if n.op_type == "Constant" and n.output})

    def attr(n, name, default):
        a = next((a for a in n.attribute if a.name == name), None)
        return helper.get_attribute_value(a) if a is not None else default

    candidates = []
    for n in g.node:
        if n.op_type != "Gather" or len(n.input) < 2 or n.input[1] not in consts or consts[n.input[1]] is None:
            continue
        c = producer.get(n.input[0])
        if c is None or c.op_type != "Concat":
            continue
        idx_arr = numpy_helper.to_array(consts[n.input[1]])
        if idx_arr.ndim != 0:
            continue
        candidates.append((n, c, int(idx_arr)))
    if not candidates:
        return 0
    shapes = static_shapes(model)
    opset = _opset(model)
    done = 0
    for n, c, idx in candidates:
        ins = [i for i in c.input]
        rank = len(shapes.get(ins[0]) or [])
        if not rank:
            continue
        axis, caxis = attr(n, "axis", 0) % rank, attr(c, "axis", 0) % rank
        if axis != caxis or not -len(ins) <= idx < len(ins):
            continue
        if any((shapes.get(i) or [None] * rank)[axis] != 1 for i in ins):
            continue
        src = ins[idx]
        if opset >= 13:
            axes = f"{n.output[0]}__axes"
            g.initializer.append(numpy_helper.from_array(__import__("numpy").array([axis], dtype="int64"), axes))
            new = helper.make_node("Squeeze", [src, axes], list(n.output), name=(n.name or n.output[0]) + "_squeeze")
        else:
            new = helper.make_node("Squeeze", [src], list(n.output), axes=[axis],
                                   name=(n.name or n.output[0]) + "_squeeze")
        pos = list(g.node).index(n)
        del g.node[pos]
        g.node.insert(pos, new)
        done += 1
    if done:
        used = {i for m in g.node for i in m.input} | {o.name for o in g.output}
        dead = [m for m in g.node if m.op_type == "Concat" and not any(o in used for o in m.output)]
        for m in dead:
            g.node.remove(m)
        if log:
            log(f"graph rewrite: {done} Gather of a Concat replaced by a Squeeze of the picked input")
    return done


def __getattr__(name: str) -> Any:
    if name in _REWRITES:
        from . import onnx_rewrites

        return getattr(onnx_rewrites, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
