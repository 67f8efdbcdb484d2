"""Node detail of the Parity dock in the real window: the selected pair's tensors as images (read from the
per-layer result folder by a worker), the slice spin box, a passed pair whose B was not kept, "Reduce to
a minimal repro" from the Layers page, and the pair's actions (copy names, export the report, save the
inputs). Same fault as tests/app/test_parity_layers.py: conv2's weights x 1.05 in a copy of a small CNN."""
from __future__ import annotations

import json
import os

import numpy as np
from PySide6.QtCore import QPointF
from PySide6.QtGui import QGuiApplication

from app.panels.parity_detail import NOT_KEPT
from converters.compare.params import compare_params

from . import test_parity_layers as _layers
from .test_parity_layers import JOB_TIMEOUT, _open, _wait

window = _layers.window          # the fixtures of the per-layer window tests: the same window size
fault_pair = _layers.fault_pair  # and the same planted fault


def _per_layer(window, qtbot, a: str, b: str, tmp_path) -> dict:
    window.run_compare(compare_params(a, b, per_layer=True, out_dir=str(tmp_path / "parity")))
    return _wait(window, qtbot)


def _loaded(qtbot, detail, index: int) -> dict:
    qtbot.waitUntil(lambda: detail.index == index and detail.info is not None
                    and int(detail.info["index"]) == index and not (detail.job and detail.job.running),
                    timeout=JOB_TIMEOUT)
    return detail.info


def _slices(x: np.ndarray) -> np.ndarray:
    return x.reshape(-1, x.shape[-2], x.shape[-1])  # (N, C, H, W) -> (N*C, H, W)


def test_node_detail_images_slices_and_actions(window, qtbot, fault_pair, tmp_path):
    a, b, planted = fault_pair
    res = _per_layer(window, qtbot, a, b, tmp_path)
    lv = window.parity.layers
    d = lv.tensors
    first = res["layer_first"]
    assert first["a"] == planted["value"]
    # the first divergence is selected: its tensors are read from the result folder by a worker
    info = _loaded(qtbot, d, first["index"])
    assert d.job.task == "layer_tensors"
    folder = os.path.dirname(res["files"]["json"])
    xa = np.load(info["files"]["a"])
    xb = np.load(info["files"]["b"])
    assert info["files"]["a"].startswith(os.path.join(folder, "layers_a"))
    assert info["files"]["b"].startswith(os.path.join(folder, "layers_b")) and info["kept_b"]
    assert list(xa.shape) == info["shape"] == first["shape"] and xa.ndim == 4
    diff = _slices(xb.astype(np.float64) - xa.astype(np.float64))
    # first shown: the channel with the largest |B - A|
    worst = int(np.argmax(np.abs(diff).reshape(len(diff), -1).max(axis=1)))
    assert d.current_slice == worst
    assert np.allclose(d.image("diff"), diff[worst], atol=1e-6)
    assert np.array_equal(d.image("a"), _slices(xa)[worst]) and np.array_equal(d.image("b"), _slices(xb)[worst])
    assert info["stats"]["max_abs"] == np.abs(diff).max()
    assert sum(info["hist"]["counts"]) == xa.size
    assert abs(float(np.abs(diff).max()) - first["max_abs"]) < 1e-6
    # another channel: the images change to that slice (no new job: the slices came together)
    other = (worst + 1) % len(diff)
    jobs_before = len(window.jobs.jobs)
    d.slice_spin.setValue(other)
    assert d.current_slice == other and len(window.jobs.jobs) == jobs_before
    assert np.allclose(d.image("diff"), diff[other], atol=1e-6)
    assert not np.allclose(d.image("diff"), diff[worst])
    assert f"channel {other} of {xa.shape[1]}" in d.slice_label.text()
    # the element under the mouse, in words
    pos = d._plots["diff"].getViewBox().mapViewToScene(QPointF(2.5, 1.5))
    d._mouse_moved(pos)
    assert d.hover.text().startswith("row 1, column 2:") and f"{float(diff[other][1, 2]):.4g}" in d.hover.text()

    # a passed pair: B's tensor was not kept; A's is shown alone
    ok = next(r for r in res["layers"] if r["status"] == "ok" and len(r["shape"]) == 4)
    lv.select_layer(ok["index"])
    info = _loaded(qtbot, d, ok["index"])
    assert not info["kept_b"] and d.image("b") is None and d.image("diff") is None
    assert np.array_equal(d.image("a"), _slices(np.load(info["files"]["a"]))[d.current_slice])
    assert NOT_KEPT in d.note.text()

    # copy the pair's names in both models
    lv.select_layer(first["index"])
    lv.copy_action.trigger()
    text = QGuiApplication.clipboard().text()
    assert f"A: node {planted['node']}, tensor {first['a']}" in text
    assert f"B: node {first['node_b']}, tensor {first['b']}" in text
    # export the report (HTML + JSON) and save the inputs used
    assert lv.export_action.isEnabled() and lv.inputs_action.isEnabled()
    out = d.export_report(str(tmp_path / "my-report.html"))
    assert out == [str(tmp_path / "my-report.html"), str(tmp_path / "my-report.json")]
    assert "<html" in (tmp_path / "my-report.html").read_text()[:2000].lower()
    assert json.loads((tmp_path / "my-report.json").read_text())["layer_first"]["a"] == planted["value"]
    saved = d.save_inputs(str(tmp_path / "used"))
    assert saved == str(tmp_path / "used.npz")
    with np.load(saved) as z, np.load(res["files"]["inputs"]) as ref:
        assert z.files == ref.files and all(np.array_equal(z[k], ref[k]) for k in z.files)


