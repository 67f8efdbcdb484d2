"""The real main window, offscreen: opening, dropping, errors, cancel, inspector, screenshot, no-torch rule."""
from __future__ import annotations

import math
import os
import subprocess
import sys
from pathlib import Path


# QtWebEngine must be loaded before any QApplication exists (the Netron test needs it).
try:
    import PySide6.QtWebEngineWidgets  # noqa: F401
except ImportError:  # pragma: no cover - PySide6-Addons missing
    pass

from PySide6.QtCore import QMimeData, QPointF, QSettings, Qt, QUrl
from PySide6.QtGui import QDragEnterEvent, QDropEvent, QImage
from PySide6.QtWidgets import QApplication

from app.main_window import MainWindow
from tests.app.dnd import drop_file
from app.panels.model_tab import ModelTab

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "resources" / "samples" / "tiny_cnn.onnx"
LOAD_TIMEOUT = 60_000




def _onnx_facts(path: Path) -> dict:
    """What the onnx package itself says about the file (independent of Tensorbridge's reader)."""
    import onnx

    m = onnx.load(str(path))
    inits = {t.name: t for t in m.graph.initializer}
    shapes = {}
    for v in list(m.graph.input) + list(m.graph.output) + list(m.graph.value_info):
        shapes[v.name] = [d.dim_value for d in v.type.tensor_type.shape.dim]
    return {"nodes": list(m.graph.node), "inits": inits, "shapes": shapes,
            "inputs": [v.name for v in m.graph.input if v.name not in inits],
            "outputs": [v.name for v in m.graph.output],
            # float initializers are weights; integer ones (Reshape's shape) are constants, not parameters
            "params": sum(math.prod(t.dims) for t in m.graph.initializer if t.data_type in (1, 10, 11, 16)),
            "buffers": sum(math.prod(t.dims) for t in m.graph.initializer if t.data_type not in (1, 10, 11, 16))}


def _wait_ready(qtbot, tab: ModelTab) -> None:
    qtbot.waitUntil(lambda: tab.state in ("ready", "failed"), timeout=LOAD_TIMEOUT)
    assert tab.state == "ready", tab.error


def test_open_file_shows_summary_and_remembers_recent(window, qtbot):
    facts = _onnx_facts(SAMPLE)
    tab = window.open_path(str(SAMPLE))
    assert window.tabs.count() == 1 and window.tabs.tabText(0) == "tiny_cnn.onnx"
    assert tab.job is not None and tab.job.task in ("open", "load")
    _wait_ready(qtbot, tab)
    assert tab.doc.format == "onnx"
    assert tab.doc.node_count == len(facts["nodes"])
    text = window.inspector.text()
    assert "format: onnx" in text
    assert f"nodes: {len(facts['nodes'])}" in text
    assert f"parameters: {facts['params']:,}" in text
    assert f"buffers: {facts['buffers']:,}" in text
    for name in facts["inputs"] + facts["outputs"]:
        assert name in text
    assert window.recent_files()[0] == str(SAMPLE)
    # the same file again focuses its tab instead of opening a second copy
    assert window.open_path(str(SAMPLE)) is tab and window.tabs.count() == 1
    # the job shows as done in the jobs panel
    assert window.jobs_panel.status_text(tab.job).startswith("done")


