"""The compare view (A ⇄ B) in the real window, and "Reduce to a minimal repro" on a chosen pair.

B is the fault-injected copy of the small CNN of tests/app/test_parity_layers.py (conv2's weights x 1.05),
here with one more node: a Mul by 1 after the first convolution, which the engine pairs with nothing. One
pair is given by the user (the comparison's ``capture``), the rest are paired by name, so the panes show
two pairing methods and one unmatched node."""
from __future__ import annotations

import os
import shutil

import numpy as np
import pytest
from PySide6.QtCore import QPoint, QPointF, Qt
from PySide6.QtGui import QColor

from app.graph_view.overlay import method_color
from converters.compare.params import compare_params

from . import test_parity_layers as _layers
from .test_parity_layers import JOB_TIMEOUT, _close, _open, _wait

window = _layers.window


@pytest.fixture
def extra_pair(model_file, tmp_path):
    """(a.onnx, b.onnx, facts): B has conv2's weights x 1.05 and an extra Mul by 1 after the first Conv."""
    import onnx
    from onnx import helper, numpy_helper

    src = model_file("compare_models", "cnn.onnx").path
    a, b = tmp_path / "a.onnx", tmp_path / "b.onnx"
    shutil.copy(src, a)
    m = onnx.load(str(a))
    w = next(i for i in m.graph.initializer if i.name == "conv2.weight")
    w.CopyFrom(numpy_helper.from_array((numpy_helper.to_array(w) * 1.05).astype(np.float32), w.name))
    conv2 = next(n for n in m.graph.node if "conv2.weight" in n.input)
    conv1 = next(n for n in m.graph.node if n.op_type == "Conv" and n is not conv2)
    after_conv2 = next(n for n in m.graph.node if conv2.output[0] in n.input)
    out = conv1.output[0]
    for n in m.graph.node:
        for k, x in enumerate(n.input):
            if x == out:
                n.input[k] = "extra_identity_mul"
    m.graph.initializer.append(numpy_helper.from_array(np.ones((), np.float32), "one"))
    at = list(m.graph.node).index(conv1) + 1
    m.graph.node.insert(at, helper.make_node("Mul", [out, "one"], ["extra_identity_mul"], name="extra_mul"))
    # module-like scopes ("stem/…" up to conv2, "head/…" from it), the same in A and B: two groups to expand
    ma = onnx.load(str(a))
    for model in (ma, m):
        cut = next(k for k, n in enumerate(model.graph.node) if "conv2.weight" in n.input)
        for k, n in enumerate(model.graph.node):
            n.name = f"{'stem' if k < cut else 'head'}/{n.name}"
            del n.metadata_props[:]  # the exporter's module scopes would win over the names
    onnx.save(ma, str(a))
    onnx.save(m, str(b))
    conv1, conv2, after_conv2 = (next(n for n in m.graph.node if n.output[0] == x.output[0])
                                 for x in (conv1, conv2, after_conv2))
    return str(a), str(b), {"conv1": conv1.name, "conv1_out": out, "conv2": conv2.name, "conv2_out": conv2.output[0],
                            "after": after_conv2.name, "after_out": after_conv2.output[0], "extra": "stem/extra_mul"}


def _drawn(qtbot, pane) -> None:
    qtbot.waitUntil(lambda: pane.pack is not None and pane.drawn_nodes() > 0, timeout=20_000)


def _click_node(qtbot, pane, node: int) -> None:
    """A real left click on a drawn node of a pane (the view is moved to it first)."""
    r = pane.node_scene_rect(node)
    assert r is not None
    v = pane.canvas
    v.centerOn(r.center())
    pt = v.mapFromScene(QPointF(r.left() + 0.3 * r.width(), r.center().y()))
    qtbot.mouseClick(v.viewport(), Qt.MouseButton.LeftButton, pos=pt)


def _center(pane, node: int) -> QPointF:
    return pane.drawn_anchor(node).center()


