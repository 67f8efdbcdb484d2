"""The Parity dock and the Compare dialog in the real window: real compare jobs in worker processes on
tiny real models (tests/models/compare_models.py), auto parity after a conversion dropped on a target."""
from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import QObject, QSettings, Qt, QUrl, Slot
from PySide6.QtGui import QDesktopServices, QGuiApplication
from PySide6.QtWidgets import QDialogButtonBox

from app.main_window import MainWindow
from app.panels.parity import node_for_value

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "resources" / "samples" / "tiny_cnn.onnx"
JOB_TIMEOUT = 120_000


@pytest.fixture
def window(window):
    window.resize(1400, 900)  # room for the parity table and plots
    return window


def _open(window, qtbot, path) -> object:
    tab = window.open_path(str(path))
    qtbot.waitUntil(lambda: tab.state in ("ready", "failed"), timeout=60_000)
    assert tab.state == "ready", tab.error
    return tab


def _wait_parity(window, qtbot) -> dict:
    p = window.parity
    assert p.job is not None and p.job.task == "compare"
    qtbot.waitUntil(lambda: not p.running and (p.result is not None or p.job.state != "done"),
                    timeout=JOB_TIMEOUT)
    assert p.job.state == "done", p.job.error
    return p.result


def test_compare_dialog_pass_shows_figures_and_plots(window, qtbot, model_file):
    a = model_file("compare_models", "cnn.onnx")
    b = model_file("compare_models", "cnn_nudged.onnx")  # logits[:, 3] off by 2e-3: inside fp16
    _open(window, qtbot, a.path)
    assert window.act_compare.isEnabled()
    dlg = window.compare_with(b.path)
    assert dlg.path_a() == os.path.abspath(a.path) and dlg.path_b() == os.path.abspath(b.path)
    dlg.preset.setCurrentText("fp16")
    dlg.seed.setValue(7)
    qtbot.mouseClick(dlg.buttons.button(QDialogButtonBox.StandardButton.Ok), Qt.MouseButton.LeftButton)
    assert window.parity.running and window.parity.cancel_button.isVisible()
    res = _wait_parity(window, qtbot)
    p = window.parity
    assert res["passed"] is True and res["tolerance"]["name"] == "fp16" and res["seed"] == 7
    assert p.badge.text() == "PASS" and "fp16" in p.headline.text()
    assert not p.cancel_button.isVisible() and p.rerun_button.isEnabled()
    assert window.parity_dock.isVisible()
    # the table shows the result's own figures
    by_name = {o["name"]: o for o in res["outputs"]}
    assert p.table.rowCount() == 2 and {p.cell(r, "Output A") for r in range(2)} == {"logits", "features"}
    for r in range(2):
        o = by_name[p.cell(r, "Output A")]
        assert p.cell(r, "Verdict") == "PASS"
        assert p.cell(r, "Max abs") == format(o["max_abs"], ".3g")
        assert p.cell(r, "Cosine") == format(o["cosine"], ".6f")
        assert p.cell(r, "Shape") == "×".join(map(str, o["shape"]))
    logits_row = next(r for r in range(2) if p.cell(r, "Output A") == "logits")
    assert float(p.cell(logits_row, "Max abs")) == pytest.approx(2e-3, rel=0.05)
    assert "runs" in p.sides.text() and "onnxruntime on cpu" in p.sides.text()
    assert p.report_button.isEnabled() and os.path.getsize(p.report_path()) > 1000
    # plots of the selected output: the engine's histogram as it is, the scatter from the npz
    p.table.selectRow(logits_row)
    with np.load(res["files"]["npz"]) as z:
        ref_a, ref_b = z["a/logits"], z["b/logits"]
    hx, hy = p.hist_item.xData, p.hist_item.yData
    assert hy is not None and hy.tolist() == by_name["logits"]["histogram"] and hy.sum() == ref_a.size
    # log10 |A - B| in bins 0.5 wide from 1e-12 to 1e4, the open ends drawn one bin wide
    edges = np.arange(-12.5, 4.75, 0.5)
    assert np.allclose(hx, edges)
    with np.errstate(divide="ignore"):
        lg = np.clip(np.log10(np.abs(ref_a.astype(np.float64) - ref_b)), edges[0], edges[-1] - 1e-9)
    assert np.array_equal(hy, np.histogram(lg, bins=edges)[0])
    # errors of ~2e-3 land in the log10 bin around -2.7; exact matches (the other columns) in the first
    assert hy[0] == ref_a.size - ref_a.shape[0] and hy[np.searchsorted(edges, np.log10(2e-3)) - 1] == ref_a.shape[0]
    sx, sy = p.scatter_item.xData, p.scatter_item.yData
    assert sx.size == ref_a.size and np.allclose(np.sort(sx), np.sort(ref_a.ravel()))
    assert np.allclose(np.sort(sy), np.sort(ref_b.ravel()))
    # Re-run: the same settings again
    job = p.rerun()
    assert job.params["preset"] == "fp16" and job.params["seed"] == 7 and job.params["b"] == res["b"]["path"]
    res2 = _wait_parity(window, qtbot)
    assert res2["passed"] and res2["files"]["npz"] != res["files"]["npz"]


