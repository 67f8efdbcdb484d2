"""Hierarchical layered layout of a graph grouped by scope (numpy, no Qt).

Two parts:

* :func:`build_groups` turns per-node scope paths (``"encoder/layer.3/attn"``) into a group tree: one
  group per scope prefix, single-node groups dissolved into their parent, chains of groups with no
  nodes merged (``"a/b"``), and any group with more than ``cap`` children split into artificial groups
  of consecutive children (flat graphs with no usable scopes become a tree of such chunks).
* :class:`LayoutEngine` lays each group out on its own, top to bottom (Sugiyama style: longest-path
  layering in topological order, dummy points on edges spanning several layers, barycentric ordering
  sweeps, ordered coordinate assignment). A group's children are its nodes and its child groups, the
  latter drawn as boxes when collapsed or as frames holding their own layout when expanded; edges are
  lifted to the level where both ends are children of one group. The combinatorial part (layers,
  order, dummies) is cached per group for good; placements are cached per group and the sizes of its
  expanded children, so expanding one group re-places only that group and its ancestors.

Coordinates are scene units (1 unit = 1 pixel at zoom 1), y grows downward. Everything runs in time
close to linear in nodes + edges.

Items: node ``i`` is item ``i``; group ``g`` is item ``n_nodes + g``. Group 0 is the root (the canvas).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

__all__ = ["build_groups", "Groups", "LayoutEngine", "Layout", "NODE_H", "GROUP_H", "node_width",
           "DEFAULT_CAP"]

DEFAULT_CAP = 500          # most children a group may have before it is split into artificial groups
NODE_H = 34.0              # node box height
GROUP_H = 44.0             # collapsed group box height
GROUP_W = 190.0            # collapsed group box width
H_GAP = 22.0               # horizontal space between neighbours in a layer
V_GAP = 38.0               # vertical space between layers (edges run here)
PAD = 14.0                 # frame padding around an expanded group's content
HEADER = 24.0              # frame title band of an expanded group
DUMMY_W = 8.0              # width reserved for an edge passing through a layer


def node_width(op_type: str) -> float:
    """Box width of a node: room for its op type in a 12 px font, between 72 and 200 units."""
    return float(min(200.0, max(72.0, 7.6 * len(op_type) + 26.0)))


# ---------------------------------------------------------------------------------------------------
# group tree
# ---------------------------------------------------------------------------------------------------
@dataclass
class Groups:
    """The group tree. Arrays are numpy; group 0 is the root with path '' and parent -1.

    ``node_group[i]``: group directly holding node i. ``parent[g]``: parent group. ``path[g]``: scope
    path ('/'-separated; artificial groups get ``parent/#k``). ``label[g]``: short name shown on the box.
    ``artificial[g]``: True for groups made by the size cap rather than by a scope.
    """

    node_group: np.ndarray
    parent: np.ndarray
    path: list[str]
    label: list[str]
    artificial: np.ndarray

    @property
    def n_groups(self) -> int:
        return len(self.path)


def build_groups(scopes: Sequence[str], names: Sequence[str] | None = None, cap: int = DEFAULT_CAP) -> Groups:
    """Group tree from per-node scope paths (nodes assumed in topological order).

    ``names`` (node names) label artificial groups of nodes (``"conv1 … relu9"``). ``cap`` is the most
    children (nodes + groups) a group keeps before being split into artificial groups of consecutive
    children, recursively, so no group ever holds more than ``cap`` children.
    """
    n = len(scopes)
    path_id: dict[str, int] = {"": 0}
    paths: list[str] = [""]
    parent: list[int] = [-1]

    def gid(p: str) -> int:
        g = path_id.get(p)
        if g is not None:
            return g
        cut = p.rfind("/")
        par = gid(p[:cut]) if cut > 0 else 0
        g = len(paths)
        path_id[p] = g
        paths.append(p)
        parent.append(par)
        return g

    memo: dict[str, int] = {}
    node_group = np.empty(n, dtype=np.int64)
    for i, s in enumerate(scopes):
        g = memo.get(s)
        if g is None:
            clean = "/".join(x for x in (s or "").split("/") if x)
            g = memo[s] = gid(clean)
        node_group[i] = g
    labels = [p.rsplit("/", 1)[-1] for p in paths]

    # Simplify: a group holding one node and nothing else is a box around one box; a group holding
    # only one group is a level that says nothing. Deepest first so chains collapse fully.
    G = len(paths)
    par = np.array(parent, dtype=np.int64)
    depth = np.array([0 if p == "" else p.count("/") + 1 for p in paths])
    alive = np.ones(G, dtype=bool)
    direct = np.bincount(node_group, minlength=G)
    nkids = np.bincount(par[1:], minlength=G) if G > 1 else np.zeros(G, np.int64)
    remap = np.arange(G)
    for g in np.argsort(-depth, kind="stable").tolist():
        if g == 0:
            continue
        if direct[g] == 1 and nkids[g] == 0:
            p = par[g]
            remap[g] = p
            alive[g] = False
            direct[p] += 1
            nkids[p] -= 1
    if not alive.all():
        while True:  # resolve chains of dissolved groups
            nxt = remap[remap]
            if np.array_equal(nxt, remap):
                break
            remap = nxt
        node_group = remap[node_group]
    for g in np.argsort(depth, kind="stable"):
        if g == 0 or not alive[g]:
            continue
        # merge g into its only child group when g holds no node itself
        if direct[g] == 0 and nkids[g] == 1:
            kids = np.flatnonzero((par == g) & alive)
            if len(kids) == 1:
                c = int(kids[0])
                par[c] = par[g]
                labels[c] = labels[g] + "/" + labels[c]
                alive[g] = False
    keep = np.flatnonzero(alive)
    new_id = np.full(G, -1, dtype=np.int64)
    new_id[keep] = np.arange(len(keep))
    node_group = new_id[node_group]
    parent_l = [int(new_id[par[g]]) if g else -1 for g in keep]
    paths_l = [paths[g] for g in keep]
    labels_l = [labels[g] for g in keep]
    artificial = [False] * len(keep)

    # Cap: split big groups into artificial groups of consecutive children.
    if names is None:
        names = [f"#{i}" for i in range(n)]
    G = len(paths_l)
    rank = np.full(G, n, dtype=np.int64)
    np.minimum.at(rank, node_group, np.arange(n))
    gp = np.array(parent_l, dtype=np.int64)
    gdepth = _depths(gp)
    for d in range(int(gdepth.max(initial=0)), 0, -1):
        idx = np.flatnonzero(gdepth == d)
        np.minimum.at(rank, gp[idx], rank[idx])
    # children as item ids (node i -> i, group g -> n + g), per group, in rank order
    kids_of: dict[int, list[int]] = {}
    items = np.concatenate([np.arange(n), n + np.arange(1, G)])
    item_par = np.concatenate([node_group, gp[1:]])
    item_rank = np.concatenate([np.arange(n), rank[1:]])
    order = np.lexsort((item_rank, item_par))
    sp = item_par[order]
    bounds = np.flatnonzero(np.diff(sp)) + 1
    for chunk in np.split(order, bounds):
        if len(chunk) > cap:
            kids_of[int(item_par[chunk[0]])] = items[chunk].tolist()
    node_group = node_group.copy()

    def item_label(it: int) -> str:
        return names[it] if it < n else labels_l[it - n]

    for g, kids in list(kids_of.items()):
        while len(kids) > cap:
            nch = math.ceil(len(kids) / cap)
            size = math.ceil(len(kids) / nch)
            new_kids = []
            for k in range(0, len(kids), size):
                part = kids[k:k + size]
                c = len(paths_l)
                paths_l.append(f"{paths_l[g]}/#{len(new_kids)}" if paths_l[g] else f"#{c}")
                labels_l.append(f"{item_label(part[0])} … {item_label(part[-1])}")
                parent_l.append(g)
                artificial.append(True)
                for it in part:
                    if it < n:
                        node_group[it] = c
                    else:
                        parent_l[it - n] = c
                new_kids.append(n + c)
            kids = new_kids
    return Groups(node_group.astype(np.int32), np.array(parent_l, dtype=np.int32), paths_l, labels_l,
                  np.array(artificial, dtype=bool))


def _depths(parent: np.ndarray) -> np.ndarray:
    """Depth of each group (root 0) from a parent array (-1 for the root)."""
    G = len(parent)
    depth = np.zeros(G, dtype=np.int64)
    cur = parent.astype(np.int64).copy()
    live = cur >= 0
    while live.any():
        depth[live] += 1
        cur[live] = parent[cur[live]]
        live = cur >= 0
    return depth


# ---------------------------------------------------------------------------------------------------
# layout
# ---------------------------------------------------------------------------------------------------
@dataclass
class _Structure:
    """Size-independent layout of one group: items per layer in order, edges with their dummy chains."""

    items: list[int]                 # local index -> item id (-1 = in port, -2 = out port, -3 = dummy)
    layer: list[int]                 # local index -> layer
    layers: list[list[int]]          # layer -> local indices in left-to-right order
    edges: list[tuple[int, int, int, list[int], bool]]  # (src local, dst local, label, dummy chain, reversed)
    in_port: int                     # local index of the in port or -1
    out_port: int


@dataclass
class _Placed:
    width: float
    height: float
    x: list[float]                   # local index -> left x (relative to the group's content origin)
    y: list[float]                   # local index -> top y
    w: list[float]
    h: list[float]
    edge_pts: list[tuple[int, int, int, list[tuple[float, float]]]]  # (src item, dst item, label, points)


@dataclass
class Layout:
    """Absolute coordinates of what is visible for one expansion state (all arrays numpy).

    Nodes: ``node_idx``, ``node_rect`` (k×4: x, y, w, h). Collapsed groups: ``box_idx``, ``box_rect``.
    Expanded groups (frames, drawn behind their content): ``frame_idx``, ``frame_rect``, in parent-first
    order. Edges: ``seg`` (m×4: x1, y1, x2, y2 segments), ``seg_edge`` (m: polyline index per segment),
    ``edge_label`` (label id per polyline, -1 none), ``edge_src_item``/``edge_dst_item`` (visible items),
    ``edge_first_seg`` (first segment of each polyline). ``width``/``height``: the whole drawing.
    """

    node_idx: np.ndarray
    node_rect: np.ndarray
    box_idx: np.ndarray
    box_rect: np.ndarray
    frame_idx: np.ndarray
    frame_rect: np.ndarray
    seg: np.ndarray
    seg_edge: np.ndarray
    edge_label: np.ndarray
    edge_src_item: np.ndarray
    edge_dst_item: np.ndarray
    edge_first_seg: np.ndarray
    width: float
    height: float
    expanded: frozenset = field(default_factory=frozenset)

    @property
    def n_drawn(self) -> int:
        return len(self.node_idx) + len(self.box_idx)


class LayoutEngine:
    """Lays out a grouped graph for any set of expanded groups; caches per group.

    ``node_group`` (N): group of each node; ``group_parent`` (G): parent group, -1 for root 0;
    ``edge_src``/``edge_dst`` (E): node indices, topological order assumed (back edges are drawn upward);
    ``edge_label`` (E): label id per edge or -1; ``node_w`` (N): node box widths.
    Thread safety: one engine may be used from one thread at a time.
    """

    def __init__(self, node_group, group_parent, edge_src, edge_dst, edge_label=None, node_w=None):
        ng = np.asarray(node_group, dtype=np.int64)
        gp = np.asarray(group_parent, dtype=np.int64)
        self.N = N = len(ng)
        self.G = G = len(gp)
        self.node_w = np.full(N, 100.0) if node_w is None else np.asarray(node_w, dtype=np.float64)
        par = np.concatenate([N + ng, np.where(gp >= 0, N + gp, -1)])
        self.item_parent = par
        gdepth = _depths(gp)
        depth = np.concatenate([gdepth[ng] + 1, gdepth])
        self.item_depth = depth
        rank = np.full(G, N, dtype=np.int64)
        np.minimum.at(rank, ng, np.arange(N))
        for d in range(int(gdepth.max(initial=0)), 0, -1):
            idx = np.flatnonzero(gdepth == d)
            np.minimum.at(rank, gp[idx], rank[idx])
        self.group_rank = rank
        cnt = np.bincount(ng, minlength=G).astype(np.int64)
        for d in range(int(gdepth.max(initial=0)), 0, -1):
            idx = np.flatnonzero(gdepth == d)
            np.add.at(cnt, gp[idx], cnt[idx])
        self.group_count = cnt           # nodes inside each group, all levels
        self.group_depth = gdepth
        # children per group in rank order
        items = np.arange(N + G)
        item_rank = np.concatenate([np.arange(N), rank])
        sel = items[par >= 0]
        order = sel[np.lexsort((item_rank[sel], par[sel]))]
        pg = par[order] - N
        starts = np.searchsorted(pg, np.arange(G + 1))
        self._kid_order, self._kid_starts = order, starts

        # lift edges to the group where both ends are children; record port crossings on the way
        src = np.asarray(edge_src, dtype=np.int64)
        dst = np.asarray(edge_dst, dtype=np.int64)
        lab = np.full(len(src), -1, np.int64) if edge_label is None else np.asarray(edge_label, np.int64)
        keep = src != dst
        a, b, lab = src[keep].copy(), dst[keep].copy(), lab[keep]
        outs, ins = [], []        # (group, child item) pairs: child has an edge leaving / entering group
        da, db = depth[a], depth[b]
        while True:
            m = da > db
            if not m.any():
                break
            outs.append(np.stack([par[a[m]] - N, a[m]], 1))
            a[m] = par[a[m]]
            da = depth[a]
        while True:
            m = db > da
            if not m.any():
                break
            ins.append(np.stack([par[b[m]] - N, b[m]], 1))
            b[m] = par[b[m]]
            db = depth[b]
        while True:
            m = par[a] != par[b]
            if not m.any():
                break
            outs.append(np.stack([par[a[m]] - N, a[m]], 1))
            ins.append(np.stack([par[b[m]] - N, b[m]], 1))
            a[m] = par[a[m]]
            b[m] = par[b[m]]
        lca = par[a] - N
        o = np.argsort(lca, kind="stable")
        self._e_a, self._e_b, self._e_lab = a[o], b[o], lab[o]
        self._e_starts = np.searchsorted(lca[o], np.arange(G + 1))
        self._ports_in = self._index_pairs(ins, G)
        self._ports_out = self._index_pairs(outs, G)
        self._structs: dict[int, _Structure] = {}
        self._placed: dict[tuple, _Placed] = {}

    @staticmethod
    def _index_pairs(chunks, G):
        if not chunks:
            return np.zeros(0, np.int64), np.zeros(G + 1, np.int64)
        pairs = np.concatenate(chunks)
        # unique rows sorted by (group, item), without np.unique (it imports numpy.ma: tens of ms)
        pairs = pairs[np.lexsort((pairs[:, 1], pairs[:, 0]))]
        keep = np.ones(len(pairs), bool)
        keep[1:] = (pairs[1:] != pairs[:-1]).any(axis=1)
        pairs = pairs[keep]
        return pairs[:, 1], np.searchsorted(pairs[:, 0], np.arange(G + 1))

    # -- queries -------------------------------------------------------------------------------------
    def children(self, g: int) -> np.ndarray:
        """Items directly inside group g, in topological (rank) order."""
        return self._kid_order[self._kid_starts[g]:self._kid_starts[g + 1]]

    def ancestors(self, node: int) -> list[int]:
        """Groups holding a node, innermost first, root excluded."""
        out = []
        p = self.item_parent[node]
        while p >= 0 and p - self.N != 0:
            out.append(int(p - self.N))
            p = self.item_parent[p]
        return out

    def subgroups(self, g: int) -> list[int]:
        """Every group below g (not g itself)."""
        out, stack = [], [g]
        while stack:
            h = stack.pop()
            for it in self.children(h):
                if it >= self.N:
                    out.append(int(it - self.N))
                    stack.append(int(it - self.N))
        return out

    # -- structure -----------------------------------------------------------------------------------
    def structure(self, g: int) -> _Structure:
        s = self._structs.get(g)
        if s is None:
            s = self._structs[g] = self._build_structure(g)
        return s

    def _build_structure(self, g: int) -> _Structure:
        kids = self.children(g).tolist()
        pin_items, pin_st = self._ports_in
        pout_items, pout_st = self._ports_out
        has_in = pin_st[g + 1] > pin_st[g]
        has_out = pout_st[g + 1] > pout_st[g]
        items = ([-1] if has_in else []) + kids + ([-2] if has_out else [])
        loc = {it: k for k, it in enumerate(items)}
        n = len(items)
        in_port = 0 if has_in else -1
        out_port = n - 1 if has_out else -1
        e0, e1 = self._e_starts[g], self._e_starts[g + 1]
        raw: dict[tuple[int, int], int] = {}
        for a, b, lb in zip(self._e_a[e0:e1].tolist(), self._e_b[e0:e1].tolist(), self._e_lab[e0:e1].tolist()):
            key = (loc[a], loc[b])
            if key not in raw:
                raw[key] = lb
        if has_in:
            for it in pin_items[pin_st[g]:pin_st[g + 1]].tolist():
                raw.setdefault((0, loc[it]), -1)
        if has_out:
            for it in pout_items[pout_st[g]:pout_st[g + 1]].tolist():
                raw.setdefault((loc[it], out_port), -1)
        # forward = from lower to higher local index (topological rank order); reverse the others
        preds: list[list[int]] = [[] for _ in range(n)]
        succs: list[list[int]] = [[] for _ in range(n)]
        edges = []
        for (a, b), lb in raw.items():
            rev = a > b
            u, v = (b, a) if rev else (a, b)
            if u == v:
                continue
            preds[v].append(u)
            succs[u].append(v)
            edges.append((a, b, lb, u, v, rev))
        layer = [0] * n
        base = 1 if has_in else 0
        for v in range(n):
            if v == in_port:
                continue
            m = base
            for u in preds[v]:
                if layer[u] + 1 > m:
                    m = layer[u] + 1
            layer[v] = m
        # pull sources (constants, side inputs) down next to their first consumer
        for v in range(n - 1, -1, -1):
            if v != in_port and not preds[v] and succs[v]:
                layer[v] = max(base, min(layer[w] for w in succs[v]) - 1)
        if has_out:
            layer[out_port] = max((layer[v] for v in range(n) if v != out_port), default=0) + 1
        nl = max(layer, default=0) + 1
        # dummy points for edges spanning several layers
        out_edges = []
        for a, b, lb, u, v, rev in edges:
            chain = []
            for L in range(layer[u] + 1, layer[v]):
                items.append(-3)
                layer.append(L)
                k = len(items) - 1
                chain.append(k)
            out_edges.append((a, b, lb, chain, rev))
        # adjacency over the proper (one-layer) graph for ordering
        tot = len(items)
        up: list[list[int]] = [[] for _ in range(tot)]
        down: list[list[int]] = [[] for _ in range(tot)]
        for a, b, lb, chain, rev in out_edges:
            u, v = (b, a) if rev else (a, b)
            path = [u] + chain + [v]
            for x, y in zip(path, path[1:]):
                down[x].append(y)
                up[y].append(x)
        layers: list[list[int]] = [[] for _ in range(nl)]
        for k in range(tot):
            layers[layer[k]].append(k)
        pos = [0.0] * tot
        for lst in layers:
            for i, k in enumerate(lst):
                pos[k] = float(i)
        # barycentric sweeps: down, up, down
        for direction in (0, 1, 0):
            rng = range(1, nl) if direction == 0 else range(nl - 2, -1, -1)
            nbrs = up if direction == 0 else down
            for L in rng:
                lst = layers[L]
                if len(lst) < 2:
                    continue
                keyed = []
                for k in lst:
                    nb = nbrs[k]
                    keyed.append((sum(pos[x] for x in nb) / len(nb) if nb else pos[k], pos[k], k))
                keyed.sort()
                lst[:] = [k for _, _, k in keyed]
                for i, k in enumerate(lst):
                    pos[k] = float(i)
        s = _Structure(items, layer, layers, out_edges, in_port, out_port)
        s._up, s._down = up, down  # type: ignore[attr-defined]
        return s

    # -- placement -----------------------------------------------------------------------------------
    def _item_size(self, it: int, sizes: dict[int, tuple[float, float]]) -> tuple[float, float]:
        if it >= self.N:
            return sizes.get(it, (GROUP_W, GROUP_H))
        if it >= 0:
            return float(self.node_w[it]), NODE_H
        return (0.0, 0.0) if it != -3 else (DUMMY_W, 0.0)

    def place(self, g: int, sizes: dict[int, tuple[float, float]]) -> _Placed:
        """Coordinates of group g's children given the sizes of its expanded children (item -> (w, h))."""
        key = (g, tuple(sorted(sizes.items()))) if sizes else (g,)
        p = self._placed.get(key)
        if p is None:
            p = self._placed[key] = self._place(g, sizes)
        return p

    def _place(self, g: int, sizes) -> _Placed:
        s = self.structure(g)
        tot = len(s.items)
        w = [0.0] * tot
        h = [0.0] * tot
        for k, it in enumerate(s.items):
            w[k], h[k] = self._item_size(it, sizes)
        nl = len(s.layers)
        lh = [max((h[k] for k in lst), default=0.0) for lst in s.layers]
        ytop = [0.0] * nl
        y = 0.0
        for L in range(nl):
            ytop[L] = y
            y += lh[L] + V_GAP
        height = max(0.0, y - V_GAP)
        cx = [0.0] * tot
        for lst in s.layers:
            x = 0.0
            for k in lst:
                cx[k] = x + w[k] / 2
                x += w[k] + (H_GAP if s.items[k] != -3 else 4.0)
        up, down = s._up, s._down  # type: ignore[attr-defined]
        fit = self._ordered_fit
        for direction in (0, 1, 0):
            rng = range(1, nl) if direction == 0 else range(nl - 2, -1, -1)
            nbrs = up if direction == 0 else down
            for L in rng:
                lst = s.layers[L]
                if len(lst) == 1:
                    k = lst[0]
                    nb = nbrs[k]
                    if nb:
                        cx[k] = cx[nb[0]] if len(nb) == 1 else sum([cx[x] for x in nb]) / len(nb)
                    continue
                want = []
                for k in lst:
                    nb = nbrs[k]
                    want.append((cx[nb[0]] if len(nb) == 1 else sum([cx[x] for x in nb]) / len(nb)) if nb else cx[k])
                fit(lst, want, w, cx, s.items)
        minx = min((cx[k] - w[k] / 2 for k in range(tot)), default=0.0)
        maxx = max((cx[k] + w[k] / 2 for k in range(tot)), default=0.0)
        xs = [cx[k] - w[k] / 2 - minx for k in range(tot)]
        ys = [ytop[s.layer[k]] + (lh[s.layer[k]] - h[k]) / 2 for k in range(tot)]
        # ports sit on the frame edges
        if s.in_port >= 0:
            ys[s.in_port] = -PAD
        if s.out_port >= 0:
            ys[s.out_port] = height + PAD
        pts_all = []
        for a, b, lb, chain, rev in s.edges:
            pa = (xs[a] + w[a] / 2, ys[a] + h[a]) if not rev else (xs[a] + w[a] / 2, ys[a])
            pb = (xs[b] + w[b] / 2, ys[b]) if not rev else (xs[b] + w[b] / 2, ys[b] + h[b])
            mids = [(xs[k] + w[k] / 2, ytop[s.layer[k]] + lh[s.layer[k]] / 2) for k in chain]
            if rev:
                mids.reverse()
            pts = [pa] + mids + [pb]
            # edges entering through the in port start at the frame's top border, above the title band
            if a == s.in_port:
                pts.insert(0, (pa[0], -PAD - HEADER))
            pts_all.append((s.items[a], s.items[b], lb, pts))
        return _Placed(maxx - minx, height, xs, ys, w, h, pts_all)

    @staticmethod
    def _ordered_fit(lst, want, w, cx, items):
        """Move a layer's items toward wanted centres while keeping their order and minimum spacing."""
        m = len(lst)
        if m == 1:
            cx[lst[0]] = want[0]
            return
        if m == 0:
            return
        gaps = [0.0] * m
        for i in range(1, m):
            a, b = lst[i - 1], lst[i]
            sep = H_GAP if items[a] != -3 and items[b] != -3 else 4.0
            gaps[i] = (w[a] + w[b]) / 2 + sep
        left = [0.0] * m
        left[0] = want[0]
        for i in range(1, m):
            left[i] = max(want[i], left[i - 1] + gaps[i])
        right = [0.0] * m
        right[-1] = want[-1]
        for i in range(m - 2, -1, -1):
            right[i] = min(want[i], right[i + 1] - gaps[i + 1])
        x = (left[0] + right[0]) / 2
        cx[lst[0]] = x
        for i in range(1, m):
            x = max((left[i] + right[i]) / 2, x + gaps[i])
            cx[lst[i]] = x

    # -- composition ---------------------------------------------------------------------------------
    def group_size(self, g: int, expanded: frozenset) -> tuple[float, float, dict]:
        """(width, height, sizes of expanded children) of group g's frame when expanded."""
        sizes = {}
        for it in self.children(g).tolist():
            if it >= self.N and (it - self.N) in expanded:
                cw, ch, _ = self.group_size(it - self.N, expanded)
                sizes[it] = (cw, ch)
        p = self.place(g, sizes)
        return max(p.width + 2 * PAD, 120.0), p.height + HEADER + 2 * PAD, sizes

    def layout(self, expanded) -> Layout:
        """Absolute layout with the given groups expanded (the root always is; a group whose parent is
        collapsed stays hidden)."""
        expanded = frozenset(int(x) for x in expanded) | {0}
        nodes, nrect, boxes, brect, frames, frect = [], [], [], [], [], []
        segs, seg_edge, elab, esrc, edst, efirst = [], [], [], [], [], []
        N = self.N
        port_pos: dict[int, tuple[tuple[float, float] | None, tuple[float, float] | None]] = {}

        def emit(g: int, ox: float, oy: float) -> tuple[float, float]:
            sizes = {}
            for it in self.children(g).tolist():
                if it >= N and (it - N) in expanded:
                    cw, ch, _ = self.group_size(it - N, expanded)
                    sizes[it] = (cw, ch)
            p = self.place(g, sizes)
            s = self.structure(g)
            for k, it in enumerate(s.items):
                if it < 0:
                    continue
                x, y = ox + p.x[k], oy + p.y[k]
                if it < N:
                    nodes.append(it)
                    nrect.append((x, y, p.w[k], p.h[k]))
                elif it - N in expanded:
                    frames.append(it - N)
                    frect.append((x, y, p.w[k], p.h[k]))
                    emit(it - N, x + PAD, y + HEADER + PAD)
                else:
                    boxes.append(it - N)
                    brect.append((x, y, p.w[k], p.h[k]))
            for a, b, lb, pts in p.edge_pts:
                e = len(elab)
                elab.append(lb)
                esrc.append(a if a >= 0 else N + g)
                edst.append(b if b >= 0 else N + g)
                efirst.append(len(segs))
                q = [(ox + x, oy + y) for x, y in pts]
                for (x1, y1), (x2, y2) in zip(q, q[1:]):
                    segs.append((x1, y1, x2, y2))
                    seg_edge.append(e)
            return p.width, p.height

        w, h = emit(0, 0.0, 0.0)
        f = lambda xs, k=4: np.array(xs, dtype=np.float64).reshape(-1, k)
        i = lambda xs: np.array(xs, dtype=np.int64)
        return Layout(i(nodes), f(nrect), i(boxes), f(brect), i(frames), f(frect), f(segs), i(seg_edge),
                      i(elab), i(esrc), i(edst), i(efirst), float(w), float(h), expanded)

    def default_expanded(self, budget: int = 1000) -> set[int]:
        """Groups to expand for a first view: whole levels of the tree, from the root down, while the
        number of drawn items stays within ``budget`` (every group for graphs up to that many nodes).
        Whole levels only, so the overview looks the same everywhere."""
        if self.N <= budget:
            return set(range(1, self.G))
        expanded: set[int] = set()
        level = [0]
        drawn = len(self.children(0))
        while level:
            nxt = [int(it - self.N) for g in level for it in self.children(g).tolist() if it >= self.N]
            if not nxt:
                break
            extra = sum(len(self.children(c)) - 1 for c in nxt)
            if drawn + extra > budget:
                break
            expanded.update(nxt)
            drawn += extra
            level = nxt
        return expanded
