"""Per-layer parity in the real window: a fault planted in one convolution of a copy of a small CNN, the
per-layer comparison run through the window's own path (the Compare dialog's checkbox, the dock's "Find
where they part ways"), and what the Layers page, the error overlay on both graphs and the error-vs-depth
plot then show; selection follows between the table and both graphs."""
from __future__ import annotations

import os
import shutil

import numpy as np
import pytest
from PySide6.QtCore import QPoint, Qt
from PySide6.QtGui import QColor

from app.graph_view.overlay import BIN_MISSING, BIN_OK, ErrorOverlay
from app.panels.parity import depth_points, node_for_value, nodes_for_layers

JOB_TIMEOUT = 120_000


@pytest.fixture
def window(window):
    window.resize(1500, 950)
    return window


@pytest.fixture
def fault_pair(model_file, tmp_path):
    """(a.onnx, b.onnx, planted): B is A with conv2's weights × 1.05; ``planted`` names the Conv node
    that reads them, its output and the Relu after it."""
    import onnx
    from onnx import numpy_helper

    src = model_file("compare_models", "cnn.onnx").path
    a = tmp_path / "a.onnx"
    b = tmp_path / "b.onnx"
    shutil.copy(src, a)
    m = onnx.load(str(a))
    w = next(i for i in m.graph.initializer if i.name == "conv2.weight")
    w.CopyFrom(numpy_helper.from_array((numpy_helper.to_array(w) * 1.05).astype(np.float32), w.name))
    onnx.save(m, str(b))
    conv = next(n for n in m.graph.node if "conv2.weight" in n.input)
    after = next(n for n in m.graph.node if conv.output[0] in n.input)
    first_conv = next(n for n in m.graph.node if n.op_type == "Conv" and n is not conv)
    return str(a), str(b), {"node": conv.name, "value": conv.output[0], "next_node": after.name,
                            "next_value": after.output[0], "ok_node": first_conv.name}


def _open(window, qtbot, path):
    tab = window.open_path(path)
    qtbot.waitUntil(lambda: tab.state in ("ready", "failed"), timeout=60_000)
    assert tab.state == "ready", tab.error
    qtbot.waitUntil(lambda: tab.canvas is not None and tab.canvas.drawn_nodes() > 0, timeout=20_000)
    return tab


def _wait(window, qtbot) -> dict:
    p = window.parity
    qtbot.waitUntil(lambda: not p.running and (p.result is not None or p.job.state != "done"), timeout=JOB_TIMEOUT)
    assert p.job.state == "done", p.job.error
    return p.result


def _pixel(tab, node: int) -> QColor:
    """The colour the canvas paints just inside the left edge of ``node`` (clear of its text)."""
    canvas = tab.canvas
    r = canvas.node_scene_rect(node)
    assert r is not None
    v = canvas.canvas
    v.centerOn(r.center())
    pt = v.mapFromScene(r.left() + 0.12 * r.width(), r.center().y())
    assert v.viewport().rect().contains(pt)
    img = v.viewport().grab().toImage()
    return QColor(img.pixel(QPoint(pt.x(), pt.y())))


def _close(c1: QColor, c2: QColor, tol: int = 12) -> bool:
    return all(abs(x - y) <= tol for x, y in zip(c1.getRgb()[:3], c2.getRgb()[:3]))


