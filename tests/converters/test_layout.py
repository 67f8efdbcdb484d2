"""Grouping and layered layout over real graphs (read from real ONNX files by the real reader)."""
from __future__ import annotations

import time

import numpy as np

from converters.formats import load
from converters.graph import Graph, Node
from converters.layout import DEFAULT_CAP, LayoutEngine, build_groups, node_width


def _engine(graph: Graph, cap: int = DEFAULT_CAP):
    groups = build_groups([n.scope for n in graph.nodes], [n.name for n in graph.nodes], cap)
    prod = graph.producers()
    src, dst = [], []
    for j, n in enumerate(graph.nodes):
        for v in n.inputs:
            if v in prod:
                src.append(prod[v])
                dst.append(j)
    eng = LayoutEngine(groups.node_group, groups.parent, src, dst, [node_width(n.op_type) for n in graph.nodes])
    return groups, eng, np.array(src), np.array(dst)


def _overlaps(rects: np.ndarray) -> list[tuple[int, int]]:
    """Pairs of rectangles (x, y, w, h) whose interiors intersect."""
    out = []
    for i in range(len(rects)):
        x, y, w, h = rects[i]
        for j in range(i + 1, len(rects)):
            a, b, c, d = rects[j]
            if x < a + c - 1e-6 and a < x + w - 1e-6 and y < b + d - 1e-6 and b < y + h - 1e-6:
                out.append((i, j))
    return out


def _check_layout(groups, eng, lay, src, dst):
    n = eng.N
    # every node placed exactly once
    assert sorted(lay.node_idx.tolist()) == list(range(n))
    node_y = np.empty(n)
    node_b = np.empty(n)
    node_y[lay.node_idx] = lay.node_rect[:, 1]
    node_b[lay.node_idx] = lay.node_rect[:, 1] + lay.node_rect[:, 3]
    # no overlapping boxes among the children of any group (nodes and child frames)
    frame_of = {int(g): lay.frame_rect[k] for k, g in enumerate(lay.frame_idx.tolist())}
    by_group: dict[int, list] = {}
    for k, i in enumerate(lay.node_idx.tolist()):
        by_group.setdefault(int(groups.node_group[i]), []).append(lay.node_rect[k])
    for g, r in frame_of.items():
        by_group.setdefault(int(groups.parent[g]), []).append(r)
    for g, rects in by_group.items():
        assert not _overlaps(np.array(rects)), f"overlapping boxes in group {groups.path[g]!r}"
    # children lie inside their expanded group's frame
    for k, i in enumerate(lay.node_idx.tolist()):
        g = int(groups.node_group[i])
        if g in frame_of:
            fx, fy, fw, fh = frame_of[g]
            x, y, w, h = lay.node_rect[k]
            assert fx <= x and x + w <= fx + fw and fy <= y and y + h <= fy + fh
    # edges go downward: the producer's box ends above the consumer's box
    assert (node_b[src] <= node_y[dst] + 1e-6).all()
    # each polyline runs downward, segment by segment
    assert (lay.seg[:, 3] >= lay.seg[:, 1] - 1e-6).all()


def test_synthetic_200_fully_expanded(model_file):
    mf = model_file("view_models", "synthetic_200.onnx")
    g = load(mf.path).graph
    groups, eng, src, dst = _engine(g)
    lay = eng.layout(range(groups.n_groups))
    _check_layout(groups, eng, lay, src, dst)
    # one group per block (scopes from '/'-names), attn/ffn nested in each encoder block
    paths = set(groups.path)
    assert {"res0", "encoder0", "encoder0/attn", "encoder0/ffn", "stem", "bridge", "head"} <= paths
    assert groups.path[groups.parent[groups.path.index("encoder0/attn")]] == "encoder0"
    assert len(lay.node_idx) == mf.facts["node_count"]


