"""Pairing layers by structure, for two models with no map and no shared names (converted elsewhere).

Two steps, each recorded as its own method on the pairs it finds:

``weights``
    Anchors: a layer of A and a layer of B whose main weight (their largest stored input) holds the same
    values, recognised by a fingerprint that a transpose, a reshape or a float16 copy does not change
    (element count, then sum, sum of squares, sum of magnitudes and extremes, compared with a relative
    tolerance). Only fingerprints that are unique on both sides anchor a pair: the all-ones scale of every
    LayerNorm, or zero biases, say nothing about which layer is which.
``structure``
    Between two consecutive anchors (and before the first, after the last), the layers of A and B that
    are left are aligned in topological order by op kind and the size of their output (a longest common
    subsequence); aligned layers of the same kind and size pair.

What one side folded into an op, and the other did not, moves the pair past it on the other side: a
batch norm folded into a convolution, a bias add, an activation fused as an attribute (TFLite's
``fusedActivationFunction``). The pair then compares the tensors after it, and the folded ops are not
paired again.
Layout-only ops are never paired here (as with names): they do no arithmetic, and converters add and
drop them freely.
"""
from __future__ import annotations

import re
from typing import Any

import numpy as np

__all__ = ["fingerprint", "op_kind", "pair_by_structure"]

REL = 2e-3  # fingerprints within this relative difference are the same weight (float16 copies included)
MIN_WEIGHT = 16  # weights smaller than this (a scalar, a tiny bias) are not fingerprinted

# op kinds across frameworks (ONNX, aten, TF, TFLite spellings, lower-cased, without "_2d" etc.)
_KINDS = {
    "conv": ("conv", "convolution", "conv2d", "conv1d", "conv3d", "depthwiseconv", "depthwise_conv", "convinteger",
             "qlinearconv", "conv_2d", "depthwise_conv_2d", "conv_3d", "convtranspose", "conv_transpose",
             "transpose_conv", "conv2dbackpropinput"),
    "matmul": ("matmul", "gemm", "linear", "fully_connected", "batch_matmul", "bmm", "mm", "addmm", "einsum",
               "batchmatmul", "batchmatmulv2", "batchmatmulv3", "dense"),
    "add": ("add", "addv2", "sum", "add_n", "addn", "biasadd", "bias_add"),
    "sub": ("sub", "subtract", "rsub"),
    "mul": ("mul", "multiply"),
    "div": ("div", "realdiv", "divide", "true_divide"),
    "relu": ("relu", "relu_", "relu6", "clip", "hardtanh", "clamp", "leakyrelu", "leaky_relu", "prelu", "elu", "selu"),
    "sigmoid": ("sigmoid", "logistic", "hardsigmoid", "hard_sigmoid"),
    "tanh": ("tanh",),
    "gelu": ("gelu",),
    "swish": ("silu", "swish", "hardswish", "hard_swish"),
    "softmax": ("softmax", "_softmax", "safe_softmax", "_safe_softmax"),
    "logsoftmax": ("logsoftmax", "log_softmax", "_log_softmax"),
    "maxpool": ("maxpool", "max_pool", "max_pool2d", "max_pool2d_with_indices", "globalmaxpool", "reducemax",
                "amax", "max"),
    "avgpool": ("averagepool", "avgpool", "avg_pool", "average_pool", "avg_pool2d", "average_pool_2d",
                "globalaveragepool", "adaptive_avg_pool2d", "reducemean", "mean"),
    "norm": ("layernormalization", "layer_norm", "batchnormalization", "batch_norm", "instancenormalization",
             "instance_norm", "group_norm", "groupnormalization", "fusedbatchnorm", "fusedbatchnormv3",
             "native_layer_norm", "_native_batch_norm_legit_no_training", "rms_norm", "simplifiedlayernormalization"),
    "concat": ("concat", "cat", "concatenation", "concatv2"),
    "gather": ("gather", "embedding", "index_select", "gatherv2", "take"),
    "pow": ("pow", "square"),
    "sqrt": ("sqrt",),
    "rsqrt": ("rsqrt",),
    "exp": ("exp",),
    "erf": ("erf",),
}
_KIND_OF = {name: kind for kind, names in _KINDS.items() for name in names}
# activations a converter may fuse into the op before them
_FUSIBLE = {"relu", "sigmoid", "tanh", "swish"}


