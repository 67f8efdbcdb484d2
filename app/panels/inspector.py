"""Inspector: the selected node (name, op, scope, attributes, inputs/outputs, weights) or the model summary.

Weight statistics are not computed here: the panel emits ``statsRequested(name)`` and the window runs
the worker task ``tensor`` and hands the result to :meth:`Inspector.set_stats`. pyqtgraph is imported the
first time a histogram is shown.
"""
from __future__ import annotations

import json
from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (QGroupBox, QHeaderView, QLabel, QPushButton, QSplitter, QTreeWidget,
                               QTreeWidgetItem, QVBoxLayout, QWidget)

__all__ = ["Inspector", "shape_text", "value_text"]

WEIGHT_ROLE = Qt.ItemDataRole.UserRole + 1


def shape_text(shape) -> str:
    if shape is None:
        return "?"
    if len(shape) == 0:
        return "scalar"
    return "×".join("?" if d is None else str(d) for d in shape)


def value_text(v: dict) -> str:
    return f"{shape_text(v.get('shape'))}  {v.get('dtype') or '?'}"


def _attr_text(v: Any) -> str:
    if isinstance(v, str):
        return v
    text = json.dumps(v, default=str)
    return text if len(text) <= 300 else text[:300] + "…"


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
        self.tree.header().setSectionResizeMode(0, QHeaderView.ResizeMode.ResizeToContents)
        self.tree.setAlternatingRowColors(True)
        self.tree.setUniformRowHeights(True)
        self.tree.setWordWrap(False)
        self.tree.itemSelectionChanged.connect(self._selection_changed)

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
        f = it.font(0)
        f.setBold(True)
        it.setFont(0, f)
        it.setFirstColumnSpanned(True)
        it.setExpanded(expanded)
        return it

    def _row(self, parent: QTreeWidgetItem | None, key: str, value: str, weight: str | None = None) -> QTreeWidgetItem:
        it = QTreeWidgetItem(parent or self.tree, [key, value])
        it.setToolTip(1, value)
        if weight:
            it.setData(0, WEIGHT_ROLE, weight)
            it.setToolTip(0, "Select to compute this weight's statistics")
        return it

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
                self._row(sec, str(k), _attr_text(v))
        for w in s.get("warnings") or []:
            self._row(self._section("Warnings"), "warning", w)

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
                self._row(sec, str(k), _attr_text(v))
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
                        self._row(sec, str(kk), _attr_text(vv))
                else:
                    self._row(sec, k.lstrip("_"), _attr_text(v))

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
        self._select_weight(name)
        self._request_stats()

    def text(self) -> str:
        """Everything shown, one ``key: value`` per line (for tests and copy)."""
        lines = [self.title.text()]

        def walk(item: QTreeWidgetItem, depth: int) -> None:
            lines.append("  " * depth + (f"{item.text(0)}: {item.text(1)}" if item.text(1) else item.text(0)))
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