def test_perturbed_copy_fails_with_worst_index(window, qtbot, model_file):
    a = model_file("compare_models", "cnn.onnx")
    b = model_file("compare_models", "cnn_perturbed.onnx")  # logits[:, 3] + 0.5
    _open(window, qtbot, a.path)
    dlg = window.compare_with(b.path)
    assert dlg.preset.currentText() == "fp32"
    dlg.accept()
    res = _wait_parity(window, qtbot)
    p = window.parity
    assert res["passed"] is False and p.badge.text() == "FAIL"
    row = next(r for r in range(p.table.rowCount()) if p.cell(r, "Output A") == "logits")
    assert p.cell(row, "Verdict") == "FAIL"
    worst = eval(p.cell(row, "Worst index"))  # noqa: S307 - the cell shows a Python list of ints
    assert worst[-1] == b.facts["perturbed_index"]
    assert float(p.cell(row, "Max abs")) == pytest.approx(0.5, rel=1e-3)
    other = 1 - row
    assert p.cell(other, "Verdict") == "PASS"
    assert "1 of 2 outputs differ" in p.headline.text()


def test_error_map_and_topk_plots_of_a_wrong_pixel(window, qtbot, model_file):
    a = model_file("compare_models", "cnn.onnx")
    b = model_file("compare_models", "cnn_pixel.onnx")  # features[:, 5, 2, 6] + 1, logits unchanged
    _open(window, qtbot, a.path)
    window.compare_with(b.path).accept()
    res = _wait_parity(window, qtbot)
    p = window.parity
    assert res["passed"] is False
    rows = {p.cell(r, "Output A"): r for r in range(p.table.rowCount())}
    # the feature map: the error map shows the one wrong pixel, the top-k plot does not apply
    p.table.selectRow(rows["features"])
    assert not p.map_plot.isHidden() and p.topk_plot.isHidden()
    img = p.map_image.image
    assert img.shape == (8, 8)
    assert np.unravel_index(int(np.argmax(img)), img.shape) == (2, 6)
    assert p.error_map["worst"] == (2, 6) and p.error_map["reduced"] == "worst over 16 channels"
    assert p.map_value_at(2, 6) == f"row 2, column 6: |A − B| {p.error_map['map'][2, 6]:.3g}"
    assert float(p.error_map["map"][2, 6]) == pytest.approx(1.0, abs=1e-6)
    assert "features" in p.map_plot.getPlotItem().titleLabel.text
    # the logits: a classifier's top-k agreement from the engine's own figures, no error map
    p.table.selectRow(rows["logits"])
    assert p.map_plot.isHidden() and not p.topk_plot.isHidden()
    topk = next(o for o in res["outputs"] if o["name"] == "logits")["topk"]
    assert p.topk_values == {f"top-{k[3:]}": 100 * v for k, v in topk.items()}
    assert p.topk_values["top-1"] == 100.0  # the logits did not change
    assert list(p.topk_item.opts["height"]) == list(p.topk_values.values())