def test_drop_file_on_window_opens_it(window, qtbot):
    drop = drop_file(window, str(SAMPLE))
    assert drop.isAccepted()
    assert window.tabs.count() == 1
    tab = window.current_tab()
    assert tab.path == str(SAMPLE)
    _wait_ready(qtbot, tab)
    # a folder that is not a SavedModel, dropped on the graph itself (the widget under the cursor):
    # one-line error in its own tab, nothing else disturbed
    folder = ROOT / "tests" / "app"
    mime_dir = QMimeData()
    mime_dir.setUrls([QUrl.fromLocalFile(str(folder))])
    page = tab.stack.currentWidget()
    under = page.childAt(page.rect().center()) or page
    local = under.mapFrom(page, page.rect().center())
    QApplication.sendEvent(under, QDragEnterEvent(local, Qt.DropAction.CopyAction, mime_dir,
                                                  Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier))
    QApplication.sendEvent(under, QDropEvent(QPointF(local), Qt.DropAction.CopyAction, mime_dir,
                                             Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier))
    assert window.tabs.count() == 2
    bad = window.current_tab()
    assert bad.path == str(folder)
    qtbot.waitUntil(lambda: bad.state == "failed", timeout=LOAD_TIMEOUT)
    assert "saved_model.pb" in bad.error[0] and bad.error[1] == "UnsupportedFormat"
    assert tab.state == "ready"
    # a drag without files is refused
    empty = QMimeData()
    empty.setText("not a file")
    pos = QPointF(window.width() / 2, window.height() / 2)
    enter2 = QDragEnterEvent(pos.toPoint(), Qt.DropAction.CopyAction, empty, Qt.MouseButton.LeftButton,
                             Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(window, enter2)
    assert not enter2.isAccepted()


def test_corrupt_file_shows_one_line_error_and_window_stays_usable(window, qtbot, tmp_path):
    bad = tmp_path / "broken.onnx"
    bad.write_bytes(b"\x08\x07" + os.urandom(300))
    tab = window.open_path(str(bad))
    qtbot.waitUntil(lambda: tab.state in ("ready", "failed"), timeout=LOAD_TIMEOUT)
    assert tab.state == "failed"
    message, kind = tab.error
    assert kind in ("CorruptFile", "UnsupportedFormat")
    assert not tab.banner.isHidden()
    shown = tab.banner.text.text()
    assert "broken.onnx" in shown and "\n" not in shown and "Traceback" not in shown
    assert tab.banner.button("Retry") is not None
    # still usable: another file opens in a second tab
    good = window.open_path(str(SAMPLE))
    _wait_ready(qtbot, good)
    assert window.tabs.count() == 2
    # only the file that opened is remembered
    assert window.recent_files() == [str(SAMPLE)]


def test_cancel_running_job_shows_cancelled(window, qtbot):
    job = window.jobs.run("tests.jobs_tasks:sleep_task", {"steps": 400, "delay": 0.1}, title="slow task")
    qtbot.waitUntil(lambda: job.fraction is not None, timeout=LOAD_TIMEOUT)
    assert job.running
    row = window.jobs_panel.by_job[job.id]
    assert row.cancel.isEnabled()
    qtbot.mouseClick(row.cancel, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: job.state == "cancelled", timeout=20_000)
    assert window.jobs_panel.status_text(job) == "cancelled"
    assert not row.cancel.isEnabled()
    assert job.job.proc.poll() is not None  # the worker process is gone
    # the job's log holds what the task printed (its stdout), shown by the Log button
    qtbot.mouseClick(row.log, Qt.MouseButton.LeftButton)
    dlg = window.jobs_panel.log_dialogs[-1]
    assert "printed by the task 0" in dlg.text.toPlainText()
    assert "state: cancelled" in dlg.text.toPlainText()
    dlg.close()


def test_cancel_loading_tab(window, qtbot):
    tab = ModelTab(str(SAMPLE), window.jobs, parent=window.tabs)
    window.tabs.addTab(tab, "slow")
    tab.run_task("tests.jobs_tasks:sleep_task", {"steps": 400, "delay": 0.1}, title="slow open")
    qtbot.waitUntil(lambda: tab.job.fraction is not None, timeout=LOAD_TIMEOUT)
    assert not tab.progress_row.isHidden()
    qtbot.mouseClick(tab.cancel_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: tab.state == "failed", timeout=20_000)
    assert tab.error[1] == "JobCancelled"
    assert tab.progress_row.isHidden()
    assert "cancelled" in tab.banner.text.text()
    assert tab.banner.button("Open again") is not None


def test_worker_crash_is_an_error_message_not_a_crash(window, qtbot):
    tab = ModelTab(str(SAMPLE), window.jobs, parent=window.tabs)
    window.tabs.addTab(tab, "crash")
    tab.run_task("tests.jobs_tasks:segfault_task", {}, title="crash")
    qtbot.waitUntil(lambda: tab.state == "failed", timeout=LOAD_TIMEOUT)
    assert tab.error[1] == "WorkerCrashed"
    assert "SIGSEGV" in tab.banner.text.text()
    assert tab.banner.button("Show log") is not None
    good = window.open_path(str(SAMPLE))
    _wait_ready(qtbot, good)


def test_select_node_shows_it_in_inspector(window, qtbot):
    facts = _onnx_facts(SAMPLE)
    tab = window.open_path(str(SAMPLE))
    _wait_ready(qtbot, tab)
    # the first node that has a weight input (a Conv)
    idx, node = next((i, n) for i, n in enumerate(facts["nodes"]) if any(x in facts["inits"] for x in n.input))
    with qtbot.waitSignal(tab.nodeSelected, timeout=5000) as sig:
        tab.canvas.select(idx)
    assert sig.args == [idx]
    text = window.inspector.text()
    assert f"name: {node.name}" in text
    assert f"op type: {node.op_type}" in text
    weight = next(x for x in node.input if x in facts["inits"])
    dims = "×".join(str(d) for d in facts["inits"][weight].dims)
    assert weight in text and dims in text
    data_in = next(x for x in node.input if x not in facts["inits"])
    assert data_in in text
    for a in node.attribute:
        assert f"{a.name}:" in text
    # scope row is always present (module path from the exporter's metadata, or root)
    assert "scope:" in text
    # weight statistics are fetched on demand by a worker ("tensor" task) and drawn as a histogram
    import numpy as np
    from onnx import numpy_helper

    arr = numpy_helper.to_array(facts["inits"][weight]).astype(np.float64)
    weights_section = next(window.inspector.tree.topLevelItem(i) for i in range(window.inspector.tree.topLevelItemCount())
                           if window.inspector.tree.topLevelItem(i).text(0) == "Weights")
    window.inspector.tree.setCurrentItem(weights_section.child(0))
    assert window.inspector.stats_button.isEnabled()
    qtbot.mouseClick(window.inspector.stats_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: "max" in window.inspector.stats_label.text(), timeout=LOAD_TIMEOUT)
    stats = window.inspector.stats_label.text()
    assert f"min {arr.min():.6g}" in stats and f"max {arr.max():.6g}" in stats
    assert window.inspector.plot is not None
    assert any(j.task == "tensor" and j.state == "done" for j in window.jobs.jobs)
    # find by op type selects a match
    hits = window.find(node.op_type)
    assert idx in hits
    # selecting nothing goes back to the summary
    tab.nodeSelected.emit(-1)
    assert "format: onnx" in window.inspector.text()


def test_shortcuts_are_bound(window):
    keys = {a.text().replace("&", ""): [s.toString() for s in a.shortcuts()] for a in window.actions()}
    assert "Ctrl+O" in keys["Open…"]
    assert "Ctrl+W" in keys["Close tab"]
    assert "Ctrl+F" in keys["Find…"]
    assert "Ctrl+=" in keys["Zoom in"] and "Ctrl+-" in keys["Zoom out"]
    assert "Ctrl+0" in keys["Fit to window"]
    assert "Ctrl+Q" in keys["Quit"]


def test_close_tab_and_settings_persist(window, qtbot, tmp_path):
    tab = window.open_path(str(SAMPLE))
    _wait_ready(qtbot, tab)
    window.close_current()
    assert window.tabs.count() == 0
    assert window.pages.currentWidget() is window.welcome
    window.resize(900, 555)
    window.jobs_dock.hide()
    window.save_settings()
    s2 = QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)
    win2 = MainWindow(s2)
    qtbot.addWidget(win2)
    # (the offscreen screen is 800 px wide, so only the height survives unclamped)
    assert win2.size().height() == 555
    assert win2.jobs_dock.isHidden() and not win2.inspector_dock.isHidden()
    assert win2.recent_files() == [str(SAMPLE)]
    assert win2.recent_list.count() == 1
    win2.jobs.close()