def test_per_layer_compare_overlays_both_graphs_and_follows_selection(window, qtbot, fault_pair):
    a, b, planted = fault_pair
    tab_a = _open(window, qtbot, a)
    tab_b = _open(window, qtbot, b)
    window.tabs.setCurrentWidget(tab_a)
    dlg = window.compare_with(b)
    assert dlg.path_a() == os.path.abspath(a) and dlg.path_b() == os.path.abspath(b)
    dlg.per_layer.setChecked(True)
    assert dlg.params()["per_layer"] is True
    dlg.accept()
    assert window.parity.job.params["per_layer"] is True
    res = _wait(window, qtbot)
    p = window.parity
    layers = res["layers"]
    assert res["layer_first"]["a"] == planted["value"], res.get("layer_notes")

    # the Layers page: the first divergence's row names the planted layer
    lv = p.layers
    assert p.pages.currentWidget() is lv and p.pages.isTabVisible(1) and not p.find_button.isVisible()
    assert lv.table.rowCount() == len(layers)
    row = lv.first_row()
    assert lv.cell(row, "Layer A") == planted["value"] and lv.cell(row, "Status").endswith("source")
    assert "first" in lv.cell(row, "Status")
    assert lv.cell(row, "Max abs") == format(res["layer_first"]["max_abs"], ".3g")
    by_value = {r["a"]: r for r in layers}
    assert by_value[planted["next_value"]]["status"] == "inherited"

    # the overlay on both open graphs: the planted Conv a source and the first divergence, the Relu
    # after it inherited, the first Conv green; painted in the overlay's colour
    assert window.act_overlay.isChecked() and window.act_first_divergence.isEnabled()
    for tab in (tab_a, tab_b):
        ov = tab.canvas.overlay
        assert ov is not None
        names = tab.doc.pack.names
        n_src, n_next, n_ok = (names.index(planted[k]) for k in ("node", "next_node", "ok_node"))
        assert ov.status_of(n_src) == "source" and ov.first_node == n_src
        assert ov.status_of(n_next) == "inherited"
        assert ov.bin[n_src] >= 1 and ov.bin[n_next] >= 1 and ov.bin[n_ok] == BIN_OK
        assert set(ov.colored_nodes().tolist()) == {names.index(r["node"]) for r in layers
                                                    if r["status"] in ("source", "inherited")}
    window.tabs.setCurrentWidget(tab_b)
    qtbot.wait(50)
    n_src_b = tab_b.doc.pack.names.index(planted["node"])
    assert _close(_pixel(tab_b, n_src_b), tab_b.canvas.overlay.color_of(n_src_b))
    n_ok_b = tab_b.doc.pack.names.index(planted["ok_node"])
    assert _close(_pixel(tab_b, n_ok_b), tab_b.canvas.overlay.color_of(n_ok_b))

    # the depth plot: one point per compared layer, the star at the planted layer
    compared = [r for r in layers if r.get("max_abs") is not None]
    x, y = p.depth_item.xData, p.depth_item.yData
    assert len(x) == len(compared) == len(p.depth_layers)
    assert np.allclose(sorted(y[y > 1e-8]), sorted(r["max_abs"] for r in compared if r["max_abs"] > 1e-8))
    assert list(p.depth_first_item.xData) == [res["layer_first"]["depth"]]
    assert p.depth_first_item.yData[0] == pytest.approx(res["layer_first"]["max_abs"])
    assert p.depth_tol_line.value() == pytest.approx(np.log10(res["tolerance"]["atol"]))

    # selecting a row selects the pair's node in both tabs
    nxt = by_value[planted["next_value"]]
    lv.table.selectRow(lv.row_of(nxt["index"]))
    for tab in (tab_a, tab_b):
        assert tab.canvas.selected == tab.doc.pack.names.index(planted["next_node"])
    assert "inherited" in lv.detail.text() and planted["next_value"] in lv.detail.text()
    assert list(p.depth_sel_item.xData) == [nxt["depth"]]
    # Go to first divergence (View menu): back to the planted layer in both
    window.act_first_divergence.trigger()
    assert lv.selected_layer() == res["layer_first"]["index"]
    for tab in (tab_a, tab_b):
        assert tab.canvas.selected == tab.doc.pack.names.index(planted["node"])
    # a node picked in A's graph selects its row and its partner in B
    last = max(compared, key=lambda r: r["depth"])
    tab_a.canvas.select(tab_a.doc.pack.names.index(last["node"]))
    assert lv.selected_layer() == last["index"]
    assert tab_b.canvas.selected == tab_b.doc.pack.names.index(last["node_b"])

    # the status filter and the threshold
    lv.set_filter("Wrong itself (source)")
    assert lv.visible_layers() == [res["layer_first"]["index"]]
    lv.set_filter("All layers")
    ov_b = tab_b.canvas.overlay
    lv.set_threshold(4.0)  # 4 decades over atol: above every error here
    assert tab_b.canvas.overlay is ov_b and len(ov_b.colored_nodes()) == 0 and ov_b.bin[n_src_b] == BIN_OK
    assert p.depth_threshold_line.isVisible()
    lv.set_threshold(0.0)
    assert ov_b.bin[n_src_b] >= 1
    # the overlay can be turned off and on again
    window.act_overlay.setChecked(False)
    assert tab_a.canvas.overlay is None and tab_b.canvas.overlay is None
    window.act_overlay.setChecked(True)
    assert tab_a.canvas.overlay is not None and tab_b.canvas.overlay is not None

    # the batched name mapping agrees with the one-name lookup
    pack = tab_b.doc.pack
    values = [r["b"] for r in layers]
    got = nodes_for_layers(pack, [""] * len(values), values)
    assert got.tolist() == [node_for_value(pack, v) for v in values]
    assert (got >= 0).all()