def test_devices_combo_lists_cpu_and_missing_cuda_with_reason(window, qtbot, model_file):
    a = model_file("compare_models", "cnn.onnx")
    _open(window, qtbot, a.path)
    dlg = window.compare_with()
    assert [e["device"] for e in dlg.device_entries("a")] == ["cpu"]  # until the devices task answers
    qtbot.waitUntil(lambda: dlg.devices is not None, timeout=60_000)
    entries = dlg.device_entries("a")
    cpu = [e for e in entries if e["device"] == "cpu"]
    assert len(cpu) == 1 and cpu[0]["enabled"]
    cuda = [e for e in entries if e["device"].startswith("cuda")]
    assert cuda and not any(e["enabled"] for e in cuda)  # this machine has no GPU
    assert all("CUDA" in e["tooltip"] or "GPU" in e["tooltip"] for e in cuda)
    assert dlg.device_a.currentData() == "cpu"
    dlg.reject()


def test_first_divergence_selects_node_in_graph(window, qtbot, model_file):
    import onnx

    a = model_file("compare_models", "cnn.onnx")
    b = model_file("compare_models", "cnn_conv1_changed.onnx")  # conv1's weights changed
    _open(window, qtbot, a.path)
    tab_b = _open(window, qtbot, b.path)
    g = onnx.load(b.path).graph
    outs = {o.name for o in g.output}
    names = [n.output[0] for n in g.node if n.output[0] not in outs]  # inner tensors only
    params = window.compare_with().params()
    window.compare_dialog.reject()
    assert params["a"] == os.path.abspath(b.path)  # the current tab is A
    params["a"], params["b"] = os.path.abspath(a.path), os.path.abspath(b.path)
    params["capture"] = [[n, n] for n in names]
    window.run_compare(params)
    res = _wait_parity(window, qtbot)
    p = window.parity
    assert res["first_divergence"] and p.badge.text() == "FAIL", res.get("error")
    assert p.divergence.isVisible() and res["first_divergence"] in p.divergence.text()
    assert p.divergence_button.isVisible()
    window.tabs.setCurrentIndex(0)  # A's tab; the divergence is shown in B's
    p.divergence_button.click()
    assert window.current_tab() is tab_b
    i = node_for_value(tab_b.doc.pack, res["first_divergence"])
    assert i >= 0 and res["first_divergence"] in [o["name"] for o in tab_b.doc.pack.details(i)["outputs"]]
    assert tab_b.canvas.selected == i


def test_auto_parity_setting_is_remembered(tmp_path, qtbot):
    s = QSettings(str(tmp_path / "s.ini"), QSettings.Format.IniFormat)
    w = MainWindow(s)
    qtbot.addWidget(w)
    assert w.act_auto_parity.isChecked() and w.auto_parity
    w.act_auto_parity.setChecked(False)
    w.close()
    s.sync()
    w2 = MainWindow(QSettings(str(tmp_path / "s.ini"), QSettings.Format.IniFormat))
    qtbot.addWidget(w2)
    assert not w2.act_auto_parity.isChecked() and not w2.auto_parity
    w2.close()


def test_drop_conversion_starts_parity_and_passes(window, qtbot, tmp_path):
    from tests.app.dnd import drop_file as _drop

    src = tmp_path / "tiny_cnn.onnx"
    shutil.copy(SAMPLE, src)
    _drop(window.convert_strip.targets["torch"], str(src))
    dlg = window.convert_dialog
    qtbot.mouseClick(dlg.buttons.button(QDialogButtonBox.StandardButton.Ok), Qt.MouseButton.LeftButton)
    conv = window._status_job
    qtbot.waitUntil(lambda: not conv.running, timeout=240_000)
    assert conv.state == "done", conv.error
    qtbot.waitUntil(lambda: window.parity.job is not None, timeout=10_000)
    job = window.parity.job
    assert job.params["a"] == str(src) and job.params["b"] == os.path.abspath(conv.result["output"])
    assert job.params["preset"] == "fp32" and job.params["device_a"] == job.params["device_b"] == "cpu"
    assert job.params.get("capture_map") is True  # the converter wrote a .tbmap.json
    res = _wait_parity(window, qtbot)
    assert res["passed"], res.get("error") or res["outputs"]
    assert window.parity.badge.text() == "PASS" and window.parity.table.rowCount() >= 1
    assert window.parity_dock.isVisible()
    assert res["b"]["runtime"] == "torch" and res["a"]["runtime"] == "onnxruntime"
    # the converter's map: inner tensors compared, or (when the runtime cannot find them) said so
    inner = [o for o in res["outputs"] if o.get("intermediate")]
    assert window.parity.divergence.isVisible() if inner else \
        "cannot be captured" in window.parity.warnings.text()


