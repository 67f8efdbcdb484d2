"""Fixtures of the window tests."""
from __future__ import annotations

import pytest

# QtWebEngine must be loaded before any QApplication exists (the Netron tab needs it).
try:
    import PySide6.QtWebEngineWidgets  # noqa: F401
except ImportError:  # pragma: no cover - PySide6-Addons missing
    pass

from PySide6.QtCore import QSettings


@pytest.fixture
def window(qtbot, tmp_path):
    """The real main window, shown offscreen, with settings of its own (nothing leaks between tests)."""
    from app.main_window import MainWindow

    win = MainWindow(QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat))
    qtbot.addWidget(win)
    win.resize(1200, 800)
    win.show()
    yield win
    win.jobs.close()
    win.close()