def op_kind(op: str) -> str:
    """One spelling for an op across frameworks: ``Conv``, ``aten.conv2d.default`` and ``CONV_2D`` are
    ``conv``; an op this table does not know is its own lower-cased base name."""
    base = op.split("::")[-1]
    if base.startswith(("aten.", "torch.ops.aten.")):
        base = base.split("aten.", 1)[1].split(".")[0]
    base = base.lower()
    return _KIND_OF.get(base) or _KIND_OF.get(re.sub(r"_?[123]d$", "", base)) or base


def fingerprint(array) -> tuple | None:
    """What a weight's values are, whatever their layout: (count, sum, sum of squares, sum of
    magnitudes, min, max) in float64; None for small or constant weights (they say nothing)."""
    a = np.asarray(array)
    if a.size < MIN_WEIGHT or a.dtype.kind not in "fiu":
        return None
    x = a.astype(np.float64).ravel()
    lo, hi = float(x.min()), float(x.max())
    if lo == hi or not (np.isfinite(lo) and np.isfinite(hi)):
        return None
    return (int(x.size), float(x.sum()), float(np.dot(x, x)), float(np.abs(x).sum()), lo, hi)


def _same(f: tuple, g: tuple) -> bool:
    if f[0] != g[0]:
        return False
    scale = max(f[3] / f[0], 1e-12)  # the mean magnitude: sums near zero compare on that scale
    if abs(f[1] - g[1]) > REL * f[3] + 1e-9:
        return False
    if abs(f[2] - g[2]) > REL * max(f[2], g[2]):
        return False
    if abs(f[3] - g[3]) > REL * max(f[3], g[3]):
        return False
    return abs(f[4] - g[4]) <= REL * max(abs(f[4]), scale) + 1e-6 and \
        abs(f[5] - g[5]) <= REL * max(abs(f[5]), scale) + 1e-6


def _main_weight(graph, node) -> Any:
    """The node's largest stored input (its kernel or matrix), or None."""
    best, size = None, 0
    for x in node.inputs:
        t = graph.initializers.get(x) if x else None
        if t is not None and t.numel > size:
            best, size = t, t.numel
    return best


def _fingerprints(index, notes: list[str]) -> dict[int, tuple]:
    out: dict[int, tuple] = {}
    failed = 0
    for i, n in enumerate(index.nodes):
        if not index.is_data(i):
            continue
        t = _main_weight(index.graph, n)
        if t is None or t.numel < MIN_WEIGHT:
            continue
        cached = t._cache is not None
        try:
            f = fingerprint(t.numpy())
        except Exception:  # a weight the reader cannot give (not stored, needs trust): no anchor there
            failed += 1
            continue
        finally:
            if not cached:
                t._cache = None  # one weight at a time in memory
        if f is not None:
            out[i] = f
    if failed:
        notes.append(f"{failed} weight(s) could not be read to pair layers by their values")
    return out


def _anchors(ia, ib, free_a: set[int], free_b: set[int], notes: list[str]) -> list[tuple[int, int]]:
    fa = {i: f for i, f in _fingerprints(ia, notes).items() if i in free_a}
    fb = {j: f for j, f in _fingerprints(ib, notes).items() if j in free_b}
    by_count: dict[int, list[int]] = {}
    for j, g in fb.items():
        by_count.setdefault(g[0], []).append(j)
    cands: dict[int, list[int]] = {i: [j for j in by_count.get(f[0], []) if _same(f, fb[j])] for i, f in fa.items()}
    rev: dict[int, list[int]] = {}
    for i, js in cands.items():
        for j in js:
            rev.setdefault(j, []).append(i)
    pairs = [(i, js[0]) for i, js in cands.items() if len(js) == 1 and len(rev[js[0]]) == 1]
    # anchors must keep both graphs' order: drop the fewest that cross (longest increasing run in B)
    pairs.sort()
    return _increasing(pairs)