def test_find_where_they_part_ways_reruns_per_layer_and_offers_to_open_b(window, qtbot, fault_pair):
    a, b, planted = fault_pair
    _open(window, qtbot, a)
    dlg = window.compare_with(b)
    assert not dlg.per_layer.isChecked()
    dlg.accept()
    res = _wait(window, qtbot)
    p = window.parity
    assert not res["passed"] and not res.get("layers")
    assert p.find_button.isVisible() and not p.pages.isTabVisible(1)
    qtbot.mouseClick(p.find_button, Qt.MouseButton.LeftButton)
    assert p.job.params["per_layer"] is True and p.job.params["b"] == os.path.abspath(b)
    assert p.job.params["save_dir"] != res["files"].get("json", "").rsplit(os.sep, 1)[0]
    res2 = _wait(window, qtbot)
    assert res2["layer_first"]["a"] == planted["value"]
    assert not p.find_button.isVisible() and p.pages.isTabVisible(1)
    # A is open and coloured; B is not: the Layers page offers to open it
    tab_a = window.current_tab()
    assert tab_a.canvas.overlay is not None
    assert p.layers.open_b_button.isVisible()
    p.layers.open_b_button.click()
    tab_b = window.current_tab()
    assert tab_b.path == os.path.abspath(b)
    qtbot.waitUntil(lambda: tab_b.state == "ready" and tab_b.canvas is not None
                    and tab_b.canvas.overlay is not None, timeout=60_000)
    assert not p.layers.open_b_button.isVisible()
    n = tab_b.doc.pack.names.index(planted["node"])
    assert tab_b.canvas.overlay.first_node == n and tab_b.canvas.overlay.status_of(n) == "source"


def test_overlay_bins_and_depth_points():
    # four layers on a 6-node graph; node 5 is no layer
    ov = ErrorOverlay(6, [0, 1, 2, 3, -1], [0.0, 5e-5, 3e-2, float("nan"), 1.0],
                      ["ok", "source", "inherited", "missing", "inherited"], [0, 1, 2, 3, 4], first=1, atol=1e-5)
    assert ov.bin.tolist() == [BIN_OK, 1, 4, BIN_MISSING, -1, -1]
    assert ov.first_node == 1 and ov.status_of(2) == "inherited" and ov.status_of(5) is None
    assert ov.node_of_layer == {0: 0, 1: 1, 2: 2, 3: 3}
    ov.set_threshold(1.0)  # up to 1e-4 is green
    assert ov.bin.tolist()[:4] == [BIN_OK, BIN_OK, 3, BIN_MISSING]
    labels = [t for _c, t in ov.legend()]
    assert labels[0].startswith("≤ 1e-4") and labels[-1] == "not compared"
    # groups: 0 root, 1 holds nodes 0-2, 2 (inside 1) holds node 3
    gb = ov.group_bins(np.array([-1, 0, 1]), np.array([1, 1, 1, 2, 0, 0]))
    assert gb.tolist() == [3, 3, BIN_MISSING]
    layers = [{"index": 0, "depth": 2, "max_abs": 0.0}, {"index": 1, "depth": 0, "max_abs": 1e-3},
              {"index": 2, "depth": -1, "max_abs": 2e-3}, {"index": 3, "depth": 1, "max_abs": None}]
    x, y, idx, floor = depth_points(layers, 1e-5)
    assert idx == [1, 0, 2] and x.tolist() == [0, 2, 3] and y[1] == floor and floor == pytest.approx(1e-9)
