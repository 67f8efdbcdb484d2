"""The window's tabs: a tab bar whose tabs can be dragged out as files, that scrolls rather than shrinking
titles to "…", and titles that tell apart two files of the same name by their parent folders; the tab
context menu (close, close others, copy path, open the containing folder).

:class:`TabsFeature` is a mixin of :class:`app.main_window.MainWindow` (its ``tabs`` and ``close_tab``).
"""
from __future__ import annotations

import os

from PySide6.QtCore import QPoint, QSize, Qt, QTimer, QUrl
from PySide6.QtGui import QDesktopServices, QDrag
from PySide6.QtWidgets import QApplication, QMenu, QTabBar

__all__ = ["DragTabBar", "TabsFeature", "distinct_titles"]

MIN_TAB_CHARS = 20   # a tab is never narrower than this many characters of its title: the bar scrolls instead
BASE = Qt.ItemDataRole.UserRole  # unused by QTabBar itself; tabData holds each tab's title before disambiguation


def distinct_titles(paths: list[str]) -> list[str]:
    """For each path, the shortest run of parent folders (``a/x``) that tells it apart from every other path of
    the same file name in ``paths``; "" where its name is unique (or every such path is the same file)."""
    norm = [os.path.normpath(p) if p else "" for p in paths]
    out = [""] * len(paths)
    by_name: dict[str, list[int]] = {}
    for i, p in enumerate(norm):
        if p:
            by_name.setdefault(os.path.basename(p), []).append(i)
    for idx in by_name.values():
        distinct = sorted({norm[i] for i in idx})
        if len(distinct) < 2:
            continue
        parts = {p: os.path.dirname(p).strip(os.sep).split(os.sep) for p in distinct}
        depth = max(len(v) for v in parts.values())
        for k in range(1, depth + 1):
            tails = {p: "/".join(v[-k:]) for p, v in parts.items()}
            if len(set(tails.values())) == len(tails):
                break
        for i in idx:
            out[i] = tails[norm[i]] or "/"
    return out


class DragTabBar(QTabBar):
    """Tab bar whose tabs can be dragged out as files (to a file manager or onto a convert target)."""

    def __init__(self, window):
        super().__init__()
        self._window = window
        self._press: QPoint | None = None
        self._press_index = -1

    def mousePressEvent(self, e) -> None:
        if e.button() == Qt.MouseButton.LeftButton:
            self._press = e.position().toPoint()
            self._press_index = self.tabAt(self._press)
        super().mousePressEvent(e)

    def mouseMoveEvent(self, e) -> None:
        if (self._press is not None and self._press_index >= 0 and e.buttons() & Qt.MouseButton.LeftButton
                and (e.position().toPoint() - self._press).manhattanLength() >= QApplication.startDragDistance()):
            mime = self._window.tab_mime_data(self._press_index)
            self._press = None
            if mime is not None:
                drag = QDrag(self)
                drag.setMimeData(mime)
                drag.exec(Qt.DropAction.CopyAction)
                return
        super().mouseMoveEvent(e)

    def mouseReleaseEvent(self, e) -> None:
        self._press = None
        super().mouseReleaseEvent(e)

    def tabInserted(self, index: int) -> None:
        super().tabInserted(index)
        QTimer.singleShot(0, self, self._window.retitle_tabs)  # once the caller has set the tab up

    def tabRemoved(self, index: int) -> None:
        super().tabRemoved(index)
        QTimer.singleShot(0, self, self._window.retitle_tabs)

    def minimumTabSizeHint(self, index: int) -> QSize:
        # Qt would elide every title down to "…" before it shows the scroll buttons; a title that carries
        # its distinguishing folders is never elided (the folders are what tells it apart)
        hint = super().minimumTabSizeHint(index)
        full = self.tabSizeHint(index)
        text = self.tabText(index)
        if text != self.tabData(index) and isinstance(self.tabData(index), str):
            return QSize(max(hint.width(), full.width()), hint.height())
        fm = self.fontMetrics()
        want = fm.horizontalAdvance(text[:MIN_TAB_CHARS] + "…") + full.width() - fm.horizontalAdvance(text)
        return QSize(max(hint.width(), min(full.width(), want)), hint.height())


class TabsFeature:
    def _setup_tabs(self) -> None:
        bar = DragTabBar(self)
        bar.setUsesScrollButtons(True)
        bar.setElideMode(Qt.TextElideMode.ElideMiddle)
        bar.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        bar.customContextMenuRequested.connect(self._tab_context_menu)
        self.tabs.setTabBar(bar)
        self.tabs.setElideMode(Qt.TextElideMode.ElideMiddle)
        self.tabs.setUsesScrollButtons(True)

    def retitle_tabs(self) -> None:
        """Give tabs of files with the same name their distinguishing parent folders (after a tab opens or closes)."""
        bar = self.tabs.tabBar()
        bases = []
        for i in range(self.tabs.count()):
            base = bar.tabData(i)
            if not isinstance(base, str):
                base = self.tabs.tabText(i)
                bar.setTabData(i, base)
            bases.append(base)
        paths = [str(getattr(self.tabs.widget(i), "path", "") or "") for i in range(self.tabs.count())]
        for i, extra in enumerate(distinct_titles(paths)):
            text = f"{bases[i]} — {extra}" if extra else bases[i]
            if self.tabs.tabText(i) != text:
                self.tabs.setTabText(i, text)

    def tab_menu(self, index: int) -> QMenu | None:
        """The context menu of tab ``index``: close, close others, copy path, open the containing folder."""
        w = self.tabs.widget(index)
        if w is None:
            return None
        path = str(getattr(w, "path", "") or "")
        menu = QMenu(self)
        menu.setObjectName("tabMenu")
        menu.addAction("&Close", lambda: self.close_tab(self.tabs.indexOf(w)))
        others = menu.addAction("Close &others", lambda: self.close_other_tabs(w))
        others.setEnabled(self.tabs.count() > 1)
        right = menu.addAction("Close tabs to the &right", lambda: self.close_tabs_right_of(w))
        right.setEnabled(index < self.tabs.count() - 1)
        menu.addSeparator()
        cp = menu.addAction("Copy &path", lambda: QApplication.clipboard().setText(path))
        op = menu.addAction("Open containing &folder", lambda: self.open_containing_folder(path))
        for a in (cp, op):
            a.setEnabled(bool(path))
        return menu

    def _tab_context_menu(self, pos: QPoint) -> None:
        bar = self.tabs.tabBar()
        menu = self.tab_menu(bar.tabAt(pos))
        if menu is not None:
            menu.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
            menu.popup(bar.mapToGlobal(pos))

    def close_other_tabs(self, keep) -> None:
        for i in reversed(range(self.tabs.count())):
            if self.tabs.widget(i) is not keep:
                self.close_tab(i)

    def close_tabs_right_of(self, w) -> None:
        k = self.tabs.indexOf(w)
        for i in reversed(range(k + 1, self.tabs.count())):
            self.close_tab(i)

    def open_containing_folder(self, path: str) -> bool:
        """Show the folder that holds ``path`` in the desktop's file manager (a SavedModel folder: its parent)."""
        folder = os.path.dirname(os.path.abspath(path.rstrip(os.sep)))
        ok = QDesktopServices.openUrl(QUrl.fromLocalFile(folder))
        if not ok:
            self.statusBar().showMessage(f"No file manager could open {folder}; its path is {folder}", 8000)
        return ok

