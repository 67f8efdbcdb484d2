"""What the view groups a graph by: scopes where the file has them, else its structure (numpy, no Qt).

* **Weights beside their consumer.** A weight producer (a ``Constant``, or an Identity / Cast /
  Transpose / DequantizeLinear chain fed only by stored weights) is drawn in its consumer's group and
  just before it in drawing order (``rank``), so the layout puts it one layer above the consumer
  instead of at the top of the graph with a long edge.
* **Graphs without scopes** (ONNX files from converters that drop names, flattened exports) are grouped
  by structure. Cut points of the dataflow are where a single tensor carries everything onward (a
  residual stream between two transformer layers, a feature map between two ResNet blocks); tensors
  read all along the graph (an attention mask, rotary tables) do not count. The stretches between cuts
  are compared by their ops and wiring, and repeated runs of them become numbered blocks named by
  what they do: ``block 3 (Conv·BatchNorm·Relu·Add)`` (more than :data:`RUN_GROUP` of them in
  one run go in a group ``blocks 1–178 (…)``). What repeats nowhere becomes
  ``section k (…)`` groups of a readable size. No group is ever named by node numbers.

Everything is close to linear in nodes + edges (the repeat search is one vectorised pass per period,
periods up to :data:`MAX_PERIOD` stretches).
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

__all__ = ["view_grouping", "weight_anchors", "structural_scopes", "op_summary", "MAX_PERIOD"]

MAX_PERIOD = 96            # longest repeated unit searched, in stretches between cut points
MAX_CHAIN = 8              # longest chain of weight producers (Constant -> Cast -> Transpose -> ...)
MIN_BLOCK = 3              # fewest nodes in a repeated block
MIN_GRAPH = 16             # graphs with fewer (non-weight) nodes are left ungrouped
SECTION_MIN = 8            # a stretch that repeats nowhere becomes a section from this many nodes
SECTION_MAX = 120          # and is cut into sections of about this many at most
RUN_GROUP = 24             # a run of more blocks than this is put in a group of its own
SCOPED_FRACTION = 0.5      # a graph is scoped when this share of its nodes has a scope

# ops that say little about what a block does (left out of its name when others are there)
_PLAIN = {"reshape", "transpose", "shape", "gather", "unsqueeze", "squeeze", "constant", "cast", "identity",
          "concat", "slice", "expand", "constantofshape", "range", "flatten", "dropout", "castlike",
          "gatherelements", "gathernd", "where", "equal", "not", "tile", "split", "size"}

# arithmetic that nearly every block holds: left out first when a block has more ops than its name shows
_MINOR = {"add", "mul", "sub", "div", "pow", "sqrt", "neg", "reciprocal", "reducemean"}


# short names of long op types, for block names that fit on a box
_SHORT = {"layernormalization": "LayerNorm", "batchnormalization": "BatchNorm", "instancenormalization": "InstanceNorm",
          "groupnormalization": "GroupNorm", "simplifiedlayernormalization": "RMSNorm",
          "skiplayernormalization": "SkipLayerNorm", "rmsnormalization": "RMSNorm",
          "globalaveragepool": "GlobalAvgPool", "multiheadattention": "Attention",
          "dequantizelinear": "Dequantize", "quantizelinear": "Quantize"}


def op_summary(ops: Sequence[str], most: int = 4) -> str:
    """The distinct ops of a block in order of first use, plain reshaping ops left out where others are
    there, at most ``most``, long names shortened: ``"LayerNorm·MatMul·Softmax·Relu…"``."""
    seen = list(dict.fromkeys(_SHORT.get(o.lower(), o.replace("/", "_")) for o in ops))
    telling = [o for o in seen if o.lower() not in _PLAIN] or seen
    shown = telling if len(telling) <= most else [o for o in telling if o.lower() not in _MINOR] or telling
    return "·".join(shown[:most]) + ("…" if len(telling) > len(shown[:most]) else "")


def weight_anchors(nodes, src: np.ndarray, dst: np.ndarray, in_dst=()):
    """(is_weight, anchor) per node: weight producers, each anchored to the first node that uses what it
    makes (through the rest of its chain); every other node is its own anchor.

    A weight producer reads no graph input (``in_dst``: the nodes that do) and at most one node's output,
    that of another weight producer (chains, not whole constant subgraphs; at most
    :data:`MAX_CHAIN` long); the rest of what it reads are stored weights."""
    n = len(nodes)
    cand = ~np.fromiter((bool(nd.subgraphs) for nd in nodes), bool, n)
    cand[np.asarray(in_dst, np.int64)] = False
    npred = np.bincount(dst, minlength=n)
    is_w = cand & (npred == 0)
    one = np.flatnonzero(cand & (npred == 1))
    pred_of = np.zeros(n, np.int64)
    sel = (npred[dst] == 1) & cand[dst]
    pred_of[dst[sel]] = src[sel]
    for _ in range(MAX_CHAIN):
        grow = one[is_w[pred_of[one]] & ~is_w[one]]
        if not len(grow):
            break
        is_w[grow] = True
    anchor = np.arange(n)
    if not is_w.any() or is_w.sum() * 2 > n:      # a graph of constants: nothing to place beside
        return np.zeros(n, bool), anchor
    first = np.full(n, n, np.int64)               # first consumer of each node
    np.minimum.at(first, src, dst)
    for v in np.flatnonzero(is_w)[::-1].tolist():
        c = int(first[v])
        if c < n:
            anchor[v] = anchor[c]
    return is_w, anchor


def view_grouping(nodes, src, dst, in_src=(), in_dst=(), node_op: np.ndarray | None = None,
                  op_names: Sequence[str] | None = None) -> tuple[list[str], np.ndarray]:
    """(scope per node, drawing rank per node) for the view of a graph: the file's scopes when it has
    them, else groups found from its structure; weight producers in their consumer's group, ranked
    just before it. ``src``/``dst``: the edges between nodes; ``in_src``/``in_dst``: from graph inputs
    (any ids) to the nodes reading them; ``node_op`` / ``op_names``: op ids and their table, where the
    caller has them."""
    n = len(nodes)
    src = np.asarray(src, np.int64)
    dst = np.asarray(dst, np.int64)
    is_w, anchor = weight_anchors(nodes, src, dst, in_dst)
    core = ~is_w
    scopes = [nd.scope or "" for nd in nodes]
    n_core = int(core.sum())
    scoped = sum(1 for i in np.flatnonzero(core).tolist() if scopes[i]) >= SCOPED_FRACTION * max(n_core, 1)
    if not scoped:
        ops = node_op if node_op is not None else [nd.op_type for nd in nodes]
        scopes = structural_scopes(ops, core, src, dst, in_src, in_dst, op_names)
    for v in np.flatnonzero(is_w).tolist():
        scopes[v] = scopes[int(anchor[v])]
    order = np.lexsort((np.arange(n), core.astype(np.int8), anchor))
    rank = np.empty(n, np.int64)
    rank[order] = np.arange(n)
    return scopes, rank


def structural_scopes(ops: Sequence[str] | np.ndarray, core: np.ndarray, src: np.ndarray, dst: np.ndarray,
                      in_src=(), in_dst=(), op_names: Sequence[str] | None = None) -> list[str]:
    """Group paths (blocks, sections, long runs of blocks in a group of their own; '' for nodes left at
    the top) for the nodes marked ``core`` (the others get '' here); nodes assumed in topological order. Graph inputs (edges
    ``in_src`` -> ``in_dst``) are read like outputs of nodes before the first one. ``ops``: op types,
    or op ids into ``op_names``."""
    n = len(ops)
    scopes = [""] * n
    cidx = np.flatnonzero(core)
    nc = len(cidx)
    if nc < MIN_GRAPH:
        return scopes
    pos = np.full(n, -1, np.int64)
    pos[cidx] = np.arange(nc)
    m = (pos[src] >= 0) & (pos[dst] >= 0)
    ps, pd = pos[src[m]], pos[dst[m]]
    fwd = ps < pd
    ps, pd = ps[fwd], pd[fwd]

    # cut points: after position b when at most one non-global node's output is still to be read
    last = np.arange(nc)
    np.maximum.at(last, ps, pd)
    span = last - np.arange(nc)
    wide = max(nc / 3, 48)
    local = (span > 0) & (span <= wide)
    diff = np.zeros(nc + 1, np.int64)
    np.add.at(diff, np.flatnonzero(local), 1)
    np.add.at(diff, last[local], -1)
    in_src, in_dst = np.asarray(in_src, np.int64), np.asarray(in_dst, np.int64)
    if len(in_src):
        ip = pos[in_dst]
        ok = ip >= 0
        k = in_src[ok] - in_src.min(initial=0)
        in_last = np.zeros(int(k.max(initial=-1)) + 1, np.int64)
        np.maximum.at(in_last, k, ip[ok])
        in_last = in_last[(in_last > 0) & (in_last + 1 <= wide)]
        diff[0] += len(in_last)
        np.add.at(diff, in_last, -1)
    crossing = np.cumsum(diff)[:nc - 1]
    starts = np.concatenate([[0], np.flatnonzero(crossing <= 1) + 1])
    seg_of = np.repeat(np.arange(len(starts)), np.diff(np.append(starts, nc)))
    M = len(starts)
    size = np.diff(np.append(starts, nc))
    csum = np.concatenate([[0], np.cumsum(size)])

    # a signature per stretch: its ops and its inner wiring (local indices)
    if isinstance(ops, np.ndarray):                # op ids into op_names (the view pack's op table)
        op_arr = ops[cidx].astype(np.int64)
        names_of = list(op_names or [])
    else:
        op_ids: dict[str, int] = {}
        op_arr = np.fromiter((op_ids.setdefault(ops[i], len(op_ids)) for i in cidx.tolist()), np.int64, nc)
        names_of = list(op_ids)
    same = seg_of[ps] == seg_of[pd]
    es = seg_of[ps[same]]
    la, lb = ps[same] - starts[es], pd[same] - starts[es]
    o = np.lexsort((lb, la, es))
    wiring = np.stack([la[o], lb[o]], 1)
    w_at = np.searchsorted(es[o], np.arange(M + 1))
    sig_id: dict[tuple, int] = {}
    S = np.empty(M, np.int64)
    st, sz, wa = starts.tolist(), size.tolist(), w_at.tolist()
    for s in range(M):
        key = (op_arr[st[s]:st[s] + sz[s]].tobytes(), wiring[wa[s]:wa[s + 1]].tobytes())
        S[s] = sig_id.setdefault(key, len(sig_id))

    # repeated runs: for each period p, maximal runs where stretch s equals stretch s + p
    cands = []
    for p in range(1, min(MAX_PERIOD, M // 2) + 1):
        eq = S[:-p] == S[p:]
        if not eq.any():
            continue
        d = np.diff(np.concatenate([[0], eq.astype(np.int8), [0]]))
        rs, re_ = np.flatnonzero(d == 1), np.flatnonzero(d == -1)
        r = re_ - rs
        ok = r >= p
        rs, r = rs[ok], r[ok]
        k = (r + p) // p
        cov = csum[rs + k * p] - csum[rs]
        good = (csum[rs + p] - csum[rs]) >= MIN_BLOCK
        for c, s0, L in zip(cov[good].tolist(), rs[good].tolist(), (r + p)[good].tolist()):
            cands.append((-c, p, s0, L))
    cands.sort()
    # where a block starts, the tensor carried in should branch (a residual stream feeds the block and
    # its skip connection): of a run's rotations, the one whose first cut has the most readers
    outdeg = np.bincount(ps, minlength=nc)
    strength = np.concatenate([[0], outdeg[starts[1:] - 1]])
    taken = np.zeros(M, bool)
    blocks: list[tuple[int, int, int]] = []     # (first stretch, stretches per block, run)
    for _negc, p, s0, L in cands:            # L stretches from s0 on repeat with period p
        if taken[s0:s0 + L // p * p].any():
            continue
        o = max((o for o in range(p) if (L - o) // p >= 2 and not taken[s0 + o:s0 + L].any()),
                key=lambda o: (strength[s0 + o], -o), default=0)
        kk = (L - o) // p
        taken[s0 + o:s0 + o + kk * p] = True
        run_id = len(blocks)
        blocks.extend((s0 + o + j * p, p, run_id) for j in range(kk))

    names: dict[str, int] = {}
    summaries: dict[tuple, str] = {}

    def name_for(kind: str, a: int, b: int, same: tuple | None) -> tuple[int, str]:
        summ = summaries.get(same) if same is not None else None
        if summ is None:
            summ = op_summary([names_of[k] for k in op_arr[a:b].tolist()])
            if same is not None:
                summaries[same] = summ
        key = f"{kind}\0{summ}"
        names[key] = names.get(key, 0) + 1
        return names[key], summ

    # (kind, first core position, end, signature, run)
    labels: list[tuple[str, int, int, tuple | None, int]] = []
    for s0, p, run_id in sorted(blocks):
        labels.append(("block", int(csum[s0]), int(csum[s0 + p]), tuple(S[s0:s0 + p].tolist()), run_id))
    # stretches that repeat nowhere: sections of a readable size (alone they would be the whole graph)
    free = np.flatnonzero(~taken)
    if len(free) and (taken.any() or nc > SECTION_MAX):
        runs = np.split(free, np.flatnonzero(np.diff(free) > 1) + 1)
        for run in runs:
            a, b = int(csum[run[0]]), int(csum[run[-1] + 1])
            if b - a < SECTION_MIN:
                continue
            piece = a
            for s in run.tolist():
                e = int(csum[s + 1])
                if e - piece >= SECTION_MAX // 2 or s == run[-1]:
                    while e - piece > SECTION_MAX:       # one long stretch: consecutive chunks
                        labels.append(("section", piece, piece + SECTION_MAX, None, -1))
                        piece += SECTION_MAX
                    if e > piece:
                        labels.append(("section", piece, e, None, -1))
                    piece = e
    labels.sort(key=lambda t: t[1])
    paths = [""]
    at = np.zeros(nc, np.int64)
    runs_of: dict[int, list[tuple[int, int, str]]] = {}      # run -> (path index, number, summary)
    for kind, a, b, same, run_id in labels:
        at[a:b] = len(paths)
        num, summ = name_for(kind, a, b, same)
        if run_id >= 0:
            runs_of.setdefault(run_id, []).append((len(paths), num, summ))
        paths.append(f"{kind} {num} ({summ})")
    # a long run of blocks (hundreds of layers) gets a group of its own: "blocks 1–178 (…)"
    for members in runs_of.values():
        if len(members) > RUN_GROUP:
            head = f"blocks {members[0][1]}–{members[-1][1]} ({members[0][2]})"
            for k, _num, _summ in members:
                paths[k] = f"{head}/{paths[k]}"
    for i, k in zip(cidx.tolist(), at.tolist()):
        scopes[i] = paths[k]
    return scopes
