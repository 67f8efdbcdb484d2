"""The window's tab bar: tabs that can be dragged out as files."""
from __future__ import annotations

from PySide6.QtCore import QPoint, Qt
from PySide6.QtGui import QDrag
from PySide6.QtWidgets import QApplication, QTabBar

__all__ = ["DragTabBar"]


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

