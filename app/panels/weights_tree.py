"""Weights-only checkpoints (state_dict, .safetensors, .ckpt) as a tree of their dotted names."""
from __future__ import annotations

import math

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QStandardItem, QStandardItemModel
from PySide6.QtWidgets import (QHBoxLayout, QHeaderView, QLabel, QPushButton, QTreeView, QVBoxLayout,
                               QWidget)

__all__ = ["WeightsTree", "format_bytes", "DTYPE_SIZES"]

NAME_ROLE = Qt.ItemDataRole.UserRole + 1

# bytes per element; numpy is not needed in the window for this
DTYPE_SIZES = {"float64": 8, "float32": 4, "float16": 2, "bfloat16": 2, "int64": 8, "int32": 4, "int16": 2,
               "int8": 1, "uint8": 1, "uint16": 2, "uint32": 4, "uint64": 8, "bool": 1, "complex64": 8,
               "complex128": 16, "float8_e4m3fn": 1, "float8_e5m2": 1}


def format_bytes(n: int | None) -> str:
    if n is None:
        return "?"
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return str(n)


def _numel(shape) -> int | None:
    if shape is None or any(not isinstance(d, int) for d in shape):
        return None
    return math.prod(shape) if shape else 1


def _shape_text(shape) -> str:
    if shape is None:
        return "?"
    return "×".join("?" if d is None else str(d) for d in shape) or "scalar"


class WeightsTree(QWidget):
    """Tree of weights; ``weightSelected(name)`` when a leaf is picked, ``attachRequested()`` for the
    "Attach architecture…" button."""

    weightSelected = Signal(str)
    attachRequested = Signal()

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.model = QStandardItemModel(0, 4, self)
        self.model.setHorizontalHeaderLabels(["Name", "Shape", "Type", "Size"])
        self.view = QTreeView(self)
        self.view.setModel(self.model)
        self.view.setUniformRowHeights(True)
        self.view.setAlternatingRowColors(True)
        self.view.header().setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        self.view.header().setStretchLastSection(False)
        self.info = QLabel(self)
        self.attach_button = QPushButton("Attach architecture…", self)
        self.attach_button.setToolTip("Build a graph from these weights with your model class "
                                      "(runs that class's code)")
        self.attach_button.clicked.connect(self.attachRequested.emit)
        top = QHBoxLayout()
        top.addWidget(self.info, 1)
        top.addWidget(self.attach_button)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(4, 4, 4, 4)
        lay.addLayout(top)
        lay.addWidget(self.view)
        self.view.selectionModel().currentChanged.connect(self._current_changed)
        self.names: list[str] = []

    def set_weights(self, weights: list[dict]) -> None:
        """``weights``: ``[{name, dtype, shape}]`` with dotted names."""
        self.model.removeRows(0, self.model.rowCount())
        self.names = [w["name"] for w in weights]
        groups: dict[str, QStandardItem] = {}
        root = self.model.invisibleRootItem()
        total_params = 0
        total_bytes = 0
        for w in weights:
            parts = w["name"].split(".")
            parent = root
            prefix = ""
            for p in parts[:-1]:
                prefix = f"{prefix}.{p}" if prefix else p
                item = groups.get(prefix)
                if item is None:
                    item = QStandardItem(p)
                    item.setEditable(False)
                    row = [item] + [QStandardItem("") for _ in range(3)]
                    for r in row[1:]:
                        r.setEditable(False)
                    parent.appendRow(row)
                    groups[prefix] = item
                parent = item
            n = _numel(w.get("shape"))
            nbytes = None if n is None else n * DTYPE_SIZES.get(w.get("dtype") or "", 4)
            total_params += n or 0
            total_bytes += nbytes or 0
            leaf = QStandardItem(parts[-1])
            leaf.setData(w["name"], NAME_ROLE)
            leaf.setToolTip(w["name"])
            row = [leaf, QStandardItem(_shape_text(w.get("shape"))), QStandardItem(w.get("dtype") or "?"),
                   QStandardItem(format_bytes(nbytes))]
            for r in row:
                r.setEditable(False)
            row[3].setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
            parent.appendRow(row)
        self.info.setText(f"Weights only: {len(weights):,} tensors, {total_params:,} parameters, "
                          f"{format_bytes(total_bytes)}. No graph is stored in this file.")
        if len(weights) <= 200:
            self.view.expandAll()
        else:
            self.view.expandToDepth(1)
        for c in (1, 2, 3):
            self.view.resizeColumnToContents(c)

    def select_name(self, name: str) -> bool:
        """Select the leaf of that full name; False when absent."""
        hits = self.model.match(self.model.index(0, 0), NAME_ROLE, name, 1,
                                Qt.MatchFlag.MatchExactly | Qt.MatchFlag.MatchRecursive)
        if not hits:
            return False
        self.view.setCurrentIndex(hits[0])
        return True

    def _current_changed(self, cur, _prev) -> None:
        name = self.model.itemFromIndex(cur.siblingAtColumn(0)).data(NAME_ROLE) if cur.isValid() else None
        if name:
            self.weightSelected.emit(name)