def test_collapsed_and_one_group_expanded(model_file):
    mf = model_file("view_models", "synthetic_200.onnx")
    g = load(mf.path).graph
    groups, eng, src, dst = _engine(g)
    top = eng.children(0)
    lay0 = eng.layout(set())
    assert len(lay0.node_idx) + len(lay0.box_idx) == len(top)
    assert len(lay0.box_idx) == mf.facts["resnet_blocks"] + mf.facts["encoder_blocks"] + 3  # + stem, bridge, head
    # the overview's boxes do not overlap and its edges go down the chain of blocks
    assert not _overlaps(lay0.box_rect)
    assert (lay0.seg[:, 3] >= lay0.seg[:, 1]).all()
    # expanding encoder0 re-lays out encoder0 and the root only; its subgroups stay boxes
    enc = groups.path.index("encoder0")
    structs_before = len(eng._structs)
    placed_before = set(eng._placed)
    lay1 = eng.layout({enc})
    new_places = set(eng._placed) - placed_before
    assert {k[0] for k in new_places} <= {0, enc}
    assert len(eng._structs) == structs_before + 1           # only encoder0's own structure is new
    inner = set(np.flatnonzero(groups.node_group == enc).tolist())
    assert inner <= set(lay1.node_idx.tolist())
    assert lay1.n_drawn == lay0.n_drawn - 1 + len(eng.children(enc))
    assert enc in lay1.frame_idx.tolist()


def test_flat_graph_gets_artificial_groups(model_file):
    mf = model_file("view_models", "flat_1200.onnx")
    g = load(mf.path).graph
    assert all(n.scope == "" for n in g.nodes)
    groups, eng, src, dst = _engine(g, cap=100)
    assert groups.artificial[1:].all() and groups.n_groups > 1
    for gg in range(groups.n_groups):
        assert len(eng.children(gg)) <= 100
    # artificial groups hold consecutive nodes, labelled by their first and last node
    first = groups.node_group[0]
    members = np.flatnonzero(groups.node_group == first)
    assert (np.diff(members) == 1).all()
    assert groups.label[first].startswith(g.nodes[0].name)
    # their paths (what the window shows and searches) say what they hold, never a bare number
    assert groups.path[first] == groups.label[first] and not any("#" in p for p in groups.path)
    assert len(set(groups.path)) == groups.n_groups
    lay = eng.layout(range(groups.n_groups))
    _check_layout(groups, eng, lay, src, dst)


def test_scope_simplification():
    # a group holding one node dissolves; a group holding only one group merges into it
    scopes = ["a/b", "a/b", "a/c", "x/y/z", "x/y/z", ""]
    groups = build_groups(scopes, [f"n{i}" for i in range(6)])
    paths = groups.path
    assert "a/c" not in paths and groups.path[groups.node_group[2]] == "a"
    merged = groups.node_group[3]
    assert groups.label[merged] == "x/y/z" and groups.parent[merged] == 0
    assert groups.node_group[5] == 0


def test_cycle_from_lifting_is_drawn_without_failing():
    # scope A holds nodes 0 and 2, B holds node 1: A -> B -> A at the top level
    nodes = [Node("A/n0", "Relu", ["x"], ["v0"], scope="A"), Node("B/n1", "Relu", ["v0"], ["v1"], scope="B"),
             Node("A/n2", "Add", ["v1", "v0"], ["v2"], scope="A"), Node("B/n3", "Relu", ["v2"], ["v3"], scope="B")]
    g = Graph("cyc", nodes, ["x"], ["v3"])
    groups, eng, src, dst = _engine(g)
    lay = eng.layout(set())
    assert lay.n_drawn == 2 and len(lay.edge_ref) >= 2
    full = eng.layout(range(groups.n_groups))
    assert sorted(full.node_idx.tolist()) == [0, 1, 2, 3]


def test_5000_node_graph_lays_out(model_file):
    mf = model_file("view_models", "synthetic_5000.onnx")
    t = time.perf_counter()
    g = load(mf.path).graph
    t_load = time.perf_counter() - t
    t = time.perf_counter()
    groups, eng, src, dst = _engine(g)
    t_eng = time.perf_counter() - t
    t = time.perf_counter()
    ov = eng.layout(eng.default_expanded(1000))
    t_ov = time.perf_counter() - t
    t = time.perf_counter()
    lay = eng.layout(range(groups.n_groups))
    t_all = time.perf_counter() - t
    print(f"\n5k layout: read {t_load:.2f} s, groups+engine {t_eng:.3f} s, overview {t_ov:.3f} s "
          f"({ov.n_drawn} items), all expanded {t_all:.2f} s ({lay.n_drawn} nodes, {len(lay.seg)} segments, "
          f"{lay.width:.0f}×{lay.height:.0f})")
    assert ov.n_drawn <= 1000
    assert sorted(lay.node_idx.tolist()) == list(range(mf.facts["node_count"]))
    node_y = np.empty(eng.N)
    node_b = np.empty(eng.N)
    node_y[lay.node_idx] = lay.node_rect[:, 1]
    node_b[lay.node_idx] = lay.node_rect[:, 1] + lay.node_rect[:, 3]
    assert (node_b[src] <= node_y[dst] + 1e-6).all()


