"""Inspector: the selected node (name, op, scope, attributes, inputs/outputs, weights) or the model summary.

Two resizable columns: the name column starts at its content's width but never above about two fifths of
the panel (the values get the rest; a long value is elided, the full value is its tooltip), and once the
user drags the divider that width is kept. Ctrl+C copies the selected rows' values; the context menu has
Copy value, Copy name, Copy row and Copy all. A dict attribute (a TFLite tensor's quantization) is a row
per entry.

Weight statistics are not computed here: the panel emits ``statsRequested(name)`` and the window runs
the worker task ``tensor`` and hands the result to :meth:`Inspector.set_stats`. pyqtgraph is imported the
first time a histogram is shown.
"""
from __future__ import annotations

import html
import json
from typing import Any

from PySide6.QtCore import QEvent, QObject, Qt, Signal
from PySide6.QtGui import QGuiApplication, QKeySequence
from PySide6.QtWidgets import (QGroupBox, QHeaderView, QLabel, QMenu, QPushButton, QSplitter, QTreeWidget,
                               QTreeWidgetItem, QVBoxLayout, QWidget)

__all__ = ["Inspector", "shape_text", "value_text"]

WEIGHT_ROLE = Qt.ItemDataRole.UserRole + 1
VALUE_ROLE = Qt.ItemDataRole.UserRole + 2   # the full value of a row (what Copy value copies)
NAME_SHARE = 0.45       # the most of the panel's width the name column takes by itself
SHOWN_CHARS = 4000      # a longer value is shown cut (Qt elides it anyway); tooltip and copy have it all


def shape_text(shape) -> str:
    if shape is None:
        return "?"
    if len(shape) == 0:
        return "scalar"
    return "×".join("?" if d is None else str(d) for d in shape)


def value_text(v: dict) -> str:
    return f"{shape_text(v.get('shape'))}  {v.get('dtype') or '?'}"


def _attr_text(v: Any) -> str:
    """An attribute's value in full: strings as they are, everything else as compact JSON."""
    if isinstance(v, str):
        return v
    if v is None:
        return "(not set)"
    return json.dumps(v, default=str, separators=(", ", ": "))


def _tooltip(text: str) -> str:
    """A tooltip that wraps (a long value is one line of plain text otherwise)."""
    return f"<p style='white-space:pre-wrap'>{html.escape(text)}</p>" if len(text) > 80 else text


def _fmt(x: Any) -> str:
    if isinstance(x, float):
        return f"{x:.6g}"
    if isinstance(x, int):
        return f"{x:,}"
    return str(x)


