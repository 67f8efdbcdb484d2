"""The graph as a picture: PNG (raster, at a readable scale when it fits the limits) or SVG (vector, every
label in it as text), of the whole drawing or of the part on screen.

A :class:`Snapshot` is taken on the GUI thread (the layout, the theme, the overlays: all read-only once
drawn); :func:`render` then runs on any thread, so the window renders a big graph in the background.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

from PySide6.QtCore import QRectF, QSize, Qt
from PySide6.QtGui import QColor, QImage, QPainter

from .item import LayoutData, paint_layout

__all__ = ["Snapshot", "render", "FORMATS", "MAX_SIDE", "MAX_PIXELS", "READABLE_SCALE"]

FORMATS = {".png": "PNG image", ".svg": "SVG drawing"}
READABLE_SCALE = 1.0        # screen pixels per scene unit of a whole-graph PNG: every label drawn
MAX_SIDE = 32000            # a PNG's longest side (image viewers and QPainter's raster engine cope)
MAX_PIXELS = 80_000_000     # a PNG's area (~320 MB while painting); larger graphs are scaled down


@dataclass
class Snapshot:
    """What is painted: the layout's part ``rect`` (scene units) at ``scale`` px per unit, on ``background``."""

    data: LayoutData
    rect: QRectF
    scale: float
    background: QColor
    dark: bool
    selected: int = -1
    overlay: object = None
    group_bins: object = None
    pairing: object = None

    @classmethod
    def whole(cls, data: LayoutData, **kw) -> Snapshot:
        """The whole drawing at the readable scale, or as large as the limits allow."""
        r = QRectF(data.bounds)
        s = READABLE_SCALE
        s = min(s, MAX_SIDE / max(r.width(), r.height(), 1.0), (MAX_PIXELS / max(r.width() * r.height(), 1.0)) ** 0.5)
        return cls(data, r, s, **kw)

    def size(self) -> QSize:
        return QSize(max(1, round(self.rect.width() * self.scale)), max(1, round(self.rect.height() * self.scale)))


def _paint(p: QPainter, snap: Snapshot, lod: float) -> None:
    r = snap.rect
    p.fillRect(QRectF(0, 0, r.width() * snap.scale, r.height() * snap.scale), snap.background)
    p.scale(snap.scale, snap.scale)
    p.translate(-r.x(), -r.y())
    p.setRenderHint(QPainter.RenderHint.Antialiasing, lod >= 0.6)
    p.setRenderHint(QPainter.RenderHint.TextAntialiasing, True)
    paint_layout(p, snap.data, r, lod, selected=snap.selected, dark=snap.dark, overlay=snap.overlay,
                 group_bins=snap.group_bins, pairing=snap.pairing)


def render(snap: Snapshot, path: str) -> QSize:
    """Write ``snap`` to ``path`` (.png or .svg, by its extension); returns the picture's size in pixels.
    Raises OSError with one line when the file cannot be written, ValueError for another extension."""
    ext = os.path.splitext(path)[1].lower()
    if ext not in FORMATS:
        raise ValueError(f"{os.path.basename(path)}: choose a name ending in .png or .svg")
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise OSError(f"{folder} does not exist; choose another folder")
    size = snap.size()
    if ext == ".svg":
        from PySide6.QtSvg import QSvgGenerator

        gen = QSvgGenerator()
        gen.setFileName(path)
        gen.setSize(size)
        gen.setViewBox(QRectF(0, 0, size.width(), size.height()))
        gen.setTitle("Model graph")
        gen.setDescription("Exported from Tensorbridge")
        p = QPainter()
        if not p.begin(gen):
            raise OSError(f"cannot write {path}; choose another folder")
        # a vector drawing carries every label whatever its scale: paint at full detail
        _paint(p, snap, max(snap.scale, READABLE_SCALE))
        p.end()
        if not os.path.isfile(path):
            raise OSError(f"cannot write {path}; choose another folder")
        return size
    img = QImage(size, QImage.Format.Format_ARGB32_Premultiplied)
    if img.isNull():
        raise OSError(f"not enough memory for a {size.width()}×{size.height()} picture; export the visible part or SVG")
    img.fill(Qt.GlobalColor.transparent)
    p = QPainter(img)
    _paint(p, snap, snap.scale)
    p.end()
    if not img.save(path, "PNG"):
        raise OSError(f"cannot write {path}; choose another folder")
    return size
