"""The Parity dock and the Compare dialog in the real window: real compare jobs in worker processes on
tiny real models (tests/models/compare_models.py), auto parity after a conversion dropped on a target."""
from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import QSettings, Qt
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
