"""Job folders from the window: real jobs in real worker processes, and what is left on disk after each
job, after a comparison's result is replaced, and after Quit; only a folder the user chose (a save dir,
Keep files in the Jobs panel) stays."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from converters.compare.params import compare_params

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "resources" / "samples" / "tiny_cnn.onnx"
JOB_TIMEOUT = 120_000


@pytest.fixture
def jobs_dir(tmp_path, monkeypatch):
    """The jobs root of this test only, so what is left there is this test's."""
    d = tmp_path / "jobs"
    d.mkdir()
    monkeypatch.setenv("TENSORBRIDGE_JOBS", str(d))
    return d


@pytest.fixture
def pair(tmp_path):
    """(a.onnx, b.onnx): B is the sample CNN with one weight × 1.05, so every comparison fails somewhere."""
    import onnx
    from onnx import numpy_helper

    a, b = tmp_path / "a.onnx", tmp_path / "b.onnx"
    shutil.copy(SAMPLE, a)
    m = onnx.load(str(a))
    w = max(m.graph.initializer, key=lambda t: int(np.prod(t.dims)))
    w.CopyFrom(numpy_helper.from_array((numpy_helper.to_array(w) * 1.05).astype(np.float32), w.name))
    onnx.save(m, str(b))
    return str(a), str(b)


def _left(jobs_dir: Path) -> list[str]:
    return sorted(p.name for p in jobs_dir.iterdir())


def _compare(window, qtbot, a, b, **kw):
    job = window.parity.start(compare_params(a, b, per_layer=True, **kw))
    qtbot.waitUntil(lambda: not job.running, timeout=JOB_TIMEOUT)
    assert job.state == "done", job.error
    qtbot.waitUntil(lambda: window.parity.result is not None, timeout=5_000)
    return job


def _read_layer_tensors(window, qtbot) -> None:
    """Show the first failing pair's tensors: the layer_tensors job reads the comparison's folder."""
    res = window.parity.result
    first = res.get("layer_first") or res["layers"][-1]
    t = window.parity.layers.tensors
    job = t.show_layer(int(first["index"]))
    assert job is not None, t.note.text()
    qtbot.waitUntil(lambda: not job.running, timeout=JOB_TIMEOUT)
    assert job.state == "done", job.error
    assert "gone" not in t.note.text()


def test_comparison_folder_lives_while_shown_and_a_new_result_removes_it(window, qtbot, jobs_dir, pair):
    first = _compare(window, qtbot, *pair)
    folder1 = first.params["save_dir"]
    assert os.path.isdir(folder1) and os.listdir(folder1)
    _read_layer_tensors(window, qtbot)     # the per-layer tensors are there while the dock shows them
    assert os.path.isdir(folder1)
    second = _compare(window, qtbot, *pair)  # the dock's result is replaced: the old folder goes
    folder2 = second.params["save_dir"]
    assert not os.path.exists(folder1)
    assert os.path.isdir(folder2)
    _read_layer_tensors(window, qtbot)
    window.jobs.close()
    window.close()
    assert _left(jobs_dir) == []


def test_a_folder_a_running_job_reads_outlives_its_replacement_until_that_job_ends(window, qtbot, jobs_dir, pair):
    from converters.jobs.protocol import LayerTensorsParams

    first = _compare(window, qtbot, *pair)
    folder1 = first.params["save_dir"]
    index = int(window.parity.result["layers"][0]["index"])
    reader = window.jobs.run("layer_tensors", LayerTensorsParams(folder1, index).to_dict(), title="tensors")
    second = window.parity.start(compare_params(*pair, per_layer=True))  # replaces the dock's result
    assert reader.running and os.path.isdir(folder1)  # still read: not removed under the reader
    qtbot.waitUntil(lambda: not reader.running and not second.running, timeout=JOB_TIMEOUT)
    assert reader.state == "done", reader.error
    qtbot.waitUntil(lambda: not os.path.exists(folder1), timeout=10_000)
    assert os.path.isdir(second.params["save_dir"])
    reader.release()
    window.jobs.close()
    window.close()
    assert _left(jobs_dir) == []


def test_cancelled_comparison_leaves_no_folder(window, qtbot, jobs_dir, pair):
    from PySide6.QtCore import Qt

    job = window.parity.start(compare_params(*pair, per_layer=True))
    assert os.path.isdir(job.params["save_dir"])
    qtbot.waitUntil(lambda: job.job is not None and job.job.proc is not None, timeout=10_000)
    qtbot.mouseClick(window.parity.cancel_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not job.running, timeout=JOB_TIMEOUT)
    assert job.state == "cancelled"
    qtbot.waitUntil(lambda: _left(jobs_dir) == [], timeout=10_000)


