"""The whole parity loop with the mouse, on a two-hop route: a torch ExportedProgram dropped on the TFLite
target (torch.onnx, then onnx2tf) with float16 weights; the check after the conversion passes at the fp16
preset; compared again layer by layer at fp32, the first divergence is found on both graphs, shown side by
side and inspected down to its tensors. Real converters, real runtimes, real worker processes."""
from __future__ import annotations

import os
import shutil

import numpy as np
from PySide6.QtCore import QPoint, Qt
from PySide6.QtWidgets import QCheckBox, QDialogButtonBox, QToolButton

from tests.app.dnd import drop_file

JOB_TIMEOUT = 300_000


def _toolbar_button(window, action) -> QToolButton:
    for tb in window.findChildren(QToolButton):
        if tb.defaultAction() is action and tb.isVisible():
            return tb
    raise AssertionError(f"no toolbar button for {action.text()}")


def _click(qtbot, widget) -> None:
    """A left click on ``widget``: a check box on its indicator, anything else in its middle."""
    pos = QPoint(8, widget.height() // 2) if isinstance(widget, QCheckBox) else widget.rect().center()
    qtbot.mouseClick(widget, Qt.MouseButton.LeftButton, pos=pos)


def test_two_hop_conversion_to_first_divergence_and_its_tensors(window, qtbot, model_file, tmp_path):
    window.resize(1400, 900)
    src = tmp_path / "cnn.pt2"
    shutil.copy(model_file("compare_models", "cnn.pt2").path, src)
    tab_src = window.open_path(str(src))
    qtbot.waitUntil(lambda: tab_src.state in ("ready", "failed"), timeout=120_000)
    assert tab_src.state == "ready", tab_src.error

    # drop the file on "→ TFLite": the planned route has two hops; float16 weights; Convert
    drop_file(window.convert_strip.targets["tflite"], str(src))
    dlg = window.convert_dialog
    assert dlg is not None and dlg.isVisible()
    route = " ".join(dlg.route).lower()
    assert len(dlg.route) == 2 and "onnx" in route and "tflite" in route, dlg.route
    _click(qtbot, dlg.fp16)
    assert dlg.fp16.isChecked()
    _click(qtbot, dlg.buttons.button(QDialogButtonBox.StandardButton.Ok))
    conv = window._status_job
    qtbot.waitUntil(lambda: not conv.running, timeout=JOB_TIMEOUT)
    assert conv.state == "done", conv.error
    out = conv.result["output"]
    assert out.endswith(".tflite") and os.path.exists(out)
    # the result opens in a tab, and the check after the conversion passes at the fp16 preset
    qtbot.waitUntil(lambda: window.parity.job is not None and window.parity.job.params["b"] == os.path.abspath(out),
                    timeout=20_000)
    qtbot.waitUntil(lambda: not window.parity.running and window.parity.result is not None, timeout=JOB_TIMEOUT)
    res = window.parity.result
    assert res["tolerance"]["name"] == "fp16" and res["passed"], res.get("error") or res["outputs"]
    tab_out = next(t for t in window.model_tabs() if t.path == os.path.abspath(out))
    qtbot.waitUntil(lambda: tab_out.state in ("ready", "failed"), timeout=120_000)
    assert tab_out.state == "ready", tab_out.error

    # back on the source's tab: Compare with… (toolbar), B is the converted file; per layer at fp32
    bar = window.tabs.tabBar()
    qtbot.mouseClick(bar, Qt.MouseButton.LeftButton, pos=bar.tabRect(window.tabs.indexOf(tab_src)).center())
    assert window.current_tab() is tab_src
    _click(qtbot, _toolbar_button(window, window.act_compare))
    cdlg = window.compare_dialog
    assert cdlg is not None and cdlg.path_a() == os.path.abspath(src) and cdlg.path_b() == os.path.abspath(out)
    assert cdlg.preset.currentText() == "fp32"
    _click(qtbot, cdlg.per_layer)
    assert cdlg.per_layer.isChecked()
    _click(qtbot, cdlg.buttons.button(QDialogButtonBox.StandardButton.Ok))
    qtbot.waitUntil(lambda: bool(window.parity.job.params.get("per_layer") and not window.parity.running
                                 and window.parity.result is not None and window.parity.result.get("layers")),
                    timeout=JOB_TIMEOUT)
    res = window.parity.result
    p = window.parity
    assert res["passed"] is False and p.badge.text() == "FAIL"
    first = res["layer_first"]
    assert first is not None and first["status"] == "source", res.get("layer_notes")
    # float16 weights: the first layer that is wrong itself is the first one, the first convolution (with its
    # ReLU fused into it on the TFLite side); every later one inherits
    compared = sorted((r for r in res["layers"] if r.get("max_abs") is not None), key=lambda r: r["depth"])
    assert first["index"] == compared[0]["index"] and first["op_b"] == "CONV_2D", first
    assert [r["status"] for r in compared[1:]] == ["inherited"] * (len(compared) - 1)

    # Go to first divergence: its row, and its node selected in both graphs, outlined as the first
    lv = p.layers
    _click(qtbot, lv.first_button)
    assert lv.selected_layer() == first["index"]
    for tab, key in ((tab_src, "node"), (tab_out, "node_b")):
        ov = tab.canvas.overlay
        assert ov is not None and ov.first_node >= 0
        assert tab.canvas.selected == ov.first_node
        assert ov.status_of(ov.first_node) == "source"
    assert tab_src.doc.pack.names[tab_src.canvas.selected] == first["node"]

    # side by side: both panes hold the pair, selected
    _click(qtbot, lv.side_button)
    qtbot.waitUntil(lambda: window.compare_view is not None, timeout=60_000)
    view = window.compare_view
    for side, tab in (("a", tab_src), ("b", tab_out)):
        pane = view.panes[side]
        qtbot.waitUntil(lambda pane=pane: pane.pack is not None and pane.drawn_nodes() > 0, timeout=30_000)
        assert pane.selected == tab.canvas.overlay.first_node

    # down to its tensors: A, B and B − A of the pair, read from the comparison's folder
    d = lv.tensors
    qtbot.waitUntil(lambda: d.info is not None and int(d.info["index"]) == first["index"]
                    and not (d.job and d.job.running), timeout=JOB_TIMEOUT)
    xa, xb = np.load(d.info["files"]["a"]), np.load(d.info["files"]["b"])
    assert first["perm"] == [0, 3, 1, 2]  # B's tensor is NHWC; the pair is compared in A's layout
    xb = np.transpose(xb, first["perm"])
    assert list(xa.shape) == first["shape"] and xa.shape == xb.shape
    assert float(np.abs(xb.astype(np.float64) - xa).max()) == np.float64(d.info["stats"]["max_abs"])
    assert d.info["stats"]["max_abs"] > res["tolerance"]["atol"]
    for key in ("a", "b", "diff"):
        assert d._images[key].image is not None and d._images[key].image.size > 0