def test_tab_drag_data_is_the_file(window, qtbot):
    tab = window.open_path(str(SAMPLE))
    _wait_ready(qtbot, tab)
    mime = window.tab_mime_data(0)
    assert [u.toLocalFile() for u in mime.urls()] == [str(SAMPLE)]
    # the file handle above the graph drags the same file and says what it is
    facts = _onnx_facts(SAMPLE)
    assert tab.handle.path == str(SAMPLE) and not tab.handle_row.isHidden()
    assert f"{len(facts['nodes'])} nodes" in tab.handle.text() and "onnx" in tab.handle.text()


def test_screenshot_subprocess_keeps_frameworks_out(tmp_path):
    out = tmp_path / "shot.png"
    mods = tmp_path / "modules.txt"
    env = dict(os.environ, TENSORBRIDGE_DEBUG_MODULES=str(mods), QT_QPA_PLATFORM="offscreen",
               PYTHONPATH=str(ROOT))
    env.pop("DISPLAY", None)
    proc = subprocess.run([sys.executable, "-m", "app", "--screenshot", str(out), "--size", "1200x800",
                           str(SAMPLE)], cwd=str(ROOT), env=env, capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stderr[-2000:]
    img = QImage(str(out))
    assert not img.isNull()
    assert (img.width(), img.height()) == (1200, 800)
    # not a blank picture: many distinct colours
    colours = {img.pixel(x, y) for x in range(0, img.width(), 23) for y in range(0, img.height(), 23)}
    assert len(colours) > 5
    loaded = set(mods.read_text().split())
    assert "PySide6.QtWidgets" in loaded  # the dump is real
    for heavy in ("torch", "tensorflow", "onnx2tf", "tf2onnx", "keras", "onnxruntime"):
        assert heavy not in loaded, f"the window process imported {heavy}"


def test_screenshot_of_bad_file_fails_with_one_line(tmp_path):
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"\x08\x07" + b"\xff" * 100)
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", PYTHONPATH=str(ROOT))
    proc = subprocess.run([sys.executable, "-m", "app", "--screenshot", str(tmp_path / "s.png"), str(bad)],
                          cwd=str(ROOT), env=env, capture_output=True, text=True, timeout=180)
    assert proc.returncode != 0
    errors = [ln for ln in proc.stderr.splitlines() if ln.startswith("tensorbridge: error:")]
    assert len(errors) == 1 and "bad.onnx" in errors[0]
    assert "Traceback" not in proc.stderr