def test_dock_follows_the_tab_a_comparison_belongs_to(window, qtbot, model_file):
    a = model_file("compare_models", "cnn.onnx")
    b = model_file("compare_models", "cnn_nudged.onnx")
    tab_a = _open(window, qtbot, a.path)
    window.compare_with(b.path).accept()
    _wait_parity(window, qtbot)
    p = window.parity
    assert p.main.isVisible() and not p.elsewhere.isVisible() and p.badge.text() == "FAIL"
    other = _open(window, qtbot, SAMPLE)  # an unrelated model becomes the current tab
    assert window.current_tab() is other
    assert not p.main.isVisible() and p.elsewhere.isVisible()
    assert p.elsewhere_label.text() == ("No comparison of tiny_cnn.onnx yet. The last one, of cnn.onnx and "
                                        "cnn_nudged.onnx, is shown on their tabs.")
    # "Compare tiny_cnn.onnx with…": the dialog with this tab's model as A
    assert p.elsewhere_compare.text() == "Compare tiny_cnn.onnx with…"
    qtbot.mouseClick(p.elsewhere_compare, Qt.MouseButton.LeftButton)
    dlg = window.compare_dialog
    assert dlg is not None and dlg.path_a() == str(SAMPLE.resolve())
    dlg.reject()
    # back on A's tab the comparison is there again; "Show it" shows it anywhere
    window.tabs.setCurrentWidget(tab_a)
    assert p.main.isVisible() and not p.elsewhere.isVisible()
    window.tabs.setCurrentWidget(other)
    assert p.elsewhere.isVisible()
    qtbot.mouseClick(p.elsewhere_show, Qt.MouseButton.LeftButton)
    assert p.main.isVisible() and p.badge.text() == "FAIL"


class _UrlSink(QObject):
    """The desktop's handler for file URLs in this test (Qt's own setUrlHandler): records what it is asked."""

    def __init__(self):
        super().__init__()
        self.urls: list[str] = []

    @Slot(QUrl)
    def open(self, url: QUrl) -> None:
        self.urls.append(url.toLocalFile())


def test_open_report_says_where_it_is_and_when_no_browser_starts(window, qtbot, model_file):
    a = model_file("compare_models", "cnn.onnx")
    b = model_file("compare_models", "cnn_nudged.onnx")
    _open(window, qtbot, a.path)
    window.compare_with(b.path).accept()
    _wait_parity(window, qtbot)
    p = window.parity
    report = p.report_path()
    assert report and report.endswith("report.html") and report in p.report_button.toolTip()
    # the offscreen platform has no desktop handler: the notice says so and where the file is
    qtbot.mouseClick(p.report_button, Qt.MouseButton.LeftButton)
    assert window.notice.isVisible() and window.notice.property("kind") == "error"
    assert window.notice.text.text() == f"No browser could be started for the report; it is at {report}"
    qtbot.mouseClick(window.notice.button("Copy path"), Qt.MouseButton.LeftButton)
    assert QGuiApplication.clipboard().text() == report
    # with a handler for file URLs, the report goes to it and the notice still gives the path
    sink = _UrlSink()
    QDesktopServices.setUrlHandler("file", sink, "open")
    try:
        assert p.open_report() is True
        assert sink.urls == [report]
        assert window.notice.text.text() == f"Report opened in your browser: {report}"
        qtbot.wait(20)  # the previous notice's buttons are deleted
        qtbot.mouseClick(window.notice.button("Open folder"), Qt.MouseButton.LeftButton)
        assert sink.urls == [report, os.path.dirname(report)]
    finally:
        QDesktopServices.unsetUrlHandler("file")
    # a report whose folder is gone: one line that says what to do
    shutil.rmtree(os.path.dirname(report))
    assert p.open_report() is False
    assert window.notice.text.text().startswith("The report is no longer on disk")
