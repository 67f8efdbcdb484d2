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

__all__ = ["fold_constants", "pick_from_concat", "static_shapes", "conv1d_from_unit_conv2d",
           "global_pool_as_reduce", "fold_scale_into_conv", "uniform_gather_elements", "MAX_ELEMENTS"]

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
        idx = numpy_helper.to_array(consts[n.input[1]])
        if idx.ndim != 0:
            continue
        candidates.append((n, c, int(idx)))
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


# ---- layout rewrites for onnx2tf ------------------------------------------------------------------------------
# onnx2tf decides per tensor whether it holds channels-first data it must transpose; it guesses from shapes and
# from the op, and some forms tf2onnx writes for Keras models defeat the guess. Each rewrite below replaces such
# a form by one that computes the same values and that onnx2tf converts the way a PyTorch export converts.

_UNARY = {"Relu", "LeakyRelu", "Elu", "Selu", "Celu", "Sigmoid", "HardSigmoid", "HardSwish", "Tanh", "Softplus",
          "Softsign", "Gelu", "Mish", "Identity", "Clip", "Abs", "Neg", "Exp", "Erf", "Sqrt", "Reciprocal"}
_SCALAR_BINARY = {"Add", "Sub", "Mul", "Div", "Pow", "Max", "Min"}


def _graph_index(model):
    g = model.graph
    producer = {o: n for n in g.node for o in n.output if o}
    consumers: dict[str, list] = {}
    for n in g.node:
        for i in n.input:
            consumers.setdefault(i, []).append(n)
    for sub in g.node:
        for name in _subgraph_inputs(sub):
            consumers.setdefault(name, []).append(sub)
    consts = {t.name: t for t in g.initializer}
    consts.update({n.output[0]: next((a.t for a in n.attribute if a.name == "value"), None)
                   for n in g.node if n.op_type == "Constant" and n.output})
    return producer, consumers, {k: v for k, v in consts.items() if v is not None}


def _attr(n, name, default=None):
    from onnx import helper

    a = next((a for a in n.attribute if a.name == name), None)
    return helper.get_attribute_value(a) if a is not None else default


def _const_array(consts, name):
    from onnx import numpy_helper

    t = consts.get(name)
    return None if t is None else numpy_helper.to_array(t)


def _axes_of(n, consts):
    """The ``axes`` of an Unsqueeze / Squeeze / Reduce node (attribute before opset 13, input after), or None."""
    if len(n.input) > 1 and n.input[1]:
        a = _const_array(consts, n.input[1])
        return None if a is None else [int(v) for v in a.reshape(-1)]
    axes = _attr(n, "axes")
    return None if axes is None else [int(v) for v in axes]


def _remove_dead(model, candidates) -> None:
    """Remove the given nodes whose outputs nothing reads any more, then initializers nothing reads."""
    g = model.graph
    while True:
        used = {i for n in g.node for i in n.input} | {o.name for o in g.output}
        for n in g.node:
            used |= _subgraph_inputs(n)
        dead = [n for n in g.node if id(n) in candidates and not any(o in used for o in n.output if o)]
        if not dead:
            break
        for n in dead:
            g.node.remove(n)
    used = {i for n in g.node for i in n.input} | {o.name for o in g.output}
    for n in g.node:
        used |= _subgraph_inputs(n)
    keep = [t for t in g.initializer if t.name in used]
    if len(keep) != len(g.initializer):
        del g.initializer[:]
        g.initializer.extend(keep)


