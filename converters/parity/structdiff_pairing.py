"""The pairing tiers of a structural diff: every node of A paired with at most one node of B.

:func:`pair_nodes` runs the tiers the docs of :mod:`converters.parity.structdiff` describe (name,
weights, structure, neighbour, order, position); :func:`_kind` is the op kind both the pairing and the
comparison of a pair use. Re-exported by :mod:`converters.parity.structdiff`.
"""
from __future__ import annotations

import re

import numpy as np

__all__ = ["pair_nodes"]

# Keras layer names the structure module's table spells otherwise
_MORE_KINDS = {"maxpooling": "maxpool", "averagepooling": "avgpool", "globalaveragepooling": "avgpool",
               "globalmaxpooling": "maxpool", "batchnormalization": "norm", "layernormalization": "norm",
               "activation": "activation", "zeropadding": "pad"}


def _kind(op: str) -> str:
    from .structure import op_kind

    k = op_kind(op)
    return _MORE_KINDS.get(re.sub(r"_?[123]d$", "", k), k)


def pair_nodes(ia, ib, notes: list[str]) -> dict[int, tuple[int, str]]:
    """A's node index -> (B's node index, method) for every node the tiers pair (see the module docs)."""
    from .plan import _tail_in
    from .structure import _align, _anchors, _increasing

    pairs: dict[int, tuple[int, str]] = {}
    taken: set[int] = set()

    def add(i: int, j: int, method: str) -> None:
        if i not in pairs and j not in taken:
            pairs[i] = (j, method)
            taken.add(j)

    # 1. names: the node's own, then its outputs'
    doubtful: list[tuple[int, int]] = []
    for i, n in enumerate(ia.nodes):
        j = ib.by_name.get(n.name) if n.name else None
        if j is None or j in taken:
            j = None
            for v in n.outputs:
                if not v:
                    continue
                k = ib.producer.get(v)
                if k is None and v not in ia.inputs:
                    t = _tail_in(v, ib)
                    k = ib.producer.get(t) if t else None
                if k is not None and k not in taken:
                    j = k
                    break
        if j is None:
            continue
        if _kind(n.op_type) != _kind(ib.nodes[j].op_type):
            doubtful.append((i, j))
            taken.add(j)  # held until its neighbours speak for it
            continue
        add(i, j, "name")
    for i, j in doubtful:
        taken.discard(j)
        if _wired_alike(ia, i, ib, j, pairs):
            add(i, j, "name")
    # 2. weights: main weights of the same values, unique on both sides
    free_a = {i for i in range(len(ia.nodes)) if i not in pairs and ia.is_data(i)}
    free_b = {j for j in range(len(ib.nodes)) if j not in taken and ib.is_data(j)}
    for i, j in _anchors(ia, ib, free_a, free_b, notes):
        add(i, j, "weights")
    # 3. structure: what lies between pairs, aligned by op kind and output size

    def segments():
        cuts = [(-1, -1)] + _increasing(sorted((i, j) for i, (j, _m) in pairs.items())) + \
            [(len(ia.nodes), len(ib.nodes))]
        for (a0, b0), (a1, b1) in zip(cuts, cuts[1:]):
            yield ([i for i in range(a0 + 1, a1) if i not in pairs and ia.nodes[i].outputs],
                   [j for j in range(b0 + 1, b1) if j not in taken and ib.nodes[j].outputs])

    for seg_a, seg_b in list(segments()):
        for i, j in _align(ia, seg_a, ib, seg_b):
            add(i, j, "structure")
    # 4. neighbours of pairs, at the same input position and of the same kind
    for _ in range(64):
        before = len(pairs)
        for i, (j, _m) in list(pairs.items()):
            na, nb = ia.nodes[i], ib.nodes[j]
            for xa, xb in zip(na.inputs, nb.inputs):
                pa, pb = ia.producer.get(xa) if xa else None, ib.producer.get(xb) if xb else None
                if pa is not None and pb is not None and pa not in pairs and pb not in taken and \
                        _kind(ia.nodes[pa].op_type) == _kind(ib.nodes[pb].op_type):
                    add(pa, pb, "neighbour")
            ca = [k for o in na.outputs[:1] if o for k in ia.consumers_of(o) if k not in pairs]
            cb = [k for o in nb.outputs[:1] if o for k in ib.consumers_of(o) if k not in taken]
            kinds_a = [_kind(ia.nodes[k].op_type) for k in ca]
            kinds_b = [_kind(ib.nodes[k].op_type) for k in cb]
            for k, ka in zip(ca, kinds_a):
                if kinds_a.count(ka) == 1 and kinds_b.count(ka) == 1:
                    add(k, cb[kinds_b.index(ka)], "neighbour")
        if len(pairs) == before:
            break
    # 5. order: what is left, by op kind alone between the pairs around it
    for seg_a, seg_b in list(segments()):
        for i, j in _lcs([_kind(ia.nodes[i].op_type) for i in seg_a], [_kind(ib.nodes[j].op_type) for j in seg_b]):
            add(seg_a[i], seg_b[j], "order")
    # 6. position: one node left between the same pairs on both sides (fed by a pair, feeding a pair) is
    # the same node with another op (a replaced activation in a file whose names say nothing)
    for i in range(len(ia.nodes)):
        if i in pairs or not ia.nodes[i].outputs:
            continue
        j = _slot_partner(ia, i, ib, pairs, taken)
        if j is not None:
            add(i, j, "position")
    return pairs


