"""The keys drawn in a graph view's corner: the error overlay's legend (colours of absolute error, the
outline of each status, the pairing methods) and :func:`paint_key`, which the structural diff's key shares."""
from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtCore import QRectF, Qt
from PySide6.QtGui import QBrush, QColor, QFont, QFontMetrics, QPainter, QPen
from PySide6.QtWidgets import QWidget

from . import palette

if TYPE_CHECKING:
    from .view import GraphView

__all__ = ["Legend", "paint_key", "panel_colors"]


def panel_colors(dark: bool) -> tuple[QColor, QColor, QColor]:
    """(background, border, text) of a panel floating on the canvas (minimap, legend) in either theme."""
    if dark:
        return QColor(30, 30, 34, 225), QColor("#6b7280"), QColor("#e6e9ef")
    return QColor(250, 250, 252, 235), QColor("#8d949e"), QColor("#1f2328")


def paint_key(p: QPainter, width: int, y: float, lh: float, text: QColor, title: str,
              rows: list) -> float:
    """Draw a key on a canvas: ``title`` in bold, then one swatch and label per (colour, label) of
    ``rows``, from ``y`` down; returns the ``y`` below it. The error overlay's legend and the structural
    diff's key look alike this way."""
    f = p.font()
    f.setBold(True)
    p.setFont(f)
    p.setPen(text)
    p.drawText(QRectF(8, y, width - 12, lh), Qt.AlignmentFlag.AlignVCenter, title)
    f.setBold(False)
    p.setFont(f)
    y += lh
    for colour, label in rows:
        p.setPen(QColor(colour).darker(160))
        p.setBrush(colour)
        p.drawRect(QRectF(8, y + 2, 22, lh - 5))
        p.setPen(text)
        p.drawText(QRectF(36, y, width - 40, lh), Qt.AlignmentFlag.AlignVCenter, label)
        y += lh
    return y


_LEGEND_TITLE = "max |A − B| per layer"
_PAIR_TITLE = "paired by"
_LEGEND_KEYS = ("wrong itself (source)", "inherited from upstream", "layout-only op", "first divergence")


class Legend(QWidget):
    """The error overlay's key, in the bottom-left corner: one swatch per colour (absolute error) and
    the outline of each status."""

    def __init__(self, owner: GraphView, parent: QWidget):
        super().__init__(parent)
        self.owner = owner
        self.setAttribute(Qt.WidgetAttribute.WA_TransparentForMouseEvents, True)
        self.rows: list[tuple[QColor, str]] = []
        self.pair_rows: list[tuple[str, str, QColor, str]] = []

    def set_overlay(self, ov) -> None:
        self.rows = ov.legend() if ov is not None else []
        self._fit()

    def set_pairing(self, pairing) -> None:
        self.pair_rows = pairing.legend() if pairing is not None else []
        self._fit()

    def _fit(self) -> None:
        if (not self.rows and not self.pair_rows) or not self.owner.show_legend:
            self.hide()
            return
        fm = QFontMetrics(self.font())
        bold = self.font()
        bold.setBold(True)
        texts = [t for _c, t in self.rows] + [t for *_x, t in self.pair_rows]
        if self.rows:
            texts += list(_LEGEND_KEYS)
        w = max([fm.horizontalAdvance(t) for t in texts]
                + [QFontMetrics(bold).horizontalAdvance(t) - 28 for t in self._titles()]) + 48
        n = (len(self.rows) + 5 if self.rows else 0) + (len(self.pair_rows) + 1 if self.pair_rows else 0)
        self.resize(w, n * (fm.height() + 2) + 12)
        self.show()
        self.owner._place_minimap()

    def _titles(self) -> list[str]:
        return ([_LEGEND_TITLE] if self.rows else []) + ([_PAIR_TITLE] if self.pair_rows else [])

    def paintEvent(self, event) -> None:
        from . import overlay as ov

        if not self.rows and not self.pair_rows:
            return
        p = QPainter(self)
        dark = palette.is_dark(self.palette())
        bg, border, text = panel_colors(dark)
        p.fillRect(self.rect(), bg)
        p.setPen(border)
        p.drawRect(self.rect().adjusted(0, 0, -1, -1))
        fm = p.fontMetrics()
        lh = fm.height() + 2
        y = 6
        f = p.font()
        if self.rows:
            y = paint_key(p, self.width(), y, lh, text, _LEGEND_TITLE, self.rows)
        oc = ov.outline_colors(dark)
        keys = zip((oc["source"], oc["inherited"], oc["layout"], oc["first"]),
                   (Qt.PenStyle.SolidLine, Qt.PenStyle.DashLine, Qt.PenStyle.DotLine, Qt.PenStyle.SolidLine),
                   (2.5, 2.0, 2.0, 2.5), _LEGEND_KEYS if self.rows else ())
        for colour, style, width, label in keys:
            pen = QPen(colour)
            pen.setWidthF(width)
            pen.setStyle(style)
            p.setPen(pen)
            p.setBrush(Qt.BrushStyle.NoBrush)
            p.drawRoundedRect(QRectF(9, y + 3, 20, lh - 7), 3 if label == "first divergence" else 0, 3)
            p.setPen(text)
            p.drawText(QRectF(36, y, self.width() - 40, lh), Qt.AlignmentFlag.AlignVCenter, label)
            y += lh
        if self.pair_rows:
            f.setBold(True)
            p.setFont(f)
            p.setPen(text)
            p.drawText(QRectF(8, y, self.width() - 12, lh), Qt.AlignmentFlag.AlignVCenter, _PAIR_TITLE)
            y += lh
            small = QFont(f)
            small.setPixelSize(10)
            for kind, letter, colour, label in self.pair_rows:
                box = QRectF(12, y + 2, 15, lh - 4)
                if kind == "unmatched":
                    p.setPen(QPen(colour, 1.5, Qt.PenStyle.DashLine))
                    p.setBrush(QBrush(colour, Qt.BrushStyle.BDiagPattern))
                    p.drawRect(QRectF(8, y + 2, 22, lh - 5))
                else:
                    p.setPen(Qt.PenStyle.NoPen)
                    p.setBrush(colour)
                    p.drawRect(box)
                    p.setFont(small)
                    p.setPen(QColor("white"))
                    p.drawText(box, Qt.AlignmentFlag.AlignCenter, letter)
                    p.setFont(f)
                f.setBold(False)
                p.setFont(f)
                p.setPen(text)
                p.drawText(QRectF(36, y, self.width() - 40, lh), Qt.AlignmentFlag.AlignVCenter, label)
                y += lh
        p.end()