class Inspector(QWidget):
    statsRequested = Signal(str)

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.title = QLabel(self)
        self.title.setWordWrap(True)
        self.title.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        f = self.title.font()
        f.setBold(True)
        self.title.setFont(f)
        self.tree = QTreeWidget(self)
        self.tree.setColumnCount(2)
        self.tree.setHeaderLabels(["Property", "Value"])
        h = self.tree.header()
        h.setSectionResizeMode(0, QHeaderView.ResizeMode.Interactive)
        h.setStretchLastSection(True)
        h.setMinimumSectionSize(40)
        self.name_width: int | None = None   # the width the user dragged the name column to
        self._fitting = False
        h.sectionResized.connect(self._section_resized)
        self.tree.setAlternatingRowColors(True)
        self.tree.setUniformRowHeights(True)
        self.tree.setWordWrap(False)
        self.tree.setTextElideMode(Qt.TextElideMode.ElideRight)
        self.tree.setIndentation(12)  # nested rows (a tensor's quantization) leave their names room
        self.tree.setSelectionMode(QTreeWidget.SelectionMode.ExtendedSelection)
        self.tree.itemSelectionChanged.connect(self._selection_changed)
        self.tree.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.tree.customContextMenuRequested.connect(self._context_menu)
        self.tree.installEventFilter(self)
        self.tree.viewport().installEventFilter(self)

        self.stats_box = QGroupBox("Weight statistics", self)
        self.stats_label = QLabel("Select a weight to see its statistics.", self.stats_box)
        self.stats_label.setWordWrap(True)
        self.stats_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.stats_button = QPushButton("Compute statistics", self.stats_box)
        self.stats_button.setEnabled(False)
        self.stats_button.clicked.connect(self._request_stats)
        sl = QVBoxLayout(self.stats_box)
        sl.addWidget(self.stats_label)
        sl.addWidget(self.stats_button)
        self.plot = None  # pyqtgraph PlotWidget, created on first histogram
        self._plot_layout = sl

        split = QSplitter(Qt.Orientation.Vertical, self)
        split.addWidget(self.tree)
        split.addWidget(self.stats_box)
        split.setStretchFactor(0, 3)
        split.setStretchFactor(1, 1)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(4, 4, 4, 4)
        lay.addWidget(self.title)
        lay.addWidget(split, 1)
        self.current_weight: str | None = None
        self.stats_enabled = True
        self.clear()

    # -- content -----------------------------------------------------------------------------------------
    def clear(self, message: str = "No model open.") -> None:
        self.tree.clear()
        self.title.setText(message)
        self._reset_stats()

    def _section(self, title: str, expanded: bool = True) -> QTreeWidgetItem:
        it = QTreeWidgetItem(self.tree, [title, ""])
        it.setData(1, VALUE_ROLE, "")
        f = it.font(0)
        f.setBold(True)
        it.setFont(0, f)
        it.setFirstColumnSpanned(True)
        it.setExpanded(expanded)
        return it

    def _row(self, parent: QTreeWidgetItem | None, key: str, value: str, weight: str | None = None) -> QTreeWidgetItem:
        shown = value if len(value) <= SHOWN_CHARS else value[:SHOWN_CHARS] + "…"
        it = QTreeWidgetItem(parent or self.tree, [key, shown])
        it.setData(1, VALUE_ROLE, value)
        it.setToolTip(1, _tooltip(value))
        it.setToolTip(0, _tooltip(key) if not weight else f"{key}\nSelect to compute this weight's statistics")
        if weight:
            it.setData(0, WEIGHT_ROLE, weight)
        return it

    def _attr_row(self, parent: QTreeWidgetItem, key: str, v: Any) -> QTreeWidgetItem:
        """An attribute: a dict (per-tensor quantization, nested options) is a row per entry below its own."""
        if isinstance(v, dict) and v:
            it = self._row(parent, key, _attr_text(v))
            for kk, vv in v.items():
                self._attr_row(it, str(kk), vv)
            it.setExpanded(len(v) <= 4)
            return it
        return self._row(parent, key, _attr_text(v))

    # -- the name column's width ---------------------------------------------------------------------
    def fit_columns(self) -> None:
        """The name column as wide as its names, but at most :data:`NAME_SHARE` of the panel (unless the
        user dragged it); the value column takes the rest."""
        avail = self.tree.viewport().width()
        if avail <= 0:
            return
        if self.name_width is not None:
            want = self.name_width
        else:
            want = min(self.tree.sizeHintForColumn(0) + 8, max(80, int(avail * NAME_SHARE)))
        self._fitting = True
        try:
            self.tree.setColumnWidth(0, max(40, min(want, avail - 40)))
        finally:
            self._fitting = False

    def _section_resized(self, index: int, _old: int, new: int) -> None:
        if index == 0 and not self._fitting and self.tree.isVisible():
            self.name_width = new  # the user's choice, kept for every node shown next

    def eventFilter(self, obj: QObject, e: QEvent) -> bool:
        if obj is self.tree.viewport() and e.type() == QEvent.Type.Resize:
            self.fit_columns()
        elif obj is self.tree and e.type() == QEvent.Type.KeyPress and e.matches(QKeySequence.StandardKey.Copy):
            self.copy("value")
            return True
        return super().eventFilter(obj, e)

    # -- copy ----------------------------------------------------------------------------------------
    def copy_text(self, what: str = "value", items: list[QTreeWidgetItem] | None = None) -> str:
        """What Copy ``what`` ("value", "name", "row" or "all") puts on the clipboard for ``items``
        (default: the selected rows): full values, one row per line."""
        if what == "all":
            return self.text()
        rows = items if items is not None else self.tree.selectedItems()
        if not rows and self.tree.currentItem() is not None:
            rows = [self.tree.currentItem()]
        out = []
        for it in rows:
            name, value = it.text(0), str(it.data(1, VALUE_ROLE) or "")
            out.append(name if what == "name" else value if what == "value" else
                       (f"{name}: {value}" if value else name))
        return "\n".join(out)

    def copy(self, what: str = "value", items: list[QTreeWidgetItem] | None = None) -> str:
        text = self.copy_text(what, items)
        if text:
            QGuiApplication.clipboard().setText(text)
        return text

    def menu_for(self, item: QTreeWidgetItem | None) -> QMenu:
        """The context menu of a row: Copy value (Ctrl+C), Copy name, Copy row, Copy all."""
        if item is not None and not item.isSelected():  # a right click on another row: that row only
            self.tree.clearSelection()
            self.tree.setCurrentItem(item)
        menu = QMenu(self)
        has_value = any(str(it.data(1, VALUE_ROLE) or "") for it in self.tree.selectedItems())
        act = menu.addAction("Copy value", lambda: self.copy("value"))
        act.setShortcut(QKeySequence.StandardKey.Copy)
        act.setEnabled(has_value)
        menu.addAction("Copy name", lambda: self.copy("name")).setEnabled(bool(self.tree.selectedItems()))
        menu.addAction("Copy row", lambda: self.copy("row")).setEnabled(bool(self.tree.selectedItems()))
        menu.addSeparator()
        menu.addAction("Copy all", lambda: self.copy("all"))
        return menu

    def _context_menu(self, pos) -> None:
        self.menu_for(self.tree.itemAt(pos)).popup(self.tree.viewport().mapToGlobal(pos))

    def show_summary(self, doc) -> None:
        """The model's facts: format, inputs/outputs, node, parameter and weight counts, extras."""
        self.tree.clear()
        self._reset_stats()
        s = doc.summary
        self.title.setText(f"Model: {doc.path}")
        top = self._section("Model")
        self._row(top, "format", str(s.get("format", "?")))
        if "node_count" in s:
            self._row(top, "nodes", _fmt(int(s["node_count"])))
        if "weight_count" in s:
            self._row(top, "weights", f"{_fmt(int(s['weight_count']))} tensors (weights only)")
        self._row(top, "parameters", _fmt(int(s.get("param_count") or 0)))
        if s.get("buffer_count"):
            self._row(top, "buffers", _fmt(int(s["buffer_count"])))
        for key, title in (("inputs", "Inputs"), ("outputs", "Outputs")):
            if s.get(key):
                sec = self._section(title)
                for v in s[key]:
                    self._row(sec, v["name"], value_text(v))
        for name, sig in (s.get("signatures") or {}).items():
            sec = self._section(f"Signature {name}", expanded=False)
            for v in sig.get("inputs", []):
                self._row(sec, f"in: {v['name']}", value_text(v))
            for v in sig.get("outputs", []):
                self._row(sec, f"out: {v['name']}", value_text(v))
        extra = s.get("extra") or {}
        if extra:
            sec = self._section("Metadata")
            for k, v in extra.items():
                self._attr_row(sec, str(k), v)
        for w in s.get("warnings") or []:
            self._row(self._section("Warnings"), "warning", w)
        self.fit_columns()

    def show_node(self, doc, index: int) -> None:
        """Node ``index`` of ``doc`` (details read on demand)."""
        self.tree.clear()
        self._reset_stats()
        d = doc.details(index)
        self.title.setText(f"{d.get('op_type', '?')}: {d.get('name', '')}")
        top = self._section("Node")
        self._row(top, "name", str(d.get("name", "")))
        op = str(d.get("op_type", "?"))
        if d.get("domain"):
            op = f"{d['domain']}::{op}"
        self._row(top, "op type", op)
        self._row(top, "scope", d.get("scope") or "(root)")
        attrs = dict(d.get("attrs") or {})
        # keys with a leading underscore are the reader's metadata (exporter scopes, source lines)
        meta = {k: v for k, v in attrs.items() if k.startswith("_")}
        attrs = {k: v for k, v in attrs.items() if not k.startswith("_")}
        if attrs:
            sec = self._section("Attributes")
            for k, v in attrs.items():
                self._attr_row(sec, str(k), v)
        for key, title in (("inputs", "Inputs"), ("outputs", "Outputs")):
            vals = d.get(key) or []
            if vals:
                sec = self._section(title)
                for v in vals:
                    self._row(sec, v.get("name", ""), value_text(v))
        ws = d.get("weights") or []
        if ws:
            sec = self._section("Weights")
            for w in ws:
                self._row(sec, w.get("name", ""), value_text(w), weight=w.get("name"))
        if meta:
            sec = self._section("Metadata", expanded=False)
            for k, v in meta.items():
                if isinstance(v, dict):
                    for kk, vv in v.items():
                        self._attr_row(sec, str(kk), vv)
                else:
                    self._row(sec, k.lstrip("_"), _attr_text(v))
        self.fit_columns()

    def show_weight(self, doc, name: str) -> None:
        """One entry of a weights-only checkpoint; its statistics are requested right away."""
        self.tree.clear()
        self._reset_stats()
        meta = next((w for w in doc.weights or [] if w["name"] == name), {"name": name})
        self.title.setText(f"Weight: {name}")
        sec = self._section("Weight")
        self._row(sec, "name", name, weight=name)
        self._row(sec, "shape", shape_text(meta.get("shape")))
        self._row(sec, "type", meta.get("dtype") or "?")
        self.fit_columns()
        self._select_weight(name)
        self._request_stats()

    def text(self) -> str:
        """Everything shown, one ``key: value`` per line (for tests and copy)."""
        lines = [self.title.text()]

        def walk(item: QTreeWidgetItem, depth: int) -> None:
            value = str(item.data(1, VALUE_ROLE) or item.text(1))
            lines.append("  " * depth + (f"{item.text(0)}: {value}" if value else item.text(0)))
            for i in range(item.childCount()):
                walk(item.child(i), depth + 1)

        for i in range(self.tree.topLevelItemCount()):
            walk(self.tree.topLevelItem(i), 0)
        lines.append(self.stats_label.text())
        return "\n".join(lines)

    # -- weight statistics -------------------------------------------------------------------------------
    def _reset_stats(self) -> None:
        self.current_weight = None
        self.stats_label.setText("Select a weight to see its statistics." if self.stats_enabled else
                                 "Weight statistics need the engine's 'tensor' task, which is not installed.")
        self.stats_button.setEnabled(False)
        if self.plot is not None:
            self.plot.hide()

    def _selection_changed(self) -> None:
        items = self.tree.selectedItems()
        name = items[0].data(0, WEIGHT_ROLE) if items else None
        if name:
            self._select_weight(name)

    def _select_weight(self, name: str) -> None:
        self.current_weight = name
        self.stats_button.setEnabled(self.stats_enabled)
        self.stats_label.setText(f"{name}: press the button to compute min/max/mean/std and a histogram."
                                 if self.stats_enabled else self.stats_label.text())

    def _request_stats(self) -> None:
        if self.current_weight and self.stats_enabled:
            self.stats_button.setEnabled(False)
            self.stats_label.setText(f"{self.current_weight}: computing…")
            self.statsRequested.emit(self.current_weight)

    def set_stats(self, name: str, result: dict) -> None:
        """Show the ``tensor`` task's result ``{stats: {...}, histogram: {counts, edges}}`` for ``name``."""
        if name != self.current_weight:
            return  # the user moved on; a stale answer must not overwrite the new selection
        st = result.get("stats") or {}
        parts = [f"{k} {_fmt(st[k])}" for k in ("min", "max", "mean", "std") if k in st]
        if "numel" in st:
            parts.append(f"elements {_fmt(st['numel'])}")
        if "zeros" in st:
            parts.append(f"zeros {st['zeros'] * 100:.1f}%")
        for k in ("nan", "inf"):
            if st.get(k):
                parts.append(f"{k} {_fmt(st[k])}")
        self.stats_label.setText(f"{name}: " + ", ".join(parts))
        self.stats_button.setEnabled(True)
        hist = result.get("histogram") or {}
        if hist.get("counts") and hist.get("edges"):
            self._plot_histogram(hist["counts"], hist["edges"])

    def set_stats_error(self, name: str, message: str) -> None:
        if name == self.current_weight:
            self.stats_label.setText(f"{name}: {message}")
            self.stats_button.setEnabled(True)

    def _plot_histogram(self, counts, edges) -> None:
        import pyqtgraph as pg

        if self.plot is None:
            self.plot = pg.PlotWidget(self.stats_box)
            self.plot.setMinimumHeight(120)
            self.plot.setMenuEnabled(False)
            self.plot.hideButtons()
            self._follow_palette()
            self._bars = pg.PlotDataItem(stepMode="center", fillLevel=0)
            self.plot.addItem(self._bars)
            self._plot_layout.addWidget(self.plot)
        self._follow_palette()
        self._bars.setData(list(edges), list(counts))
        self.plot.show()

    def _follow_palette(self) -> None:
        import pyqtgraph as pg

        pal = self.palette()
        self.plot.setBackground(pal.base().color())
        fg = pal.text().color()
        for ax in ("left", "bottom"):
            self.plot.getAxis(ax).setPen(fg)
            self.plot.getAxis(ax).setTextPen(fg)
        hl = pal.highlight().color()
        if hasattr(self, "_bars"):
            fill = pg.mkColor(hl)
            fill.setAlpha(150)
            self._bars.setPen(pg.mkPen(hl))
            self._bars.setBrush(pg.mkBrush(fill))