def test_same_shaped_groups_share_a_template_and_edges_meet_ports(model_file):
    mf = model_file("view_models", "synthetic_200.onnx")
    g = load(mf.path).graph
    groups, eng, src, dst = _engine(g)
    lay = eng.layout(range(groups.n_groups))
    # every resnet block has the same shape: one template, and the same relative drawing
    res = [groups.path.index(f"res{i}") for i in range(mf.facts["resnet_blocks"])]
    assert len({id(eng.structure(r).t) for r in res}) == 1
    assert len(eng._templates) < groups.n_groups
    frames = {int(x): lay.frame_rect[k] for k, x in enumerate(lay.frame_idx.tolist())}

    def rel(gid):
        fx, fy = frames[gid][:2]
        rows = [k for k, i in enumerate(lay.node_idx.tolist()) if groups.node_group[i] == gid]
        return sorted((g.nodes[lay.node_idx[k]].name.rsplit("/", 1)[-1], round(lay.node_rect[k, 0] - fx, 3),
                       round(lay.node_rect[k, 1] - fy, 3)) for k in rows)

    assert rel(res[0]) == rel(res[-1])
    # an edge that reaches an expanded group's frame continues inside from the same point (its port)
    N = eng.N
    firsts = lay.edge_first_seg
    lasts = np.append(firsts[1:], len(lay.seg)) - 1
    checked = 0
    for gid, (fx, fy, fw, fh) in frames.items():
        into = [e for e in np.flatnonzero(lay.edge_dst_item == N + gid) if abs(lay.seg[lasts[e], 3] - fy) < 1e-6]
        starts = {(round(lay.seg[firsts[e], 0], 6), round(lay.seg[firsts[e], 1], 6))
                  for e in np.flatnonzero(lay.edge_src_item == N + gid)}
        for e in into:
            assert (round(lay.seg[lasts[e], 2], 6), round(lay.seg[lasts[e], 3], 6)) in starts
            checked += 1
    assert checked >= len(res)


def test_very_long_edge_runs_in_a_lane_without_dummies():
    # a chain of 80 nodes in one scope; the first output is also read by the last node
    nodes = [Node("blk/n0", "Relu", ["x"], ["v0"], scope="blk")]
    for i in range(1, 80):
        ins = [f"v{i - 1}"] + (["v0"] if i == 79 else [])
        nodes.append(Node(f"blk/n{i}", "Add" if i == 79 else "Relu", ins, [f"v{i}"], scope="blk"))
    g = Graph("long", nodes, ["x"], ["v79"])
    groups, eng, src, dst = _engine(g)
    lay = eng.layout(range(groups.n_groups))
    _check_layout(groups, eng, lay, src, dst)
    blk = groups.path.index("blk")
    t = eng.structure(blk).t
    assert len(t.layer) == t.n                       # no dummy points were made for the long edge
    right = (lay.node_rect[:, 0] + lay.node_rect[:, 2]).max()
    e = next(k for k in range(len(lay.edge_ref)) if lay.edge_ref[k] >= 0
             and src[lay.edge_ref[k]] == 0 and dst[lay.edge_ref[k]] == 79)
    pts = lay.seg[lay.seg_edge == e]
    assert pts[:, [0, 2]].max() > right              # it leaves the column of boxes ...
    fx, fy, fw, fh = lay.frame_rect[list(lay.frame_idx).index(blk)]
    assert pts[:, [0, 2]].max() <= fx + fw           # ... and stays inside its group's frame


def test_groups_split_by_the_cap_are_named_by_the_span_they_hold():
    scopes = [f"blocks 1–600 (Conv·Relu)/block {k} (Conv·Relu)" for k in range(1, 601) for _ in range(2)]
    groups = build_groups(scopes, [f"n{i}" for i in range(len(scopes))], cap=500)
    chunks = [g for g in range(groups.n_groups) if groups.artificial[g]]
    assert [groups.label[g] for g in chunks] == ["block 1–300 (Conv·Relu)", "block 301–600 (Conv·Relu)"]
    assert [groups.path[g] for g in chunks] == [f"blocks 1–600 (Conv·Relu)/{groups.label[g]}" for g in chunks]