def test_every_job_folder_goes_after_its_job_and_at_close(window, qtbot, jobs_dir, pair, tmp_path):
    src = tmp_path / "m.onnx"
    shutil.copy(SAMPLE, src)
    conv = window.run_conversion({"src": str(src), "to": "torch", "options": {}})
    qtbot.waitUntil(lambda: not conv.running, timeout=240_000)
    assert conv.state == "done", conv.error
    assert not conv.job.job_dir.exists()   # the result is beside the source; the job's folder is gone
    qtbot.waitUntil(lambda: window.current_tab() is not None and window.current_tab().state in ("ready", "failed"),
                    timeout=120_000)
    opened = window.current_tab().job
    assert opened.job.job_dir.exists()     # the open tab reads the view pack in there
    window.jobs.close()
    window.close()
    assert _left(jobs_dir) == []


def test_keep_files_from_the_jobs_panel_outlives_the_window(window, qtbot, jobs_dir, pair):
    job = _compare(window, qtbot, *pair)
    folder = job.params["save_dir"]
    menu = window.jobs_panel.menu_for(job)
    keep = next(a for a in menu.actions() if a.text() == "Keep files")
    assert keep.isEnabled()
    keep.trigger()
    assert window.jobs_panel.status_text(job).endswith(f"files kept in {folder}")
    assert window.jobs_panel.menu_for(job).actions()[0].text() == "Files kept"
    _compare(window, qtbot, *pair)         # replaced in the dock, yet kept
    window.jobs.close()
    window.close()
    assert _left(jobs_dir) == [os.path.basename(folder)]
    assert os.path.exists(os.path.join(folder, "result.json"))


def test_a_save_dir_the_user_chose_is_never_removed(window, qtbot, jobs_dir, pair, tmp_path):
    mine = tmp_path / "my-results"
    job = _compare(window, qtbot, *pair, out_dir=str(mine))
    _compare(window, qtbot, *pair)
    window.jobs.close()
    window.close()
    assert _left(jobs_dir) == []
    assert (mine / "result.json").exists() and job.params["save_dir"] == str(mine)


QUIT_SCRIPT = r"""
import sys
from PySide6.QtWidgets import QApplication
from PySide6.QtCore import QSettings, QTimer
app = QApplication([])
from app.main_window import MainWindow
from converters.compare.params import compare_params
win = MainWindow(QSettings(sys.argv[3], QSettings.Format.IniFormat))
win.show()
job = win.parity.start(compare_params(sys.argv[1], sys.argv[2], per_layer=True))
def done():
    import os
    print("FOLDER", job.params["save_dir"], os.path.isdir(job.params["save_dir"]), flush=True)
    QTimer.singleShot(0, app.quit)   # File > Quit: the application quits, whatever the window does
job.ended.connect(done)
QTimer.singleShot(120_000, app.quit)
app.exec()
print("STATE", job.state, flush=True)
"""


def test_quit_removes_the_comparison_folder(jobs_dir, pair, tmp_path):
    env = dict(os.environ, PYTHONPATH=str(ROOT), QT_QPA_PLATFORM="offscreen", TENSORBRIDGE_JOBS=str(jobs_dir))
    proc = subprocess.run([sys.executable, "-c", QUIT_SCRIPT, *pair, str(tmp_path / "s.ini")], cwd=str(ROOT),
                          env=env, capture_output=True, text=True, timeout=240)
    assert "STATE done" in proc.stdout, proc.stdout + proc.stderr[-3000:]
    folder_line = next(line for line in proc.stdout.splitlines() if line.startswith("FOLDER"))
    assert folder_line.endswith("True")    # it was there while the window showed it
    assert _left(jobs_dir) == []


def test_a_tabs_folder_goes_when_the_tab_closes_and_a_reload_replaces_it(window, qtbot, jobs_dir, tmp_path):
    src = tmp_path / "m.onnx"
    shutil.copy(SAMPLE, src)
    tab = window.open_path(str(src))
    qtbot.waitUntil(lambda: tab.state in ("ready", "failed"), timeout=120_000)
    assert tab.state == "ready", tab.error
    first = tab.job.job.job_dir
    assert first.exists()                  # the shown view pack is read from there
    tab.retry()                            # the same file opened again (Reload, Trust…)
    qtbot.waitUntil(lambda: tab.job.job.job_dir != first and tab.state == "ready", timeout=120_000)
    second = tab.job.job.job_dir
    assert not first.exists() and second.exists()
    assert tab.doc.pack.n_nodes > 0        # the new pack is shown and readable
    window.close_tab(window.tabs.indexOf(tab))
    assert not second.exists()
    assert _left(jobs_dir) == []
