"""Colours of the graph view: one fill per op category, readable on light and dark window themes.

Fills are mid-light tones with dark text on them, so a node reads the same on any background; lines and
frames use mid greys and translucent tints that show on both.
"""
from __future__ import annotations

from PySide6.QtGui import QColor, QPalette

from converters.viewpack import CATEGORIES

# category -> (fill, border)
CATEGORY_COLORS: dict[str, tuple[str, str]] = {
    "conv": ("#7fb2e5", "#3f78b5"),
    "linear": ("#b3a4e0", "#6f5bb0"),
    "norm": ("#8fd4b4", "#3e9a70"),
    "activation": ("#f6c08f", "#c77a35"),
    "pool": ("#93d6ee", "#3b97b8"),
    "shape": ("#d4d4d4", "#8c8c8c"),
    "elementwise": ("#ecdf8c", "#b09d2a"),
    "attention": ("#efa3b8", "#b8506e"),
    "control": ("#ee8f8f", "#b83d3d"),
    "other": ("#cdbf9f", "#8d7c58"),
}
NODE_TEXT = QColor("#1a1a1a")
NODE_SUBTEXT = QColor("#3a3a3a")
GROUP_FILL = QColor("#dfe3ea")
GROUP_BORDER = QColor("#6b7686")
EDGE = QColor("#8d949e")
SELECT = QColor("#ff8c00")
HIGHLIGHT_EDGE = QColor("#ff8c00")
# with the error overlay on, nodes that are no compared layer (see .overlay for the error colours)
OVERLAY_NEUTRAL = QColor("#f4f4f2")
OVERLAY_NEUTRAL_BORDER = QColor("#a6abb3")


def category_fills() -> list[QColor]:
    return [QColor(CATEGORY_COLORS[c][0]) for c in CATEGORIES]


def category_borders() -> list[QColor]:
    return [QColor(CATEGORY_COLORS[c][1]) for c in CATEGORIES]


def is_dark(palette: QPalette) -> bool:
    return palette.color(QPalette.ColorRole.Window).lightness() < 128


def frame_colors(dark: bool) -> tuple[QColor, QColor, QColor]:
    """(fill, border, title text) of an expanded group's frame on a light or dark background."""
    if dark:
        return QColor(255, 255, 255, 16), QColor("#7a8494"), QColor("#d8dde6")
    return QColor(40, 60, 90, 14), QColor("#9aa3b0"), QColor("#2d3440")


def canvas_background(pal: QPalette) -> QColor:
    """The canvas behind the graph: the palette's base, kept dark in a dark theme and light in a light one
    (a platform palette may pair a dark window with a white base)."""
    base = pal.color(QPalette.ColorRole.Base)
    if is_dark(pal) and base.lightness() >= 128:
        return QColor("#1e1f22")
    if not is_dark(pal) and base.lightness() < 128:
        return QColor("#ffffff")
    return base


# graph inputs and outputs: kind (1 input, 2 output) -> light (fill, border, text), dark (fill, border, text)
IO_COLORS: dict[int, tuple[tuple[str, str, str], tuple[str, str, str]]] = {
    1: (("#d3ecdf", "#2e8b57", "#123d26"), ("#1f4d36", "#5cc08a", "#e3f6ea")),
    2: (("#f6dcc8", "#c0622a", "#4a230b"), ("#5a3119", "#f0925a", "#fbeadf")),
}
IO_WORDS = {1: "input", 2: "output"}


def io_colors(kind: int, dark: bool) -> tuple[QColor, QColor, QColor]:
    """(fill, border, text) of a graph input (kind 1) or output (2) pill on a light or dark canvas."""
    light, night = IO_COLORS.get(int(kind), IO_COLORS[1])
    return tuple(QColor(c) for c in (night if dark else light))  # type: ignore[return-value]