def conv1d_from_unit_conv2d(model, *, log=None) -> int:
    """Rewrite the form tf2onnx gives a Keras ``Conv1D`` — ``Unsqueeze`` of the ``[N, W, C]`` sequence to 4-D,
    ``Transpose`` to ``[N, C, 1, W]``, a 2-D ``Conv`` whose kernel, stride and padding are 1 / 1 / 0 along the
    unit axis, element-wise ops, then a ``Squeeze`` (or ``Transpose`` + ``Reshape``) back to 3-D — into
    ``Transpose`` to ``[N, C, W]``, a 1-D ``Conv``, the same element-wise ops on 3-D tensors and a
    ``Transpose`` (or nothing) to the same result.

    onnx2tf turns the ``Unsqueeze`` of a sequence it has already transposed to channels-last into a reshape
    that moves the batch and the time axis apart, and its convolution then reads the wrong axis as channels
    (``input depth must be evenly divisible by filter depth``) or the ``Squeeze`` after it fails. A 1-D
    ``Conv`` is the form PyTorch exports, which onnx2tf converts correctly. Returns how many convolutions were
    rewritten (0: the model is untouched)."""
    import numpy as np
    from onnx import helper, numpy_helper

    g = model.graph
    if not any(n.op_type == "Conv" for n in g.node) or not any(n.op_type == "Unsqueeze" for n in g.node):
        return 0
    producer, consumers, consts = _graph_index(model)
    graph_outputs = {o.name for o in g.output}
    shapes = None
    plans = []
    for conv in g.node:
        if conv.op_type != "Conv" or conv.domain not in ("", "ai.onnx") or len(conv.input) < 2:
            continue
        w = _const_array(consts, conv.input[1])
        if w is None or w.ndim != 4 or w.shape[2] != 1:
            continue
        if (_attr(conv, "strides") or [1, 1])[0] != 1 or _attr(conv, "auto_pad", b"NOTSET") not in (b"NOTSET", "NOTSET"):
            continue
        pads = _attr(conv, "pads") or [0, 0, 0, 0]
        if pads[0] != 0 or pads[2] != 0:
            continue
        # the front: x (3-D) -> Unsqueeze -> [Transpose] -> conv input, with the new unit axis landing on axis 2
        chain_in, perm = conv.input[0], [0, 1, 2, 3]
        front = []
        t = producer.get(chain_in)
        if t is not None and t.op_type == "Transpose":
            perm = [int(p) for p in _attr(t, "perm", [3, 2, 1, 0])]
            front.append(t)
            t = producer.get(t.input[0])
        if t is None or t.op_type != "Unsqueeze":
            continue
        axes = _axes_of(t, consts)
        if axes is None or len(axes) != 1:
            continue
        front.append(t)
        unit = axes[0] % 4
        if perm[2] != unit or perm[0] == unit:
            continue
        src_axes = [a if a < unit else a - 1 for a in perm]   # conv-input axis -> axis of the 3-D x
        if src_axes[0] != 0:
            continue
        if any(len(consumers.get(n.output[0], [])) != 1 or n.output[0] in graph_outputs for n in front):
            continue
        # the tail: element-wise ops with one consumer each, then the op that drops the unit axis
        chain, cur = [], conv
        while True:
            outs = consumers.get(cur.output[0], [])
            if cur.output[0] in graph_outputs or len(outs) != 1:
                cur = None
                break
            nxt = outs[0]
            if nxt.op_type in _UNARY and nxt.input[0] == cur.output[0] and \
                    all(i in consts for i in nxt.input[1:] if i):
                chain.append(nxt)
                cur = nxt
                continue
            if nxt.op_type in _SCALAR_BINARY and len(nxt.input) == 2:
                other = nxt.input[1] if nxt.input[0] == cur.output[0] else nxt.input[0]
                arr = _const_array(consts, other)
                if arr is not None and arr.size == 1 and other != cur.output[0]:
                    chain.append(nxt)
                    cur = nxt
                    continue
            break
        if cur is None:
            continue
        last = cur
        end = consumers[last.output[0]][0]
        tail, out_perm = [end], None
        if end.op_type == "Squeeze" and [a % 4 for a in (_axes_of(end, consts) or [])] == [2]:
            out_perm = [0, 1, 2]
        elif end.op_type == "Transpose":
            q = [int(p) for p in _attr(end, "perm", [3, 2, 1, 0])]
            if q.index(2) == 0 or end.output[0] in graph_outputs or len(consumers.get(end.output[0], [])) != 1:
                continue
            drop = consumers[end.output[0]][0]
            pos = q.index(2)
            if drop.op_type == "Squeeze" and [a % 4 for a in (_axes_of(drop, consts) or [])] == [pos]:
                pass
            elif drop.op_type == "Reshape" and len(drop.input) > 1:
                target = _const_array(consts, drop.input[1])
                if shapes is None:
                    shapes = static_shapes(model)
                tshape = shapes.get(end.output[0])
                if target is None or tshape is None or len(tshape) != 4 or target.size != 3:
                    continue
                kept = [d for k, d in enumerate(tshape) if k != pos]
                tgt = [int(v) for v in target]
                if any(d is None or d != tgt[k] for k, d in enumerate(kept) if k > 0) or \
                        tgt[0] not in (-1, 0) and tgt[0] != kept[0] or (tgt[0] == 0 and _attr(drop, "allowzero", 0)):
                    continue
            else:
                continue
            tail.append(drop)
            out_perm = [a if a < 2 else a - 1 for a in q if a != 2]
        else:
            continue
        plans.append((conv, front, chain, tail, src_axes, out_perm, w))
    done = 0
    for conv, front, chain, tail, src_axes, out_perm, w in plans:
        base = conv.name or conv.output[0]
        x = front[-1].input[0]
        new = []
        x_perm = [src_axes[0], src_axes[1], src_axes[3]]
        if x_perm != [0, 1, 2]:
            new.append(helper.make_node("Transpose", [x], [f"{base}__ncw"], perm=x_perm, name=f"{base}__ncw"))
            x = f"{base}__ncw"
        w_name = f"{conv.input[1]}__1d"
        if w_name not in {t.name for t in g.initializer}:
            g.initializer.append(numpy_helper.from_array(np.ascontiguousarray(w[:, :, 0, :]), w_name))
        kw = {"kernel_shape": [int(w.shape[3])], "strides": [int((_attr(conv, "strides") or [1, 1])[1])],
              "dilations": [int((_attr(conv, "dilations") or [1, 1])[1])], "group": int(_attr(conv, "group", 1))}
        pads = _attr(conv, "pads") or [0, 0, 0, 0]
        kw["pads"] = [int(pads[1]), int(pads[3])]
        final = tail[-1].output[0]
        names = [f"{base}__1d"] + [f"{(n.name or n.output[0])}__1d" for n in chain]
        if out_perm == [0, 1, 2]:
            names[-1] = final
        new.append(helper.make_node("Conv", [x, w_name] + list(conv.input[2:]), [names[0]], name=conv.name, **kw))
        prev = names[0]
        for n, out in zip(chain, names[1:]):
            ins = [prev if i in (conv.output[0], *(c.output[0] for c in chain)) else i for i in n.input]
            m = helper.make_node(n.op_type, ins, [out], name=n.name, domain=n.domain)
            m.attribute.extend(n.attribute)
            new.append(m)
            prev = out
        if out_perm != [0, 1, 2]:
            new.append(helper.make_node("Transpose", [prev], [final], perm=out_perm, name=tail[-1].name or final))
        pos = list(g.node).index(conv)
        for n in [conv, *chain, *tail]:
            g.node.remove(n)
        for k, n in enumerate(new):
            g.node.insert(pos + k, n)
        _remove_dead(model, {id(n) for n in front})
        done += 1
    if done:
        stale = {o for n in g.node for o in n.output}
        keep_vi = [vi for vi in g.value_info if vi.name in stale]
        del g.value_info[:]
        g.value_info.extend(keep_vi)
        if log:
            log(f"graph rewrite: {done} Conv1D written as a 2-D Conv on a unit axis made a 1-D Conv")
    return done


