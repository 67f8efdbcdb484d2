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

Why one module of this size: the group tree and the layered layout share their data structures and run
in one pass per group; split, each half would expose the other's internals. It is covered as one unit by
tests/converters/test_layout.py and benchmarks/bench_graph.py.
"""
from __future__ import annotations

import math
import re
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
MAX_SPAN = 32              # edges spanning more layers run in lanes beside the group (no dummies)
LANE_GAP = 6.0             # horizontal distance between those lanes
_GROUP_KIND = -10.0        # template kind of a child group (nodes are their width, ports -1 / -2)


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
    path ('/'-separated; artificial groups get ``parent/first … last``). ``label[g]``: short name shown on the box.
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


def build_groups(scopes: Sequence[str], names: Sequence[str] | None = None, cap: int = DEFAULT_CAP,
                 rank: Sequence[int] | None = None) -> Groups:
    """Group tree from per-node scope paths (nodes assumed in topological order).

    ``names`` (node names) label artificial groups of nodes (``"conv1 … relu9"``). ``cap`` is the most
    children (nodes + groups) a group keeps before being split into artificial groups of consecutive
    children, recursively, so no group ever holds more than ``cap`` children. ``rank``: each node's
    place in drawing order when it is not its index (a weight moved beside its consumer).
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
    nrank = np.arange(n) if rank is None else np.asarray(rank, dtype=np.int64)
    rank = np.full(G, n, dtype=np.int64)
    np.minimum.at(rank, node_group, nrank)
    gp = np.array(parent_l, dtype=np.int64)
    gdepth = _depths(gp)
    for d in range(int(gdepth.max(initial=0)), 0, -1):
        idx = np.flatnonzero(gdepth == d)
        np.minimum.at(rank, gp[idx], rank[idx])
    # children as item ids (node i -> i, group g -> n + g), per group, in rank order
    kids_of: dict[int, list[int]] = {}
    items = np.concatenate([np.arange(n), n + np.arange(1, G)])
    item_par = np.concatenate([node_group, gp[1:]])
    item_rank = np.concatenate([nrank, rank[1:]])
    order = np.lexsort((item_rank, item_par))
    sp = item_par[order]
    bounds = np.flatnonzero(np.diff(sp)) + 1
    for chunk in np.split(order, bounds):
        if len(chunk) > cap:
            kids_of[int(item_par[chunk[0]])] = items[chunk].tolist()
    node_group = node_group.copy()

    def item_label(it: int) -> str:
        return names[it] if it < n else labels_l[it - n]

    used = set(paths_l)
    for g, kids in list(kids_of.items()):
        while len(kids) > cap:
            nch = math.ceil(len(kids) / cap)
            size = math.ceil(len(kids) / nch)
            new_kids = []
            for k in range(0, len(kids), size):
                part = kids[k:k + size]
                c = len(paths_l)
                # the path says what is inside too (the window shows and searches paths)
                seg = _span_label(item_label(part[0]).rsplit('/', 1)[-1], item_label(part[-1]).rsplit('/', 1)[-1])
                path = f"{paths_l[g]}/{seg}" if paths_l[g] else seg
                if path in used:
                    path = f"{path} ({c})"
                used.add(path)
                paths_l.append(path)
                labels_l.append(_span_label(item_label(part[0]), item_label(part[-1])))
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


_NUMBERED = re.compile(r"^(.*?)(\d+)((?: \(.*\))?)$")


def _span_label(first: str, last: str) -> str:
    """Name of a run of children: ``"block 1–447 (Conv·Relu)"`` when both ends are numbered alike,
    else ``"conv1 … relu9"``."""
    a, b = _NUMBERED.match(first), _NUMBERED.match(last)
    if a and b and a.group(1) == b.group(1) and a.group(3) == b.group(3) and a.group(1).strip():
        return f"{a.group(1)}{a.group(2)}–{b.group(2)}{a.group(3)}"
    return f"{first} … {last}"


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
class _Template:
    """Size-independent layout shared by every group of the same shape (same child kinds and edges
    in local indices): layers, order within layers, dummy chains of long edges. Real models repeat
    blocks (ResNet stages, transformer layers), so most groups reuse one template."""

    n: int                           # local items before dummies
    kinds: tuple                     # local index -> node width, _GROUP_KIND, -1.0 / -2.0 in / out port
    layer: list[int]                 # local index (dummies included) -> layer
    layers: list[list[int]]          # layer -> local indices in left-to-right order
    edges: list[tuple[int, int, list[int], bool]]  # (src local, dst local, dummy chain, reversed)
    in_port: int                     # local index of the in port or -1
    out_port: int
    up: list[list[int]]
    down: list[list[int]]
    placed: dict = field(default_factory=dict)     # sizes key -> _TPlaced