def _near(p: QPointF, q: QPointF, tol: float = 1.5) -> bool:
    return abs(p.x() - q.x()) <= tol and abs(p.y() - q.y()) <= tol


def _badge_pixel(pane, node: int) -> QColor:
    from app.graph_view.item import badge_rects

    r = pane.node_scene_rect(node)
    v = pane.canvas
    v.centerOn(r.center())
    x, y, w, h = badge_rects(np.array([[r.x(), r.y(), r.width(), r.height()]]))[0]
    pt = v.mapFromScene(QPointF(x + 2.5, y + h - 2.5))  # clear of its letter
    return QColor(v.viewport().grab().toImage().pixel(QPoint(pt.x(), pt.y())))


def test_compare_view_keeps_both_graphs_in_step(window, qtbot, extra_pair, tmp_path):
    a, b, f = extra_pair
    tab_a = _open(window, qtbot, a)
    params = compare_params(a, b, per_layer=True, out_dir=str(tmp_path / "parity"))
    params["capture"] = [[f["conv1_out"], f["conv1_out"]]]          # one pair the user gives
    window.run_compare(params)
    res = _wait(window, qtbot)
    methods = {r["a"]: r["method"] for r in res["layers"]}
    assert methods[f["conv1_out"]] == "user" and methods[f["conv2_out"]] == "name"
    assert "extra_identity_mul" in res["unmatched"]["b"]
    assert window.parity.layers.side_button.isVisible() and window.act_side_by_side.isEnabled()

    # only A is open: "Side by side" opens B, and the view once both graphs are drawn
    assert window.open_compare_view() is None
    tab_b = window.tab_for_side("b") or window.current_tab()
    assert tab_b.path == os.path.abspath(b)
    qtbot.waitUntil(lambda: window.compare_view is not None, timeout=60_000)
    view = window.compare_view
    assert window.tabs.currentWidget() is view and window.tabs.tabText(window.tabs.indexOf(view)) == "A ⇄ B"
    pa, pb = view.panes["a"], view.panes["b"]
    _drawn(qtbot, pa)
    _drawn(qtbot, pb)
    tab_b = window.tab_for_side("b")
    assert pa.pack is tab_a.doc.pack and pb.pack is tab_b.doc.pack
    na, nb = tab_a.doc.pack.names, tab_b.doc.pack.names
    # the pair the dock shows (the first divergence) is selected and centred in both panes
    first = res["layer_first"]["index"]
    assert window.parity.layers.selected_layer() == first
    for pane, names in ((pa, na), (pb, nb)):
        assert pane.selected == names.index(f["conv2"])
        qtbot.waitUntil(lambda pane=pane, names=names: _near(pane.view_center(), _center(pane, names.index(f["conv2"]))),
                        timeout=10_000)
    view.legend_box.setChecked(False)
    assert not pa._legend.isVisible() and not pb._legend.isVisible()
    view.legend_box.setChecked(True)

    # the error overlay on both panes: the planted Conv is the first divergence in each
    for pane, names in ((pa, na), (pb, nb)):
        assert pane.overlay is not None and pane.overlay.first_node == names.index(f["conv2"])
    # the pairing: the user's pair and the name pairs badged apart; the extra Mul hatched, in B only
    a_user, a_name = na.index(f["conv1"]), na.index(f["conv2"])
    assert pa.pairing.method_of(a_user) == "user" and pa.pairing.method_of(a_name) == "name"
    assert pb.pairing.method_of(nb.index(f["conv1"])) == "user"
    extra = nb.index(f["extra"])
    assert pb.pairing.unmatched[extra] and pb.pairing.method_of(extra) is None and not pa.pairing.unmatched.any()
    assert view.corr.partner_of("b", extra) == -1
    rows = [t for *_x, t in pb._legend.pair_rows]
    assert any(t.startswith("given by you") for t in rows) and any(t.startswith("same name") for t in rows)
    assert "no partner in the other model (1)" in rows and pb._legend.isVisible()
    assert method_color("user") != method_color("name")
    pa.set_view(1.0, pa.view_center())
    assert _close(_badge_pixel(pa, a_user), method_color("user"), 30)
    assert _close(_badge_pixel(pa, a_name), method_color("name"), 30)

    # selection follows both ways (real clicks), and the dock's table with it
    lv = window.parity.layers
    _click_node(qtbot, pa, a_name)
    assert pa.selected == a_name and pb.selected == nb.index(f["conv2"]) and view.lead == "a"
    k = next(r["index"] for r in res["layers"] if r["a"] == f["conv2_out"])
    assert lv.selected_layer() == k
    b_after = nb.index(f["after"])
    _click_node(qtbot, pb, b_after)
    assert view.lead == "b" and pa.selected == na.index(f["after"])
    assert lv.selected_layer() == next(r["index"] for r in res["layers"] if r["a"] == f["after_out"])
    _click_node(qtbot, pb, extra)  # no partner: A's selection is cleared
    assert pb.selected == extra and pa.selected == -1
    # a row picked in the dock selects the pair in both panes too
    lv.select_layer(k)
    assert pa.selected == a_name and pb.selected == nb.index(f["conv2"])

    # zoom and pan follow the pane the user works in: the same zoom, the partner at the same place
    _click_node(qtbot, pa, a_name)
    pa.zoom_in()
    assert pb.zoom == pytest.approx(pa.zoom) and pa.zoom != pytest.approx(1.0)
    target = na.index(f["after"])
    pa.canvas.centerOn(_center(pa, target))
    assert view.nearest_paired("a") == target
    assert _near(pb.view_center(), _center(pb, nb.index(f["after"])))
    _click_node(qtbot, pb, b_after)
    pb.zoom_out()
    pb.zoom_out()
    assert pa.zoom == pytest.approx(pb.zoom) and view.lead == "b"
    pb.canvas.centerOn(_center(pb, nb.index(f["conv2"])))
    # zoomed out, the whole width fits and cannot scroll: along the graph's length it follows
    assert abs(pa.view_center().y() - _center(pa, a_name).y()) <= 1.5
    view.in_step.setChecked(False)  # out of step: each pane on its own
    z = pa.zoom
    pb.zoom_out()
    assert pa.zoom == pytest.approx(z)
    view.in_step.setChecked(True)

    # expanding or collapsing a group follows: the group holding the partners
    g = int(tab_a.doc.pack.node_group[na.index(f["conv2"])])
    pack_a = tab_a.doc.pack
    assert g > 0 and pack_a.group_labels[g] == "head"
    gb = view.partner_groups("a", g)
    assert gb == [int(tab_b.doc.pack.node_group[nb.index(f["conv2"])])]
    pa.collapse(g)
    assert g not in pa.expanded_groups and gb[0] not in pb.expanded_groups
    qtbot.waitUntil(lambda: pb.node_scene_rect(nb.index(f["conv2"])) is None, timeout=10_000)
    pa.expand(g)
    assert g in pa.expanded_groups and gb[0] in pb.expanded_groups
    pb.collapse(gb[0])
    assert g not in pa.expanded_groups
    assert pack_a.group_labels[g] == tab_b.doc.pack.group_labels[gb[0]]

    # the view's own controls: the run's settings, Settings… (the Compare dialog filled with them), Run again
    assert view.settings.text() == "fp32 · cpu | cpu · seed 0"
    assert view.run_button.isEnabled() and view.cancel_button.isHidden() and view.bar.isHidden()
    view.again_button.click()
    dlg = window.compare_dialog
    assert dlg is not None and dlg.path_a() == os.path.abspath(a) and dlg.path_b() == os.path.abspath(b)
    assert dlg.per_layer.isChecked() and dlg.preset.currentText() == "fp32" and dlg.seed.value() == 0
    assert dlg.samples.value() == 1 and dlg.device_a.currentData() == "cpu" and dlg.device_b.currentData() == "cpu"
    dlg.preset.setCurrentText("fp16")
    dlg.seed.setValue(3)
    dlg.samples.setValue(2)
    assert dlg.params()["samples"] == 2 and dlg.params()["per_layer"] is True
    dlg.inputs.setText("/some/inputs.npz")  # a file of inputs holds its own samples
    assert not dlg.samples.isEnabled() and dlg.params()["samples"] == 1
    dlg.inputs.setText("")
    dlg.accept()
    assert view.cancel_button.isVisible() and view.bar.isVisible() and not view.run_button.isEnabled()
    qtbot.mouseClick(view.cancel_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not window.parity.running, timeout=JOB_TIMEOUT)
    assert window.parity.job.state == "cancelled"
    qtbot.waitUntil(lambda: view.cancel_button.isHidden(), timeout=5_000)
    assert view.run_button.isEnabled()
    # Run again: the same settings (two samples, fp16, seed 3), progress in the view, then the new result
    job = None
    qtbot.mouseClick(view.run_button, Qt.MouseButton.LeftButton)
    job = window.parity.job
    assert job.params["samples"] == 2 and job.params["preset"] == "fp16" and job.params["seed"] == 3
    assert job.params["per_layer"] is True and view.bar.isVisible()
    res2 = _wait(window, qtbot)
    assert res2["samples"] == 2 and res2["tolerance"]["name"] == "fp16" and res2["layer_first"] is not None
    qtbot.waitUntil(lambda: view.cancel_button.isHidden(), timeout=5_000)
    qtbot.waitUntil(lambda: view.settings.text() == "fp16 · cpu | cpu · seed 3 · 2 samples", timeout=20_000)
    # the overlay switch reaches the panes; closing the tab ends the view
    window.act_overlay.setChecked(False)
    assert pa.overlay is None and pb.overlay is None and pb.pairing is not None
    window.act_overlay.setChecked(True)
    assert pa.overlay is tab_a.canvas.overlay
    window.close_tab(window.tabs.indexOf(view))
    qtbot.waitUntil(lambda: window.compare_view is None, timeout=5_000)


