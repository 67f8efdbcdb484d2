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
    assert "_from_" not in dlg.route_label.text()  # what each step does, not the module that does it
    assert dlg.output.text() == str(tmp_path / "tiny_cnn.pt2")  # the output is named before it runs
    tabs_before = window.tabs.count()
    qtbot.mouseClick(dlg.buttons.button(QDialogButtonBox.StandardButton.Ok), Qt.MouseButton.LeftButton)
    job = window._status_job
    assert job is not None and job.task == "convert" and job.params["to"] == "torch"
    assert job.params["out"] == str(tmp_path / "tiny_cnn.pt2")
    assert window.job_cancel.isVisible()  # progress and Cancel in the status bar
    assert dlg.isVisible() and dlg.progress_box.isVisible()  # and in the dialog, which closes at the end
    qtbot.waitUntil(lambda: not job.running, timeout=240_000)
    qtbot.waitUntil(lambda: window.convert_dialog is None, timeout=5_000)  # the dialog closed itself
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


def _shown(dlg, key: str) -> bool:
    return not dlg.option_widgets[key].isHidden()


def test_dialog_offers_only_the_options_of_its_route(window, tmp_path, model_file):
    src = tmp_path / "tiny_cnn.onnx"
    shutil.copy(SAMPLE, src)
    to_torch = window.convert_path(str(src), "torch")
    assert [k for k in to_torch.option_widgets if _shown(to_torch, k)] == ["dynamic_batch", "input_shapes"]
    assert to_torch.options() == {}
    to_torch.close()
    to_tflite = window.convert_path(str(src), "tflite")
    shown = [k for k in to_tflite.option_widgets if _shown(to_tflite, k)]
    assert shown == ["fp16", "keep_nchw", "input_shapes"], shown
    assert "opset" not in shown  # nothing on this route writes ONNX
    # float16 weights change the file's name, until the user names it
    assert to_tflite.output.text() == str(tmp_path / "tiny_cnn.tflite")
    to_tflite.fp16.setChecked(True)
    assert to_tflite.output.text() == str(tmp_path / "tiny_cnn_fp16.tflite")
    to_tflite.output.setText(str(tmp_path / "mine.tflite"))
    to_tflite.fp16.setChecked(False)
    assert to_tflite.output.text() == str(tmp_path / "mine.tflite")
    to_tflite.close()
    # two steps from PyTorch: the ONNX export's opset applies, and keeping the intermediate ONNX
    pt2 = tmp_path / "cnn.pt2"
    shutil.copy(model_file("compare_models", "cnn.pt2").path, pt2)
    two = window.convert_path(str(pt2), "tflite")
    assert len(two.route) == 2
    shown = [k for k in two.option_widgets if _shown(two, k)]
    assert {"opset", "fp16", "keep_intermediates"} <= set(shown) and "keep_nchw" in shown
    assert "PyTorch (.pt2) → ONNX" in two.route_label.text() and "ONNX → TFLite" in two.route_label.text()
    two.close()


def test_output_named_in_the_dialog_is_where_the_result_goes(window, qtbot, tmp_path):
    src = tmp_path / "tiny_cnn.onnx"
    shutil.copy(SAMPLE, src)
    window.settings.setValue("parity/auto", False)
    dlg = window.convert_path(str(src), "torch")
    # a name that exists is refused before anything runs
    (tmp_path / "taken.pt2").write_bytes(b"x")
    dlg.output.setText(str(tmp_path / "taken.pt2"))
    assert not dlg.convert_button.isEnabled() and "already exists" in dlg.output_note.text()
    dlg.output.setText(str(tmp_path / "chosen.pt2"))
    assert dlg.convert_button.isEnabled() and dlg.output_note.isHidden()
    qtbot.mouseClick(dlg.convert_button, Qt.MouseButton.LeftButton)
    job = window._status_job
    qtbot.waitUntil(lambda: not job.running, timeout=240_000)
    assert job.state == "done", job.error
    assert job.result["output"] == str(tmp_path / "chosen.pt2") and (tmp_path / "chosen.pt2").exists()
    assert not (tmp_path / "tiny_cnn.pt2").exists()


def test_dialog_progress_moves_during_a_silent_step_and_cancel_stops_it(window, qtbot, tmp_path):
    """ONNX -> TensorFlow is one long onnx2tf step that reports nothing while it works: the bar is busy,
    the seconds go up, the step is named; Cancel in the dialog ends it and nothing is left."""
    src = tmp_path / "m.onnx"
    shutil.copy(SAMPLE, src)
    dlg = window.convert_path(str(src), "tf")
    qtbot.mouseClick(dlg.convert_button, Qt.MouseButton.LeftButton)
    job = dlg.job
    assert job is window._status_job and job.running
    assert dlg.bar.maximum() == 0 and window.job_bar.maximum() == 0  # busy, never "0 %"
    assert "Step 1 of 1" in dlg.status.text()
    qtbot.waitUntil(lambda: job.message != "", timeout=60_000)  # the step's start, the last it says
    assert "savedmodel_from_onnx" not in dlg.status.text() and "onnx2tf" in dlg.status.text()
    first = dlg.elapsed_label.text()
    fraction = job.fraction
    qtbot.waitUntil(lambda: dlg.elapsed_label.text() not in (first, "0 s"), timeout=5_000)
    assert job.running and job.fraction == fraction  # the seconds moved while the job said nothing
    assert dlg.elapsed_label.text().endswith(" s")
    assert " s" in window.job_label.text()
    qtbot.mouseClick(dlg.cancel_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not job.running, timeout=30_000)
    assert job.state == "cancelled"
    qtbot.waitUntil(lambda: window.convert_dialog is None, timeout=5_000)  # closed and gone
    leftovers = sorted(p.name for p in tmp_path.iterdir() if p.name != "settings.ini")
    assert leftovers == ["m.onnx"], leftovers