@dataclass
class _Structure:
    """One group's template plus what is its own: item ids and the graph edge behind each edge."""

    items: list[int]                 # local index -> item id (-1 = in port, -2 = out port, -3 = dummy)
    refs: list[int]                  # template edge -> graph edge index (-1 for port edges)
    t: _Template

    @property
    def layers(self) -> list[list[int]]:
        return self.t.layers


@dataclass
class _TPlaced:
    width: float
    height: float
    rect: np.ndarray
    seg: np.ndarray
    seg_e: np.ndarray
    first: np.ndarray
    a: np.ndarray                    # local start of each edge
    b: np.ndarray
    in_x: float                      # x of the in / out port (where outside edges meet the frame)
    out_x: float


@dataclass
class _Placed:
    """Coordinates of one group's children relative to its content origin, as numpy arrays."""

    width: float
    height: float
    items: np.ndarray                # local index -> item id (negative: ports and dummies)
    rect: np.ndarray                 # local index -> x, y, w, h
    seg: np.ndarray                  # S×4 segments of all polylines
    seg_e: np.ndarray                # S: polyline of each segment
    first: np.ndarray                # E: first segment of each polyline
    ref: np.ndarray                  # E: graph edge index (-1 for port edges)
    src_item: np.ndarray             # E: item at the start (-1: the group's in port)
    dst_item: np.ndarray             # E: item at the end (-1: the group's out port)
    in_x: float = 0.0                # x of the in / out port relative to the content origin
    out_x: float = 0.0


@dataclass
class Layout:
    """Absolute coordinates of what is visible for one expansion state (all arrays numpy).

    Nodes: ``node_idx``, ``node_rect`` (k×4: x, y, w, h). Collapsed groups: ``box_idx``, ``box_rect``.
    Expanded groups (frames, drawn behind their content): ``frame_idx``, ``frame_rect``, in parent-first
    order. Edges: ``seg`` (m×4: x1, y1, x2, y2 segments), ``seg_edge`` (m: polyline index per segment),
    ``edge_ref`` (per polyline: index of one graph edge it stands for, -1 for edges drawn to a group's
    in/out port; labels come from that edge), ``edge_src_item``/``edge_dst_item`` (visible items),
    ``edge_first_seg`` (first segment of each polyline). ``width``/``height``: the whole drawing.
    Graph inputs and outputs (engines made with ``n_model``): ``io_idx`` (k: the k-th I/O node of the
    view pack, see :mod:`converters.viewpack`), ``io_rect``. Edge ends are items: node ``i`` (< the
    model's node count ``n``), group ``g`` as ``n + g``, I/O node ``k`` as ``n + n_groups + k``.
    """

    node_idx: np.ndarray
    node_rect: np.ndarray
    box_idx: np.ndarray
    box_rect: np.ndarray
    frame_idx: np.ndarray
    frame_rect: np.ndarray
    seg: np.ndarray
    seg_edge: np.ndarray
    edge_ref: np.ndarray
    edge_src_item: np.ndarray
    edge_dst_item: np.ndarray
    edge_first_seg: np.ndarray
    width: float
    height: float
    expanded: frozenset = field(default_factory=frozenset)
    io_idx: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    io_rect: np.ndarray = field(default_factory=lambda: np.zeros((0, 4)))

    @property
    def n_drawn(self) -> int:
        return len(self.node_idx) + len(self.box_idx)          # I/O nodes apart (io_idx)