def test_reduce_a_chosen_pair_reuses_the_kept_comparison(window, qtbot, extra_pair, tmp_path):
    """From the context menu of the Relu after the planted Conv (a pair that only inherits error): the
    reduction cuts to that pair, from the comparison the window keeps (no comparison of its own)."""
    a, b, f = extra_pair
    tab_b = _open(window, qtbot, b)
    window.run_compare(compare_params(a, b, per_layer=True, out_dir=str(tmp_path / "parity")))
    res = _wait(window, qtbot)
    r_after = next(r for r in res["layers"] if r["a"] == f["after_out"])
    assert r_after["status"] == "inherited"
    d = window.parity.layers.tensors
    assert d.reduce_target(r_after["index"]) == r_after["index"]
    assert d.reduce_target(next(r["index"] for r in res["layers"] if r["status"] == "ok")) is None
    menu = window.layer_menu(tab_b, tab_b.doc.pack.names.index(f["after"]))
    acts = {x.text().replace("&", ""): x for x in menu.actions()}
    acts["Reduce to a minimal repro"].trigger()
    job = d.reduce_job
    assert job.params["layer"] == r_after["index"]
    assert job.params["result_dir"] == os.path.dirname(res["files"]["json"])
    assert f["after_out"] in d.repro_label.text()
    qtbot.waitUntil(lambda: not job.running, timeout=JOB_TIMEOUT)
    assert job.state == "done", job.error
    r = d.repro
    assert r["differ"] and r["target_a"] == f["after_out"] and r["layer"] == r_after["index"] and not r["first"]
    assert "compare" not in r["jobs"] and r["reused"] == os.path.dirname(res["files"]["json"])
    assert f["conv2"] in r["nodes"] and f["after"] in r["nodes"]  # cut back to where the error is made