def test_view_in_netron_serves_locally_and_skips_consent(window, qtbot):
    import netron

    tab = window.open_path(str(SAMPLE))
    _wait_ready(qtbot, tab)
    nt = window.view_in_netron()
    assert nt is not None and nt.view is not None
    assert nt.address[0] == "127.0.0.1"
    with qtbot.waitSignal(nt.loaded, timeout=60_000) as sig:
        pass
    assert sig.args == [True]
    state: dict = {}

    def poll() -> bool:
        state.pop("r", None)
        nt.evaluate("JSON.stringify({nodes: document.querySelectorAll('#canvas .node').length,"
                    " body: document.body.className, cookie: document.cookie})",
                    lambda r: state.__setitem__("r", r))
        qtbot.waitUntil(lambda: "r" in state, timeout=5000)
        return '"nodes":0' not in state["r"]

    qtbot.waitUntil(poll, timeout=60_000)
    import json
    page = json.loads(state["r"])
    assert page["nodes"] > 0
    assert "consent=" in page["cookie"]
    assert "notification" not in page["body"]  # no consent prompt waiting for a click
    # Netron's build date is removed before it starts, so its update nag can never block the view
    dated: dict = {}
    nt.evaluate("document.querySelectorAll('meta[name=\"date\"]').length", lambda r: dated.__setitem__("n", r))
    qtbot.waitUntil(lambda: "n" in dated, timeout=5000)
    assert dated["n"] == 0
    # nothing but the local server can be reached from the view
    from app.netron_tab import blocked_requests

    nt.evaluate("fetch('http://192.0.2.7/probe').catch(function () {}); 1", lambda r: None)
    qtbot.waitUntil(lambda: any("192.0.2.7" in u for u in blocked_requests()), timeout=10_000)
    address = nt.address
    assert netron.status(address)
    window.close_tab(window.tabs.indexOf(nt))
    qtbot.waitUntil(lambda: not netron.status(address), timeout=10_000)  # the server thread ends


def test_warm_worker_runs_the_next_open(window, qtbot):
    window.jobs.use_warm_workers(("onnx",))
    spare = window.jobs.pool._spares["onnx"]
    tab = window.open_path(str(SAMPLE))
    assert tab.job.job.proc is spare.proc  # the open job took the pre-started worker
    _wait_ready(qtbot, tab)
    nxt = window.jobs.pool._spares["onnx"].proc
    assert nxt is not spare.proc and nxt.poll() is None  # and the next one is already waiting
    window.jobs.close()
    nxt.wait(10)


def test_theme_switch_changes_palette_and_is_remembered(window, qtbot):
    try:
        window.set_theme("dark")
        pal = window.palette()
        assert pal.window().color().lightness() < 100 and pal.text().color().lightness() > 180
        assert window.settings.value("theme") == "dark"
        assert window.theme_actions["dark"].isChecked()
        window.set_theme("light")
        pal = window.palette()
        assert pal.window().color().lightness() > 180 and pal.text().color().lightness() < 100
    finally:
        window.set_theme("system")


def test_big_model_draws_its_structure_before_the_full_read(window, qtbot, model_file):
    """A large ONNX file is drawn from the early structure-only pack, then upgraded in place."""
    path = model_file("view_models", "synthetic_5000.onnx").path
    assert os.path.getsize(path) > 1_000_000
    tab = window.open_path(path)
    overview_packs: list[str] = []
    qtbot.waitUntil(lambda: tab.job is not None, timeout=LOAD_TIMEOUT)
    tab.job.overview.connect(overview_packs.append)
    _wait_ready(qtbot, tab)
    assert overview_packs, "the open task should have sent a structure-only pack first"
    canvas = tab.canvas
    assert canvas is not None and canvas.pack is not None
    assert canvas.pack.n_nodes == tab.doc.node_count == model_file("view_models", "synthetic_5000.onnx").facts["node_count"]
    # the final pack replaced the overview's in the same canvas, with details now complete
    assert str(canvas.pack.dir) != overview_packs[0]
    assert not tab.doc.pack.details(0).get("partial")