class LayoutEngine:
    """Lays out a grouped graph for any set of expanded groups; caches per group.

    ``node_group`` (N): group of each node; ``group_parent`` (G): parent group, -1 for root 0;
    ``edge_src``/``edge_dst`` (E): node indices, topological order assumed (back edges are drawn upward);
    ``node_w`` (N): node box widths. Layouts name graph edges by index (``edge_ref``), never by label,
    so one engine serves every pack of the same graph structure.
    ``node_rank`` (N): drawing order when it is not the index (weights beside their consumer, graph
    inputs first). ``n_model``: nodes from ``n_model`` on are graph inputs and outputs (laid out like
    nodes, listed in ``Layout.io_idx``, not counted in ``group_count``).
    Thread safety: one engine may be used from one thread at a time.
    """

    def __init__(self, node_group, group_parent, edge_src, edge_dst, node_w=None, node_rank=None, n_model=None):
        ng = np.asarray(node_group, dtype=np.int64)
        gp = np.asarray(group_parent, dtype=np.int64)
        self.N = N = len(ng)
        self.G = G = len(gp)
        self.n_model = nm = N if n_model is None else int(n_model)
        nrank = np.arange(N) if node_rank is None else np.asarray(node_rank, dtype=np.int64)
        self.node_w = np.full(N, 100.0) if node_w is None else np.asarray(node_w, dtype=np.float64)
        par = np.concatenate([N + ng, np.where(gp >= 0, N + gp, -1)])
        self.item_parent = par
        gdepth = _depths(gp)
        depth = np.concatenate([gdepth[ng] + 1, gdepth])
        self.item_depth = depth
        rank = np.full(G, N, dtype=np.int64)
        np.minimum.at(rank, ng, nrank)
        for d in range(int(gdepth.max(initial=0)), 0, -1):
            idx = np.flatnonzero(gdepth == d)
            np.minimum.at(rank, gp[idx], rank[idx])
        self.group_rank = rank
        cnt = np.bincount(ng[:nm], minlength=G).astype(np.int64)
        for d in range(int(gdepth.max(initial=0)), 0, -1):
            idx = np.flatnonzero(gdepth == d)
            np.add.at(cnt, gp[idx], cnt[idx])
        self.group_count = cnt           # nodes inside each group, all levels
        self.group_depth = gdepth
        # children per group in rank order
        items = np.arange(N + G)
        item_rank = np.concatenate([nrank, rank])
        sel = items[par >= 0]
        order = sel[np.lexsort((item_rank[sel], par[sel]))]
        pg = par[order] - N
        starts = np.searchsorted(pg, np.arange(G + 1))
        self._kid_order, self._kid_starts = order, starts

        # lift edges to the group where both ends are children; record port crossings on the way
        src = np.asarray(edge_src, dtype=np.int64)
        dst = np.asarray(edge_dst, dtype=np.int64)
        lab = np.arange(len(src), dtype=np.int64)
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
        self._templates: dict[tuple, _Template] = {}
        self._placed: dict[tuple, _Placed] = {}
        # plain-list copies: slicing lists is much cheaper than numpy for the many tiny groups
        self._kl, self._ks = self._kid_order.tolist(), self._kid_starts.tolist()
        self._ea, self._eb, self._el = self._e_a.tolist(), self._e_b.tolist(), self._e_lab.tolist()
        self._es = self._e_starts.tolist()
        self._pi, self._pis = self._ports_in[0].tolist(), self._ports_in[1].tolist()
        self._po, self._pos = self._ports_out[0].tolist(), self._ports_out[1].tolist()
        self._nw = self.node_w.tolist()

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
        N = self.N
        kids = self._kl[self._ks[g]:self._ks[g + 1]]
        pin0, pin1 = self._pis[g], self._pis[g + 1]
        pout0, pout1 = self._pos[g], self._pos[g + 1]
        has_in = pin1 > pin0
        has_out = pout1 > pout0
        items = ([-1] if has_in else []) + kids + ([-2] if has_out else [])
        loc = {it: k for k, it in enumerate(items)}
        n = len(items)
        in_port = 0 if has_in else -1
        out_port = n - 1 if has_out else -1
        e0, e1 = self._es[g], self._es[g + 1]
        raw: dict[tuple[int, int], int] = {}
        for a, b, lb in zip(self._ea[e0:e1], self._eb[e0:e1], self._el[e0:e1]):
            key = (loc[a], loc[b])
            if key not in raw:
                raw[key] = lb
        if has_in:
            for it in self._pi[pin0:pin1]:
                raw.setdefault((0, loc[it]), -1)
        if has_out:
            for it in self._po[pout0:pout1]:
                raw.setdefault((loc[it], out_port), -1)
        keys = sorted(raw)
        nw = self._nw
        kinds = tuple(nw[it] if 0 <= it < N else (_GROUP_KIND if it >= N else float(it)) for it in items)
        sig = (kinds, tuple(keys))
        t = self._templates.get(sig)
        if t is None:
            t = self._templates[sig] = self._make_template(n, kinds, keys, in_port, out_port)
        refs = [raw[k] for k in keys]
        return _Structure(items + [-3] * (len(t.layer) - n), refs, t)

    @staticmethod
    def _make_template(n, kinds, keys, in_port, out_port) -> _Template:
        # forward = from lower to higher local index (topological rank order); reverse the others
        preds: list[list[int]] = [[] for _ in range(n)]
        succs: list[list[int]] = [[] for _ in range(n)]
        for a, b in keys:
            u, v = (b, a) if a > b else (a, b)
            preds[v].append(u)
            succs[u].append(v)
        layer = [0] * n
        base = 1 if in_port >= 0 else 0
        for v in range(n):
            if v == in_port:
                continue
            m = base
            for u in preds[v]:
                if layer[u] + 1 > m:
                    m = layer[u] + 1
            layer[v] = m
        # pull sources (constants, side inputs) down next to their first consumer, and with them the
        # chains that feed only the next node (Constant -> Cast -> Transpose -> MatMul)
        pull = [False] * n
        for v in range(n):
            if v != in_port and v != out_port:
                pull[v] = all(pull[u] and len(succs[u]) == 1 for u in preds[v])
        for v in range(n - 1, -1, -1):
            if pull[v] and succs[v]:
                layer[v] = max(base, min(layer[w] for w in succs[v]) - 1)
        if out_port >= 0:
            layer[out_port] = max((layer[v] for v in range(n) if v != out_port), default=0) + 1
        nl = max(layer, default=0) + 1
        # dummy points for edges spanning several layers
        edges = []
        for a, b in keys:
            rev = a > b
            u, v = (b, a) if rev else (a, b)
            if layer[v] - layer[u] > MAX_SPAN:
                edges.append((a, b, None, rev))      # drawn in a lane beside the group instead
                continue
            chain = []
            for L in range(layer[u] + 1, layer[v]):
                layer.append(L)
                chain.append(len(layer) - 1)
            edges.append((a, b, chain, rev))
        tot = len(layer)
        up: list[list[int]] = [[] for _ in range(tot)]
        down: list[list[int]] = [[] for _ in range(tot)]
        for a, b, chain, rev in edges:
            if chain is None:
                continue
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
        # barycentric sweeps: down, up, down (nothing to order when no layer holds two items)
        sweeps = (0, 1, 0) if any(len(lst) > 1 for lst in layers) else ()
        for direction in sweeps:
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
        return _Template(n, kinds, layer, layers, edges, in_port, out_port, up, down)

    # -- placement -----------------------------------------------------------------------------------
    def place(self, g: int, sizes: dict[int, tuple[float, float]]) -> _Placed:
        """Coordinates of group g's children given the sizes of its expanded children (item -> (w, h))."""
        key = (g, tuple(sorted(sizes.items()))) if sizes else (g,)
        p = self._placed.get(key)
        if p is None:
            s = self.structure(g)
            if sizes:
                loc = {it: k for k, it in enumerate(s.items)}
                skey = tuple(sorted((loc[it], wh) for it, wh in sizes.items()))
            else:
                skey = ()
            tp = s.t.placed.get(skey)
            if tp is None:
                tp = s.t.placed[skey] = self._place_template(s.t, dict(skey))
            items = np.array(s.items, dtype=np.int64)
            ends = np.where(items < 0, -1, items)
            p = self._placed[key] = _Placed(tp.width, tp.height, items, tp.rect, tp.seg, tp.seg_e, tp.first,
                                            np.array(s.refs, dtype=np.int64), ends[tp.a], ends[tp.b],
                                            tp.in_x, tp.out_x)
        return p

    @classmethod
    def _place_template(cls, t: _Template, sizes: dict[int, tuple[float, float]]) -> _TPlaced:
        tot = len(t.layer)
        w = [0.0] * tot
        h = [0.0] * tot
        for k, kind in enumerate(t.kinds):
            if kind >= 0:
                w[k], h[k] = kind, NODE_H
            elif kind == _GROUP_KIND:
                w[k], h[k] = sizes[k][:2] if k in sizes else (GROUP_W, GROUP_H)
        for k in range(t.n, tot):
            w[k] = DUMMY_W
        if t.in_port >= 0:
            w[t.in_port] = h[t.in_port] = 0.0
        layers, lay_of = t.layers, t.layer
        nl = len(layers)
        lh = [max((h[k] for k in lst), default=0.0) for lst in layers]
        ytop = [0.0] * nl
        y = 0.0
        for L in range(nl):
            ytop[L] = y
            y += lh[L] + V_GAP
        height = max(0.0, y - V_GAP)
        n = t.n
        cx = [0.0] * tot
        for lst in layers:
            x = 0.0
            for k in lst:
                cx[k] = x + w[k] / 2
                x += w[k] + (H_GAP if k < n else 4.0)
        fit = cls._ordered_fit
        up, down = t.up, t.down
        # one pass down (align under predecessors) and one up (pull sources toward their consumers)
        for direction in (0, 1) if any(len(lst) > 1 for lst in layers) else (0,):
            rng = range(1, nl) if direction == 0 else range(nl - 2, -1, -1)
            nbrs = up if direction == 0 else down
            for L in rng:
                lst = layers[L]
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
                fit(lst, want, w, cx, n)
        minx = min((cx[k] - w[k] / 2 for k in range(tot)), default=0.0)
        maxx = max((cx[k] + w[k] / 2 for k in range(tot)), default=0.0)
        xs = [cx[k] - w[k] / 2 - minx for k in range(tot)]
        content_w = maxx - minx
        n_lanes = sum(1 for e in t.edges if e[2] is None)
        maxx += (LANE_GAP * n_lanes + H_GAP / 2) if n_lanes else 0.0
        lane = 0
        ys = [ytop[lay_of[k]] + (lh[lay_of[k]] - h[k]) / 2 for k in range(tot)]
        # ports sit on the frame edges
        if t.in_port >= 0:
            ys[t.in_port] = -PAD
        if t.out_port >= 0:
            ys[t.out_port] = height + PAD
        seg, seg_e, first, ea, eb = [], [], [], [], []
        # where an edge meets an item: its centre, or for an expanded group the port inside it
        ox = [w[k] / 2 for k in range(tot)]
        ix = list(ox)
        for k, wh in sizes.items():
            ix[k], ox[k] = wh[2], wh[3]
        for e, (a, b, chain, rev) in enumerate(t.edges):
            pa = (xs[a] + ox[a], ys[a] + h[a]) if not rev else (xs[a] + ix[a], ys[a])
            pb = (xs[b] + ix[b], ys[b]) if not rev else (xs[b] + ox[b], ys[b] + h[b])
            if chain is None:
                # a very long edge: out into its own vertical lane right of the content, down (or up),
                # and back in, the horizontal runs in the gaps between layers
                lx = content_w + H_GAP / 2 + LANE_GAP * lane
                lane += 1
                ya = pa[1] + (V_GAP / 3 if not rev else -V_GAP / 3)
                yb = pb[1] - (V_GAP / 3 if not rev else -V_GAP / 3)
                pts = [pa, (pa[0], ya), (lx, ya), (lx, yb), (pb[0], yb), pb]
            else:
                pts = [(xs[k] + w[k] / 2, ytop[lay_of[k]] + lh[lay_of[k]] / 2) for k in chain]
                if rev:
                    pts.reverse()
                pts.insert(0, pa)
                pts.append(pb)
            # edges entering through the in port start at the frame's top border, above the title band
            if a == t.in_port:
                pts.insert(0, (pa[0], -PAD - HEADER))
            first.append(len(seg))
            for (x1, y1), (x2, y2) in zip(pts, pts[1:]):
                seg.append((x1, y1, x2, y2))
                seg_e.append(e)
            ea.append(a)
            eb.append(b)
        rect = np.empty((tot, 4))
        rect[:, 0] = xs
        rect[:, 1] = ys
        rect[:, 2] = w
        rect[:, 3] = h
        in_x = xs[t.in_port] if t.in_port >= 0 else (maxx - minx) / 2
        out_x = xs[t.out_port] if t.out_port >= 0 else (maxx - minx) / 2
        return _TPlaced(maxx - minx, height, rect, np.array(seg, dtype=np.float64).reshape(-1, 4),
                        np.array(seg_e, dtype=np.int64), np.array(first, dtype=np.int64),
                        np.array(ea, dtype=np.int64), np.array(eb, dtype=np.int64), in_x, out_x)

    @staticmethod
    def _ordered_fit(lst, want, w, cx, n):
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
            sep = H_GAP if a < n and b < n else 4.0
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
    def group_size(self, g: int, expanded: frozenset, memo: dict | None = None) -> tuple:
        """(width, height, in-port x, out-port x, sizes of expanded children) of group g's frame when
        expanded; port x in frame coordinates, sizes as ``{item: (w, h, in_x, out_x)}``."""
        if memo is not None and g in memo:
            return memo[g]
        sizes = {}
        N = self.N
        kids = self.children(g)
        for it in kids[kids >= N].tolist():
            if (it - N) in expanded:
                sizes[it] = self.group_size(it - N, expanded, memo)[:4]
        p = self.place(g, sizes)
        width = max(p.width + 2 * PAD, 120.0)
        # content is centred when the frame is wider than it (a minimum width, a long title)
        shift = PAD + (width - 2 * PAD - p.width) / 2
        out = (width, p.height + HEADER + 2 * PAD, p.in_x + shift, p.out_x + shift, sizes)
        if memo is not None:
            memo[g] = out
        return out

    def layout(self, expanded) -> Layout:
        """Absolute layout with the given groups expanded (the root always is; a group whose parent is
        collapsed stays hidden)."""
        expanded = frozenset(int(x) for x in expanded) | {0}
        N = self.N
        memo: dict = {}
        self.group_size(0, expanded, memo)
        nodes, nrect, boxes, brect, frames, frect, ios, iorect = [], [], [], [], [], [], [], []
        nm = self.n_model
        segs, seg_edge, eref, esrc, edst, efirst = [], [], [], [], [], []
        count = [0, 0]            # polylines, segments emitted so far

        def emit(g: int, ox: float, oy: float) -> None:
            p = self.place(g, memo[g][4])
            it = p.items
            r = p.rect + np.array([ox, oy, 0.0, 0.0])
            m = (it >= 0) & (it < nm)
            nodes.append(it[m])
            nrect.append(r[m])
            if nm < N:
                m = (it >= nm) & (it < N)
                ios.append(it[m] - nm)
                iorect.append(r[m])
            gm = np.flatnonzero(it >= N)
            if len(gm):
                gi = (it[gm] - N).tolist()
                ex = np.fromiter((x in expanded for x in gi), bool, len(gi))
                boxes.append(it[gm[~ex]] - N)
                brect.append(r[gm[~ex]])
                for k in gm[ex].tolist():
                    c = int(it[k] - N)
                    x, y, w, h = r[k].tolist()
                    frames.append(c)
                    frect.append((x, y, w, h))
                    cw = self.place(c, memo[c][4]).width
                    emit(c, x + PAD + (w - 2 * PAD - cw) / 2, y + HEADER + PAD)
            ne, ns = len(p.ref), len(p.seg)
            if ne:
                segs.append(p.seg + np.array([ox, oy, ox, oy]))
                seg_edge.append(p.seg_e + count[0])
                efirst.append(p.first + count[1])
                eref.append(p.ref)
                esrc.append(np.where(p.src_item >= 0, p.src_item, N + g))
                edst.append(np.where(p.dst_item >= 0, p.dst_item, N + g))
                count[0] += ne
                count[1] += ns

        emit(0, 0.0, 0.0)
        root = self.place(0, memo[0][4])

        def cat(parts, k=None):
            if not parts:
                return np.zeros((0, k)) if k else np.zeros(0, np.int64)
            return np.concatenate(parts)

        esrc_a, edst_a = cat(esrc), cat(edst)
        if nm < N:
            # items as the window numbers them: groups right after the model's nodes, I/O nodes last
            def renumber(x):
                return np.where(x >= N, x - (N - nm), np.where(x >= nm, x + self.G, x))
            esrc_a, edst_a = renumber(esrc_a), renumber(edst_a)
        return Layout(cat(nodes).astype(np.int64), cat(nrect, 4), cat(boxes).astype(np.int64), cat(brect, 4),
                      np.array(frames, np.int64), np.array(frect, np.float64).reshape(-1, 4), cat(segs, 4),
                      cat(seg_edge), cat(eref), esrc_a, edst_a, cat(efirst),
                      float(root.width), float(root.height), expanded,
                      cat(ios).astype(np.int64), cat(iorect, 4))

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
