"""The minimap in a graph view's top-right corner: a thumbnail of the whole drawing with the visible
rectangle; click or drag in it to move there."""
from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QColor, QImage, QPainter, QPen
from PySide6.QtWidgets import QWidget

from . import palette
from .item import LayoutData, paint_layout
from .legend import panel_colors

if TYPE_CHECKING:
    from .view import GraphView

__all__ = ["Minimap", "thumbnail"]


class Minimap(QWidget):
    """A thumbnail of the whole drawing with the visible rectangle; click or drag to move there."""

    MAX_W, MAX_H = 150, 220

    def __init__(self, owner: GraphView, parent: QWidget):
        super().__init__(parent)
        self.owner = owner
        self.thumb: QImage | None = None
        self.setCursor(Qt.CursorShape.PointingHandCursor)
        self.setAttribute(Qt.WidgetAttribute.WA_OpaquePaintEvent, False)

    def set_thumb(self, img: QImage | None, w: float, h: float) -> None:
        self.thumb = img
        if w <= 0 or h <= 0:
            self.hide()
            return
        s = min(self.MAX_W / w, self.MAX_H / h)
        self.resize(max(24, int(w * s) + 6), max(24, int(h * s) + 6))
        self.show()
        self.owner._place_minimap()

    def _scale(self) -> tuple[float, float, float]:
        d = self.owner._data
        if d is None:
            return 1.0, 3.0, 3.0
        W, H = max(d.lay.width, 1.0), max(d.lay.height, 1.0)
        s = min((self.width() - 6) / W, (self.height() - 6) / H)
        return s, 3.0 + ((self.width() - 6) - W * s) / 2, 3.0 + ((self.height() - 6) - H * s) / 2

    def paintEvent(self, event) -> None:
        d = self.owner._data
        if d is None:
            return
        p = QPainter(self)
        bg, border, _text = panel_colors(palette.is_dark(self.palette()))
        p.fillRect(self.rect(), bg)
        p.setPen(border)
        p.drawRect(self.rect().adjusted(0, 0, -1, -1))
        s, ox, oy = self._scale()
        if self.thumb is not None:
            p.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, True)
            p.drawImage(QRectF(ox, oy, d.lay.width * s, d.lay.height * s), self.thumb)
        vis = self.owner._canvas.mapToScene(self.owner._canvas.viewport().rect()).boundingRect()
        pen = QPen(palette.SELECT)
        pen.setWidthF(1.5)
        p.setPen(pen)
        p.setBrush(QColor(255, 140, 0, 40))
        r = QRectF(ox + vis.x() * s, oy + vis.y() * s, max(3.0, vis.width() * s), max(3.0, vis.height() * s))
        p.drawRect(r.intersected(QRectF(self.rect()).adjusted(1, 1, -1, -1)))
        p.end()

    def _jump(self, pos: QPointF) -> None:
        s, ox, oy = self._scale()
        self.owner._canvas.centerOn(QPointF((pos.x() - ox) / s, (pos.y() - oy) / s))
        self.update()

    def mousePressEvent(self, event) -> None:
        self._jump(event.position())

    def mouseMoveEvent(self, event) -> None:
        if event.buttons() & Qt.MouseButton.LeftButton:
            self._jump(event.position())


def thumbnail(d: LayoutData, dark: bool = False) -> QImage:
    """A small picture of the whole layout for the minimap (boxes and lines only; any thread)."""
    W, H = max(d.lay.width, 1.0), max(d.lay.height, 1.0)
    s = min(Minimap.MAX_W * 2 / W, Minimap.MAX_H * 2 / H)
    img = QImage(max(1, int(W * s) + 1), max(1, int(H * s) + 1), QImage.Format.Format_ARGB32_Premultiplied)
    img.fill(Qt.GlobalColor.transparent)
    p = QPainter(img)
    p.scale(s, s)
    paint_layout(p, d, QRectF(0, 0, W, H), s, selected=-1, dark=dark, text=False)
    p.end()
    return img
