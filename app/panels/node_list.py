"""A plain list of a model's nodes: the stand-in canvas used when the graph view is not installed.

It offers the graph view's interface (``nodeSelected(int)``, ``drawn()``, ``select``, ``find``, ``fit``,
zoom and expand/collapse as no-ops) so the window works the same with either, and ``set_marked`` (the
find box's hits, shown in bold).
"""
from __future__ import annotations

from PySide6.QtCore import QTimer, Signal
from PySide6.QtWidgets import QListWidget, QListWidgetItem, QVBoxLayout, QWidget

__all__ = ["NodeList"]


class NodeList(QWidget):
    nodeSelected = Signal(int)
    drawn = Signal()

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.list = QListWidget(self)
        self.list.setUniformItemSizes(True)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(self.list)
        self.doc = None
        self.marked: list[int] = []
        self.list.currentRowChanged.connect(self.nodeSelected.emit)

    def set_doc(self, doc) -> None:
        self.doc = doc
        self.list.clear()
        n = doc.node_count
        for i in range(n):
            op, name = doc.node_label(i)
            QListWidgetItem(f"{op}    {name}", self.list)
        QTimer.singleShot(0, self.drawn.emit)

    def select(self, i: int) -> None:
        self.list.setCurrentRow(i)

    @property
    def selected(self) -> int:
        return self.list.currentRow()

    def find(self, text: str) -> list[int]:
        hits = self.doc.find(text) if self.doc is not None and text else []
        if hits:
            self.select(hits[0])
        return hits

    def set_marked(self, indices) -> None:
        """Show nodes ``indices`` in bold (the find box's hits); [] clears."""
        self._bold(self.marked, False)
        self.marked = [int(i) for i in indices]
        self._bold(self.marked, True)

    def _bold(self, indices: list[int], on: bool) -> None:
        for i in indices:
            it = self.list.item(i)
            if it is not None:
                f = it.font()
                f.setBold(on)
                it.setFont(f)

    def fit(self) -> None:
        pass

    def zoom_in(self) -> None:
        pass

    def zoom_out(self) -> None:
        pass

    def expand_all(self) -> None:
        pass

    def collapse_all(self) -> None:
        pass
