"""The window as a daily tool: the default layout leaves the graph most of the window."""
from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QSettings

from app.main_window import MainWindow

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "resources" / "samples" / "tiny_cnn.onnx"
LOAD_TIMEOUT = 60_000


def test_default_layout_gives_the_graph_most_of_a_1280x800_window(qtbot, tmp_path):
    # a fresh settings scope: no saved dock layout overrides the default one
    win = MainWindow(QSettings(str(tmp_path / "fresh.ini"), QSettings.Format.IniFormat))
    qtbot.addWidget(win)
    win.resize(1280, 800)
    win.show()
    try:
        tab = win.open_path(str(SAMPLE))
        qtbot.waitUntil(lambda: tab.state in ("ready", "failed"), timeout=LOAD_TIMEOUT)
        assert tab.state == "ready", tab.error
        qtbot.waitUntil(lambda: tab.canvas is not None and tab.canvas.isVisible(), timeout=LOAD_TIMEOUT)
        qtbot.wait(50)
        assert (win.width(), win.height()) == (1280, 800)
        # the bottom docks are not shown over the graph at startup
        assert not win.jobs_dock.isVisible() and not win.parity_dock.isVisible()
        assert not win.struct_diff_dock.isVisible()
        assert win.inspector_dock.isVisible() and win.convert_strip.isVisible()
        canvas = tab.canvas
        fraction = canvas.width() * canvas.height() / (win.width() * win.height())
        assert fraction >= 0.65, f"graph canvas gets {fraction:.1%} of the window"
    finally:
        win.jobs.close()
        win.close()


def _recent_shown(win) -> list[str]:
    """What File ▸ Open Recent and the welcome page's list show (not the settings behind them)."""
    menu = [a.text() for a in win.recent_menu.actions() if a.text() and a.text() != "Clear list"]
    listed = [win.recent_list.item(i).text() for i in range(win.recent_list.count())]
    assert menu == listed
    return menu


def test_only_files_that_opened_go_into_recent(window, qtbot, tmp_path):
    bad = tmp_path / "x.onnx"
    bad.write_bytes(b"\x00junk\xff\x13")
    tab = window.open_path(str(bad))
    qtbot.waitUntil(lambda: tab.state in ("ready", "failed"), timeout=LOAD_TIMEOUT)
    assert tab.state == "failed"
    assert str(bad) not in _recent_shown(window) and str(bad) not in window.recent_files()
    good = window.open_path(str(SAMPLE))
    qtbot.waitUntil(lambda: good.state in ("ready", "failed"), timeout=LOAD_TIMEOUT)
    assert good.state == "ready", good.error
    assert _recent_shown(window) == [str(SAMPLE)]
