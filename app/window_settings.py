"""The window's settings: geometry and dock layout, recent files, theme (QSettings "Tensorbridge").

A mixin of :class:`app.main_window.MainWindow`: its methods use the window's ``settings``, its
``recent_menu`` and welcome page's ``recent_list``, and ``open_path``.
"""
from __future__ import annotations

from PySide6.QtCore import QByteArray, Qt
from PySide6.QtWidgets import QApplication, QListWidgetItem

__all__ = ["WindowSettings", "MAX_RECENT", "DOCK_LAYOUT_VERSION"]

MAX_RECENT = 10
DOCK_LAYOUT_VERSION = 5  # inspector, jobs, parity, structural diff, find results; 4: bottom docks hidden, strip in
                         # the toolbar; 5: the find results dock


class WindowSettings:
    def _restore(self) -> None:
        geo = self.settings.value("window/geometry")
        if isinstance(geo, (QByteArray, bytes)) and geo:
            self.restoreGeometry(geo)
        else:
            self.resize(1280, 800)
        state = self.settings.value("window/state")
        if isinstance(state, (QByteArray, bytes)) and state:
            # a layout saved before the current set of docks existed is ignored (Qt would place the new
            # docks oddly); bump DOCK_LAYOUT_VERSION whenever docks are added or removed
            self.restoreState(state, DOCK_LAYOUT_VERSION)

    def save_settings(self) -> None:
        self.settings.setValue("window/geometry", self.saveGeometry())
        self.settings.setValue("window/state", self.saveState(DOCK_LAYOUT_VERSION))
        self.settings.sync()

    def recent_files(self) -> list[str]:
        v = self.settings.value("recent", [])
        if isinstance(v, str):
            v = [v]
        return [str(p) for p in (v or [])]

    def _add_recent(self, path: str) -> None:
        items = [p for p in self.recent_files() if p != path]
        items.insert(0, path)
        self.settings.setValue("recent", items[:MAX_RECENT])
        self._rebuild_recent()

    def _rebuild_recent(self) -> None:
        self.recent_menu.clear()
        files = self.recent_files()
        self.recent_list.clear()
        for p in files:
            a = self.recent_menu.addAction(p)
            a.triggered.connect(lambda _c=False, path=p: self.open_path(path))
            it = QListWidgetItem(p, self.recent_list)
            it.setData(Qt.ItemDataRole.UserRole, p)
        self.recent_menu.setEnabled(bool(files))
        if files:
            self.recent_menu.addSeparator()
            self.recent_menu.addAction("Clear list", self._clear_recent)
        self.recent_list.setVisible(bool(files))
        self.recent_title.setVisible(bool(files))

    def _clear_recent(self) -> None:
        self.settings.setValue("recent", [])
        self._rebuild_recent()

    def set_theme(self, key: str) -> None:
        from .launch import apply_theme

        self.settings.setValue("theme", key)
        if key in self.theme_actions:
            self.theme_actions[key].setChecked(True)
        apply_theme(QApplication.instance(), key)