def global_pool_as_reduce(model, *, log=None) -> int:
    """Rewrite ``GlobalAveragePool`` / ``GlobalMaxPool`` of a 3-D tensor into ``ReduceMean`` / ``ReduceMax``
    over axis 2 with ``keepdims=1``: the same values.

    tf2onnx writes a Keras ``LayerNormalization``'s mean over the features of a ``[N, T, F]`` sequence as a
    ``GlobalAveragePool``; onnx2tf reads every 3-D global pool as pooling over the time axis of a
    channels-last tensor and, where its tensor is not transposed (or T equals F), averages the wrong axis.
    A reduce names its axis, which onnx2tf maps through its own layout bookkeeping. Returns how many were
    rewritten (0: the model is untouched)."""
    import numpy as np
    from onnx import helper, numpy_helper

    g = model.graph
    pools = [n for n in g.node if n.op_type in ("GlobalAveragePool", "GlobalMaxPool") and n.domain in ("", "ai.onnx")]
    if not pools:
        return 0
    shapes = static_shapes(model)
    opset = _opset(model)
    done = 0
    for n in pools:
        if len(shapes.get(n.input[0]) or []) != 3:
            continue
        op = "ReduceMean" if n.op_type == "GlobalAveragePool" else "ReduceMax"
        name = n.name or n.output[0]
        if opset >= 18:
            axes = f"{name}__axes"
            g.initializer.append(numpy_helper.from_array(np.array([2], dtype=np.int64), axes))
            new = helper.make_node(op, [n.input[0], axes], list(n.output), keepdims=1, name=n.name)
        else:
            new = helper.make_node(op, [n.input[0]], list(n.output), axes=[2], keepdims=1, name=n.name)
        pos = list(g.node).index(n)
        g.node.remove(n)
        g.node.insert(pos, new)
        done += 1
    if done and log:
        log(f"graph rewrite: {done} global pool(s) of a 3-D tensor written as a reduce over its last axis")
    return done


