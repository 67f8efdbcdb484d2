"""Rewrites of ONNX forms that onnx2tf converts wrongly, into forms that compute the same values.

onnx2tf decides per tensor whether it holds channels-first data it must transpose; it guesses from shapes and
from the op, and some forms tf2onnx writes for Keras models defeat the guess. Each rewrite here replaces such
a form by one that computes the same values and that onnx2tf converts the way a PyTorch export converts:
a 1-D convolution written as a unit-height 2-D one, 3-D global pools written as reduces, a batch norm left
after a depthwise convolution, a GatherElements whose indices are one value. Each returns how many it
rewrote. (Split from :mod:`converters.onnx_fold`, which re-exports them, along its section banner.)
"""
from __future__ import annotations

from .onnx_fold import _opset, _subgraph_inputs, static_shapes

__all__ = ["conv1d_from_unit_conv2d", "global_pool_as_reduce", "fold_scale_into_conv", "uniform_gather_elements"]

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
