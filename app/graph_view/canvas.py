"""The QGraphicsView under a graph view: mouse and gesture input, forwarded to its :class:`GraphView`.

The wheel (or a pinch) zooms about the point under the cursor: the scene point there stays where it is
on screen (see :meth:`GraphView._zoom_by`).
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtCore import QEvent, QPointF, Qt
from PySide6.QtGui import QMouseEvent, QPainter, QWheelEvent
from PySide6.QtWidgets import QFrame, QGraphicsView, QToolTip

if TYPE_CHECKING:
    from .view import GraphView

__all__ = ["Canvas"]


class Canvas(QGraphicsView):
    def __init__(self, owner: GraphView):
        super().__init__(owner)
        self.owner = owner
        self.setRenderHint(QPainter.RenderHint.Antialiasing, False)
        self.setDragMode(QGraphicsView.DragMode.ScrollHandDrag)
        self.setTransformationAnchor(QGraphicsView.ViewportAnchor.NoAnchor)   # zooms keep their own anchor
        self.setResizeAnchor(QGraphicsView.ViewportAnchor.AnchorViewCenter)
        self.setViewportUpdateMode(QGraphicsView.ViewportUpdateMode.SmartViewportUpdate)
        self.setOptimizationFlag(QGraphicsView.OptimizationFlag.DontAdjustForAntialiasing, True)
        self.setFrameShape(QFrame.Shape.NoFrame)
        self._press: QPointF | None = None
        self.viewport().grabGesture(Qt.GestureType.PinchGesture)

    def paintEvent(self, event) -> None:
        super().paintEvent(event)
        self.owner._after_paint()

    def scrollContentsBy(self, dx: int, dy: int) -> None:
        super().scrollContentsBy(dx, dy)
        self.owner._minimap.update()
        try:
            self.owner.viewChanged.emit()
        except (RuntimeError, TypeError):  # scrolled while the view is being destroyed: nobody listens
            pass

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        self.owner._place_minimap()

    def wheelEvent(self, event: QWheelEvent) -> None:
        delta = event.angleDelta().y() or event.pixelDelta().y()
        if delta:
            self.owner._zoom_by(1.0015 ** delta, anchor=event.position().toPoint())
        event.accept()

    def viewportEvent(self, event: QEvent) -> bool:
        t = event.type()
        if t == QEvent.Type.NativeGesture:
            try:
                if event.gestureType() == Qt.NativeGestureType.ZoomNativeGesture:
                    self.owner._zoom_by(1.0 + event.value(), anchor=event.position().toPoint())
                    return True
            except AttributeError:
                pass
        elif t == QEvent.Type.Gesture:
            pinch = event.gesture(Qt.GestureType.PinchGesture)
            if pinch is not None:
                self.owner._zoom_by(pinch.scaleFactor(),
                                     anchor=self.viewport().mapFromGlobal(pinch.centerPoint().toPoint()))
                return True
        return super().viewportEvent(event)

    def mousePressEvent(self, event: QMouseEvent) -> None:
        self._press = event.position()
        super().mousePressEvent(event)

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:
        super().mouseReleaseEvent(event)
        if self._press is not None and event.button() == Qt.MouseButton.LeftButton:
            moved = (event.position() - self._press).manhattanLength()
            if moved < 4:
                self.owner._click(self.mapToScene(event.position().toPoint()), double=False)
        self._press = None

    def mouseMoveEvent(self, event: QMouseEvent) -> None:
        super().mouseMoveEvent(event)
        if not event.buttons():
            text = self.owner._tooltip(self.mapToScene(event.position().toPoint()))
            if text:
                QToolTip.showText(event.globalPosition().toPoint(), text, self.viewport())
            else:
                QToolTip.hideText()

    def mouseDoubleClickEvent(self, event: QMouseEvent) -> None:
        if event.button() == Qt.MouseButton.LeftButton:
            self.owner._click(self.mapToScene(event.position().toPoint()), double=True)
            event.accept()
            return
        super().mouseDoubleClickEvent(event)