def fold_scale_into_conv(model, *, log=None) -> int:
    """Fold a per-channel ``Mul`` by a constant and / or ``Add`` of a constant that follows a ``Conv`` with
    constant weights into that convolution's weights and bias: a batch normalisation tf2onnx left unfused
    (it does so after Keras depthwise convolutions).

    onnx2tf transposes that ``[1, C, 1, 1]`` scale the wrong way after a depthwise convolution ("Dimensions must
    be equal … [?, 48, 48, 16], [1, 1, 16, 1]"); onnxsim, which onnx2tf runs by default, fuses the same pair.
    The folded convolution computes ``x * (w·s) + (b·s + t)`` instead of ``(x * w + b)·s + t``: equal up to
    float32 rounding. Returns how many Mul / Add nodes were folded (0: the model is untouched)."""
    import numpy as np
    from onnx import numpy_helper

    g = model.graph
    if not any(n.op_type == "Conv" for n in g.node):
        return 0
    _, consumers, consts = _graph_index(model)
    graph_outputs = {o.name for o in g.output}
    inits = {t.name: t for t in g.initializer}
    done = 0
    for conv in list(g.node):
        if conv.op_type != "Conv" or conv.domain not in ("", "ai.onnx") or len(conv.input) < 2:
            continue
        w = _const_array(consts, conv.input[1])
        if w is None or w.dtype != np.float32:
            continue
        co, rank = w.shape[0], w.ndim
        b = _const_array(consts, conv.input[2]) if len(conv.input) > 2 and conv.input[2] else np.zeros(co, w.dtype)
        if b is None or b.shape != (co,):
            continue
        folded = []
        cur = conv.output[0]
        while True:
            outs = consumers.get(cur, [])
            if cur in graph_outputs or len(outs) != 1:
                break
            nxt = outs[0]
            if nxt.op_type not in ("Mul", "Add") or len(nxt.input) != 2 or nxt.domain not in ("", "ai.onnx"):
                break
            other = nxt.input[1] if nxt.input[0] == cur else nxt.input[0]
            c = _const_array(consts, other)
            if c is None or other == cur or c.dtype != np.float32 or c.ndim > rank:
                break
            full = c.reshape((1,) * (rank - c.ndim) + c.shape)
            if full.shape[0] != 1 or any(d != 1 for d in full.shape[2:]) or full.shape[1] not in (1, co):
                break
            vec = np.broadcast_to(full.reshape(-1), (co,)).astype(np.float32)
            if nxt.op_type == "Mul":
                w = w * vec.reshape((co,) + (1,) * (rank - 1))
                b = b * vec
            else:
                b = b + vec
            folded.append(nxt)
            cur = nxt.output[0]
        if not folded:
            continue
        base = conv.name or conv.output[0]
        w_name, b_name = f"{base}__w_folded", f"{base}__b_folded"
        for name, arr in ((w_name, w), (b_name, b)):
            if name in inits:
                inits[name].CopyFrom(numpy_helper.from_array(arr.astype(np.float32), name))
            else:
                inits[name] = g.initializer.add()
                inits[name].CopyFrom(numpy_helper.from_array(arr.astype(np.float32), name))
        del conv.input[1:]
        conv.input.extend([w_name, b_name])
        conv.output[0] = cur  # the last folded node's output: what the rest of the graph reads
        for n in folded:
            g.node.remove(n)
        done += len(folded)
        _, consumers, consts = _graph_index(model)
    if done:
        _remove_dead(model, set())
        outs = {o for n in g.node for o in n.output}
        keep_vi = [vi for vi in g.value_info if vi.name in outs]
        del g.value_info[:]
        g.value_info.extend(keep_vi)
        if log:
            log(f"graph rewrite: {done} per-channel Mul / Add after a Conv folded into its weights")
    return done