def test_reduce_from_the_layers_page_writes_and_opens_the_repro(window, qtbot, fault_pair, tmp_path):
    a, b, planted = fault_pair
    tab_b = _open(window, qtbot, b)
    res = _per_layer(window, qtbot, a, b, tmp_path)
    lv = window.parity.layers
    d = lv.tensors
    assert lv.reduce_action.isEnabled()
    # from the planted node's context menu in B's graph (the Layers page's bar has the same action)
    n = tab_b.doc.pack.names.index(planted["node"])
    menu = window.layer_menu(tab_b, n)
    acts = {a.text().replace("&", ""): a for a in menu.actions()}
    assert acts[f"Layer '{planted['value']}'"].isEnabled() is False
    assert window.layer_menu(tab_b, -1) is None
    acts["Copy names in both models"].trigger()
    assert planted["node"] in QGuiApplication.clipboard().text()
    acts["Reduce to a minimal repro"].trigger()
    job = d.reduce_job
    assert job is not None and job.task == "reduce" and job.params["b"] == res["b"]["path"]
    assert d.repro_cancel.isVisible() and d.repro_bar.isVisible()
    qtbot.waitUntil(lambda: not job.running, timeout=JOB_TIMEOUT)
    assert job.state == "done", job.error
    r = d.repro
    assert r["differ"] and planted["node"] in r["nodes"] and r["target"] == planted["value"]
    assert os.path.exists(r["files"]["model"]) and os.path.dirname(r["files"]["model"]) == r["out_dir"]
    assert r["out_dir"].startswith(str(tmp_path))  # beside B
    assert not d.repro_cancel.isVisible()
    assert d.open_repro_button.isVisible() and d.open_folder_button.isVisible()
    assert r["out_dir"] in d.repro_label.text() and f"{r['nodes_after']} of {r['nodes_before']} nodes" in d.repro_label.text()
    # Open repro.onnx: a new tab with the cut, the planted Conv in it
    d.open_repro_button.click()
    tab = window.current_tab()
    assert tab.path == r["files"]["model"]
    qtbot.waitUntil(lambda: tab.state in ("ready", "failed"), timeout=60_000)
    assert tab.state == "ready", tab.error
    assert planted["node"] in tab.doc.pack.names and tab.doc.pack.n_nodes == r["nodes_after"]