def test_a_bug_in_the_window_is_a_notice_and_a_log_entry(window, tmp_path, monkeypatch):
    import sys as _sys

    from app.launch import _install_excepthook

    monkeypatch.setenv("TENSORBRIDGE_LOG_DIR", str(tmp_path / "logs"))
    saved = _sys.excepthook
    try:
        _install_excepthook(window)
        try:
            raise ValueError("a slot went wrong")
        except ValueError as exc:
            window.excepthook(type(exc), exc, exc.__traceback__)
    finally:
        _sys.excepthook = saved
    log = tmp_path / "logs" / "window.log"
    assert window.notice.isVisible()
    assert window.notice.text.text() == (f"Something went wrong in the window (ValueError: a slot went wrong); "
                                         f"details in {log}")
    text = log.read_text()
    assert "unhandled exception in the window" in text and "Traceback" in text and "a slot went wrong" in text


def test_drops_are_answered_as_copies_never_moves(window, qtbot):
    """A file manager offering copy or move must hear "copy", or it may delete the file after the drop."""
    from PySide6.QtCore import QMimeData, QPointF, QUrl
    from PySide6.QtGui import QDragEnterEvent, QDropEvent
    from PySide6.QtWidgets import QApplication

    both = Qt.DropAction.CopyAction | Qt.DropAction.MoveAction
    for widget in (window.convert_strip.targets["onnx"], window):
        mime = QMimeData()
        mime.setUrls([QUrl.fromLocalFile(str(SAMPLE))])
        pos = QPointF(widget.width() / 2, widget.height() / 2)
        enter = QDragEnterEvent(pos.toPoint(), both, mime, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier)
        enter.setDropAction(Qt.DropAction.MoveAction)  # what the source proposes
        QApplication.sendEvent(widget, enter)
        assert enter.isAccepted() and enter.dropAction() == Qt.DropAction.CopyAction
    drop = QDropEvent(QPointF(window.width() / 2, window.height() / 2), both, mime, Qt.MouseButton.LeftButton,
                      Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(window, drop)
    assert drop.isAccepted() and drop.dropAction() == Qt.DropAction.CopyAction
    assert window.tabs.count() == 1 and window.current_tab().path == str(SAMPLE)
    _wait_ready(qtbot, window.current_tab())


def test_find_steps_through_every_match(window, qtbot):
    """Enter, F3 and Shift+F3 walk the matches (wrapping), and the status bar says which one is shown."""
    import collections

    import onnx

    ops = collections.Counter(n.op_type for n in onnx.load(str(SAMPLE)).graph.node)
    op, count = ops.most_common(1)[0]
    assert count >= 2
    tab = window.open_path(str(SAMPLE))
    _wait_ready(qtbot, tab)
    window.find_edit.setText(op)
    qtbot.keyClick(window.find_edit, Qt.Key.Key_Return)
    hits = window._find_state[2]
    assert len(hits) == count and tab.canvas.selected == hits[0]
    assert window.statusBar().currentMessage().startswith(f"match 1 of {count} for “{op}”")
    qtbot.keyClick(window.find_edit, Qt.Key.Key_Return)  # the same text again: the next match
    assert tab.canvas.selected == hits[1]
    window.act_find_next.trigger()
    assert tab.canvas.selected == hits[2 % count]
    for _ in range(count):  # round the end and back to where it was
        window.act_find_next.trigger()
    assert tab.canvas.selected == hits[2 % count]
    window.act_find_prev.trigger()
    assert tab.canvas.selected == hits[1]
    assert window.statusBar().currentMessage().startswith(f"match 2 of {count}")
    assert "F3" in [s.toString() for s in window.act_find_next.shortcuts()]


def test_a_failed_layout_says_so_on_the_tab_and_keeps_the_graph(window, qtbot):
    from pathlib import Path
    sample = Path(__file__).resolve().parents[2] / "resources" / "samples" / "tiny_cnn.onnx"
    tab = window.open_path(str(sample))
    qtbot.waitUntil(lambda: tab.state == "ready" and tab.canvas.drawn_nodes() > 0, timeout=60_000)
    drawn = tab.canvas.drawn_nodes()
    with qtbot.waitSignal(tab.canvas.layoutFailed, timeout=20_000) as sig:
        tab.canvas._request({"not a group"})  # a broken request: the layout engine raises in its thread
    assert sig.args[0]
    assert tab.banner.isVisible() and tab.banner.text.text().startswith("The graph could not be laid out (")
    assert tab.canvas.drawn_nodes() == drawn