def uniform_gather_elements(model, *, log=None) -> int:
    """Rewrite ``GatherElements(data, indices)`` whose ``data`` is a constant holding one value throughout into
    that value in the shape of ``indices`` (a constant where the shape is static, else ``ConstantOfShape`` of
    its ``Shape``): every element it could pick is that value.

    transformers' RoBERTa-family embeddings gather their token-type ids from an all-zero buffer this way.
    onnx2tf builds ``GatherElements`` from a ``tf.meshgrid`` whose inputs tf_keras does not all record, so the
    ``.h5`` it writes cannot be read back ("IndexError: list index out of range" rebuilding the graph).
    Returns how many were rewritten (0: the model is untouched)."""
    import numpy as np
    from onnx import helper, numpy_helper

    g = model.graph
    nodes = [n for n in g.node if n.op_type == "GatherElements" and n.domain in ("", "ai.onnx") and len(n.input) == 2]
    if not nodes:
        return 0
    _, _, consts = _graph_index(model)
    graph_outputs = {o.name for o in g.output}
    shapes = None
    done = 0
    for n in nodes:
        data = _const_array(consts, n.input[0])
        if data is None or data.size == 0 or not np.all(data == data.reshape(-1)[0]):
            continue
        value = data.reshape(-1)[:1]
        if shapes is None:
            shapes = static_shapes(model)
        shape = shapes.get(n.input[1])
        out = n.output[0]
        name = n.name or out
        pos = list(g.node).index(n)
        g.node.remove(n)
        if shape is not None and all(isinstance(d, int) and d > 0 for d in shape) and out not in graph_outputs:
            g.initializer.append(numpy_helper.from_array(np.full(shape, value[0], dtype=data.dtype), out))
        else:
            g.node.insert(pos, helper.make_node("Shape", [n.input[1]], [f"{name}__shape"], name=f"{name}__shape"))
            g.node.insert(pos + 1, helper.make_node("ConstantOfShape", [f"{name}__shape"], [out], name=name,
                                                    value=numpy_helper.from_array(value.astype(data.dtype))))
        done += 1
    if done:
        _remove_dead(model, set())
        outs = {o for m in g.node for o in m.output}
        keep_vi = [vi for vi in g.value_info if vi.name in outs]
        del g.value_info[:]
        g.value_info.extend(keep_vi)
        if log:
            log(f"graph rewrite: {done} GatherElements from a constant of one value made that value")
    return done