def _slot_partner(ia, i: int, ib, pairs: dict[int, tuple[int, str]], taken: set[int]) -> int | None:
    """B's only unpaired node fed from the partner of what feeds A's node ``i`` (itself the only unpaired
    node fed from there), when what each one feeds is paired too."""
    back = {j: a for a, (j, _m) in pairs.items()}
    for x in ia.nodes[i].inputs:
        pa = ia.producer.get(x) if x else None
        if pa is None or pa not in pairs:
            continue
        pb = pairs[pa][0]
        k = ia.nodes[pa].outputs.index(x)
        if k >= len(ib.nodes[pb].outputs):
            continue
        xb = ib.nodes[pb].outputs[k]
        here_a = [c for c in ia.consumers_of(x) if c not in pairs]
        here_b = [c for c in ib.consumers_of(xb) if c not in taken]
        if len(here_a) != 1 or len(here_b) != 1:
            continue
        j = here_b[0]
        feeds_a = {pairs[c][0] for o in ia.nodes[i].outputs if o for c in ia.consumers_of(o) if c in pairs}
        feeds_b = {c for o in ib.nodes[j].outputs if o for c in ib.consumers_of(o) if c in back}
        out_a = {o for o in ia.nodes[i].outputs if o} & set(ia.graph.outputs)
        if (feeds_a and feeds_a == feeds_b) or (out_a and not feeds_a and not feeds_b):
            return j
    return None


def _wired_alike(ia, i: int, ib, j: int, pairs: dict[int, tuple[int, str]]) -> bool:
    """Whether some input of A's node ``i`` and the same input of B's node ``j`` come from one pair (or
    are the same graph input)."""
    for xa, xb in zip(ia.nodes[i].inputs, ib.nodes[j].inputs):
        if not xa or not xb:
            continue
        pa, pb = ia.producer.get(xa), ib.producer.get(xb)
        if pa is not None and pb is not None and pairs.get(pa, (None,))[0] == pb:
            return True
        if pa is None and pb is None and xa == xb and xa in ia.inputs:
            return True
    return False


def _lcs(ta: list[str], tb: list[str]) -> list[tuple[int, int]]:
    n, m = len(ta), len(tb)
    if not n or not m or n * m > 4_000_000:
        return []
    dp = np.zeros((n + 1, m + 1), dtype=np.int32)
    for x in range(n - 1, -1, -1):
        for y in range(m - 1, -1, -1):
            dp[x, y] = dp[x + 1, y + 1] + 1 if ta[x] == tb[y] else max(dp[x + 1, y], dp[x, y + 1])
    out, x, y = [], 0, 0
    while x < n and y < m:
        if ta[x] == tb[y]:
            out.append((x, y))
            x, y = x + 1, y + 1
        elif dp[x + 1, y] >= dp[x, y + 1]:
            x += 1
        else:
            y += 1
    return out