def _increasing(pairs: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """The longest run of ``pairs`` (sorted by A) whose B positions increase too."""
    import bisect

    tails: list[int] = []
    tail_at: list[int] = []
    prev = [-1] * len(pairs)
    for k, (_, j) in enumerate(pairs):
        pos = bisect.bisect_left(tails, j)
        if pos == len(tails):
            tails.append(j)
            tail_at.append(k)
        else:
            tails[pos] = j
            tail_at[pos] = k
        prev[k] = tail_at[pos - 1] if pos else -1
    out: list[tuple[int, int]] = []
    k = tail_at[-1] if tail_at else -1
    while k >= 0:
        out.append(pairs[k])
        k = prev[k]
    return out[::-1]


def _fused(node) -> str | None:
    act = (node.attrs or {}).get("fusedActivationFunction") or (node.attrs or {}).get("fused_activation_function")
    if not act or str(act).upper() in ("NONE", "0"):
        return None
    return op_kind(str(act).lower().replace("_n1_to_1", "").replace("relu6", "relu6"))


def _next(index, i: int) -> int | None:
    """The single consumer of node ``i``'s output, or None."""
    out = index.nodes[i].outputs[0] if index.nodes[i].outputs else None
    users = index.consumers.get(out, []) if out else []
    return users[0] if len(users) == 1 else None


def _folds(index, k: int | None) -> str | None:
    """The kind of node ``k`` when a converter may fold it into the op before it: a normalization, an
    activation, or an elementwise op with one data input (a bias add, a batch norm as mul and add)."""
    if k is None:
        return None
    n = index.nodes[k]
    kind = op_kind(n.op_type)
    if kind == "norm" or kind in _FUSIBLE:
        return kind
    if kind in ("add", "sub", "mul", "div"):
        data = [x for x in n.inputs if x and x in _live(index)]
        if len(data) == 1:
            return kind
    return None


def _live(index) -> set[str]:
    """The values computed from the model's inputs (the rest come from weights alone: a batch norm's
    scale worked out from its variables is a constant here)."""
    live = getattr(index, "_live", None)
    if live is None:
        live = set(index.inputs)
        for n in index.nodes:  # topological order
            if any(x in live for x in n.inputs if x):
                live.update(o for o in n.outputs if o)
        index._live = live
    return live


def _settle(ia, i: int, ib, j: int) -> tuple[int, int, list[int], list[int]]:
    """Where a pair's tensors are compared: past what one side folded into the op and the other did not
    (a batch norm folded into a convolution, a bias add, an activation fused as an attribute)."""
    taken_a: list[int] = []
    taken_b: list[int] = []
    act_a, act_b = _fused(ia.nodes[i]), _fused(ib.nodes[j])
    # a normalization, a bias or a scale folds into a convolution or a matrix product only; an activation
    # into any op that carries it as an attribute
    weighted = bool({op_kind(ia.nodes[i].op_type), op_kind(ib.nodes[j].op_type)} & {"conv", "matmul"})
    for _ in range(4):
        na, nb = _next(ia, i), _next(ib, j)
        ka, kb = _folds(ia, na), _folds(ib, nb)
        if not weighted:
            ka = ka if ka in _FUSIBLE else None
            kb = kb if kb in _FUSIBLE else None
        if ka is not None and ka != kb and (ka not in _FUSIBLE or act_b is not None):
            i = na  # type: ignore[assignment]
            taken_a.append(i)
            if ka in _FUSIBLE:
                act_b = None
            continue
        if kb is not None and kb != ka and (kb not in _FUSIBLE or act_a is not None):
            j = nb  # type: ignore[assignment]
            taken_b.append(j)
            if kb in _FUSIBLE:
                act_a = None
            continue
        break
    return i, j, taken_a, taken_b


def _numel(index, i: int) -> int | None:
    out = index.nodes[i].outputs[0] if index.nodes[i].outputs else None
    shape = index.shape(out) if out else None
    return int(np.prod(shape)) if shape is not None else None


def _fits(ia, i: int, ib, j: int) -> bool:
    sa = ia.shape(ia.nodes[i].outputs[0]) if ia.nodes[i].outputs else None
    sb = ib.shape(ib.nodes[j].outputs[0]) if ib.nodes[j].outputs else None
    if sa is None or sb is None:
        return True
    return sorted(sa) == sorted(sb) or (int(np.prod(sa)) == int(np.prod(sb)) and
                                        sorted(d for d in sa if d != 1) == sorted(d for d in sb if d != 1))


# Elementwise arithmetic is not aligned by structure: converters write one op as several of these (a layer
# norm as mean, sub, mul, add) and fold others away, so "the next add" on each side is often not the same
# tensor. Such ops pair by names and maps only.
_UNALIGNED = {"add", "sub", "mul", "div", "pow", "sqrt", "rsqrt", "exp", "erf", "neg", "abs", "reciprocal",
              "squareddifference", "maximum", "minimum", "where", "equal", "less", "greater", "not", "and", "or"}


def _align(ia, seg_a: list[int], ib, seg_b: list[int]) -> list[tuple[int, int]]:
    """Longest common subsequence of two runs of nodes, tokens being (op kind, output size)."""
    seg_a = [i for i in seg_a if op_kind(ia.nodes[i].op_type) not in _UNALIGNED]
    seg_b = [j for j in seg_b if op_kind(ib.nodes[j].op_type) not in _UNALIGNED]
    if not seg_a or not seg_b or len(seg_a) * len(seg_b) > 4_000_000:
        return []
    ta = [(op_kind(ia.nodes[i].op_type), _numel(ia, i)) for i in seg_a]
    tb = [(op_kind(ib.nodes[j].op_type), _numel(ib, j)) for j in seg_b]
    n, m = len(ta), len(tb)
    dp = np.zeros((n + 1, m + 1), dtype=np.int32)
    for x in range(n - 1, -1, -1):
        for y in range(m - 1, -1, -1):
            if ta[x][0] == tb[y][0] and (ta[x][1] is None or tb[y][1] is None or ta[x][1] == tb[y][1]):
                dp[x, y] = dp[x + 1, y + 1] + 1
            else:
                dp[x, y] = max(dp[x + 1, y], dp[x, y + 1])
    out, x, y = [], 0, 0
    while x < n and y < m:
        same = ta[x][0] == tb[y][0] and (ta[x][1] is None or tb[y][1] is None or ta[x][1] == tb[y][1])
        if same and dp[x, y] == dp[x + 1, y + 1] + 1:
            if _fits(ia, seg_a[x], ib, seg_b[y]):
                out.append((seg_a[x], seg_b[y]))
            x, y = x + 1, y + 1
        elif dp[x + 1, y] >= dp[x, y + 1]:
            x += 1
        else:
            y += 1
    return out


def pair_by_structure(ia, ib, fixed: list[tuple[int, int]], notes: list[str]) -> list[tuple[int, int, str]]:
    """Pairs (A node, B node, method) for nodes not paired yet; see the module docs. ``ia``/``ib`` are the
    plan's graph indexes (nodes in topological order, producers, shapes); ``fixed`` the node pairs other
    methods found (they bound the runs that are aligned, like anchors)."""
    from .plan import is_layout_op

    for index in (ia, ib):
        if not hasattr(index, "consumers"):
            cons: dict[str, list[int]] = {}
            for k, nd in enumerate(index.nodes):
                for x in nd.inputs:
                    if x:
                        cons.setdefault(x, []).append(k)
            index.consumers = cons

    def usable(index, k, paired) -> bool:
        return k not in paired and index.is_data(k) and not is_layout_op(index.nodes[k].op_type) and \
            bool(index.nodes[k].outputs)

    paired_a, paired_b = {i for i, _ in fixed}, {j for _, j in fixed}
    free_a = {i for i in range(len(ia.nodes)) if usable(ia, i, paired_a)}
    free_b = {j for j in range(len(ib.nodes)) if usable(ib, j, paired_b)}
    out: list[tuple[int, int, str]] = []
    anchors = _anchors(ia, ib, free_a, free_b, notes)
    settled: set[int] = set()
    settled_b: set[int] = set()

    def add(i: int, j: int, method: str) -> None:
        if i in settled or j in settled_b:
            return
        ii, jj, more_a, more_b = _settle(ia, i, ib, j)
        if any(k in settled or k in paired_a for k in more_a) or any(k in settled_b or k in paired_b for k in more_b):
            return  # what this pair must reach past is another pair's: comparing here would compare unlike tensors
        settled.update([i, ii, *more_a])
        settled_b.update([j, jj, *more_b])
        out.append((ii, jj, method))

    for i, j in anchors:
        add(i, j, "weights")
    free_a -= settled
    free_b -= settled_b
    # between anchors (in A's and B's order), align what is left by op kind and size
    cuts = [(-1, -1)] + _increasing(sorted(set(anchors) | set(fixed))) + [(len(ia.nodes), len(ib.nodes))]
    for (a0, b0), (a1, b1) in zip(cuts, cuts[1:]):
        seg_a = [i for i in range(a0 + 1, a1) if i in free_a]
        seg_b = [j for j in range(b0 + 1, b1) if j in free_b]
        for i, j in _align(ia, seg_a, ib, seg_b):
            add(i, j, "structure")
    return out
