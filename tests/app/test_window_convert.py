"""Convert targets: drop a file on a target, see the planned route, run it as a job, open the result."""
from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QDialogButtonBox

from tests.app.dnd import drop_file

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "resources" / "samples" / "tiny_cnn.onnx"




_drop = drop_file


def test_drop_on_target_converts_and_opens_result(window, qtbot, tmp_path):
    src = tmp_path / "tiny_cnn.onnx"
    shutil.copy(SAMPLE, src)
    digest = hashlib.sha256(src.read_bytes()).hexdigest()
    target = window.convert_strip.targets["torch"]
    drop = _drop(target, str(src))
    assert drop.isAccepted()
    dlg = window.convert_dialog
    assert dlg is not None and dlg.isVisible()
    assert dlg.route and "onnx2torch" in " ".join(dlg.route)
    assert "Planned route" in dlg.route_label.text()
    tabs_before = window.tabs.count()
    qtbot.mouseClick(dlg.buttons.button(QDialogButtonBox.StandardButton.Ok), Qt.MouseButton.LeftButton)
    job = window._status_job
    assert job is not None and job.task == "convert" and job.params["to"] == "torch"
    assert window.job_cancel.isVisible()  # progress and Cancel in the status bar
    qtbot.waitUntil(lambda: not job.running, timeout=240_000)
    assert job.state == "done", job.error
    out = job.result["output"]
    assert os.path.exists(out) and out.endswith(".pt2")
    assert window.jobs_panel.status_text(job).startswith("done")
    # the result opened in a new tab, which can be dragged out as a file
    qtbot.waitUntil(lambda: window.tabs.count() == tabs_before + 1, timeout=10_000)
    tab = window.current_tab()
    assert tab.path == os.path.abspath(out)
    qtbot.waitUntil(lambda: tab.state in ("ready", "failed"), timeout=120_000)
    assert tab.state == "ready", tab.error
    assert tab.doc.format == "torch.export" and tab.doc.node_count > 0
    assert "converted from" in window.tabs.tabToolTip(window.tabs.indexOf(tab))
    mime = window.tab_mime_data(window.tabs.indexOf(tab))
    assert [u.toLocalFile() for u in mime.urls()] == [os.path.abspath(out)]
    assert hashlib.sha256(src.read_bytes()).hexdigest() == digest  # the source is untouched


def test_unreachable_target_says_why(window):
    dlg = window.convert_path(str(SAMPLE), "onnx")
    assert dlg is None
    assert not window.notice.isHidden()
    text = window.notice.text.text()
    assert "Cannot convert tiny_cnn.onnx to ONNX" in text and "\n" not in text


def test_cancel_conversion_from_status_bar(window, qtbot, tmp_path):
    src = tmp_path / "m.onnx"
    shutil.copy(SAMPLE, src)
    job = window.run_conversion({"src": str(src), "to": "tf", "options": {}})
    qtbot.waitUntil(lambda: job.job is not None and job.job.proc is not None, timeout=10_000)
    qtbot.mouseClick(window.job_cancel, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not job.running, timeout=30_000)
    assert job.state == "cancelled"
    assert "cancelled" in window.notice.text.text()
    assert window.job_bar.isHidden()
    leftovers = sorted(p.name for p in tmp_path.iterdir() if p.name != "settings.ini")
    assert leftovers == ["m.onnx"], leftovers


def test_conversion_warnings_reach_the_window(window, qtbot, tmp_path):
    """A TFLite result that needs TensorFlow Select ops opens, and the window says what it needs."""
    import subprocess
    import sys

    src = tmp_path / "pool3d.onnx"
    subprocess.run([sys.executable, "-c",
                    "import onnx; from onnx import helper, TensorProto as T\n"
                    "g = helper.make_graph([helper.make_node('MaxPool', ['x'], ['y'], kernel_shape=[2, 2, 2], "
                    "strides=[2, 2, 2])], 'g', [helper.make_tensor_value_info('x', T.FLOAT, [1, 2, 4, 4, 4])], "
                    "[helper.make_tensor_value_info('y', T.FLOAT, [1, 2, 2, 2, 2])])\n"
                    "m = helper.make_model(g, opset_imports=[helper.make_opsetid('', 13)]); m.ir_version = 8\n"
                    f"onnx.save(m, {str(src)!r})"], check=True, timeout=120)
    window.settings.setValue("parity/auto", False)
    _drop(window.convert_strip.targets["tflite"], str(src))
    dlg = window.convert_dialog
    qtbot.mouseClick(dlg.buttons.button(QDialogButtonBox.StandardButton.Ok), Qt.MouseButton.LeftButton)
    job = window._status_job
    qtbot.waitUntil(lambda: not job.running, timeout=240_000)
    assert job.state == "done", job.error
    assert window.notice.isVisible()
    text = window.notice.text.text()
    assert text.startswith("Converted, with a warning:") and "TensorFlow Select ops (MaxPool3D)" in text
