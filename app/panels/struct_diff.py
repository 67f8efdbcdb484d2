"""The structural diff in the window: the dialog that picks B, the list of what changed, and the marks it
puts on both graphs.

The diff itself is the engine's (:mod:`converters.parity.structdiff`, run as the ``struct_diff`` worker
task); this module only shows its entries: changed, added and removed nodes (unchanged ones on request),
filtered by status and by text, and a :class:`DiffOverlay` per graph that colours them (changed amber,
added or removed red, the rest neutral) through the graph view's overlay mechanism.
"""
from __future__ import annotations

import os

import numpy as np
from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QBrush, QColor
from PySide6.QtWidgets import (QCheckBox, QDialog, QDialogButtonBox, QFormLayout, QHBoxLayout,
                               QHeaderView, QLabel, QLineEdit, QProgressBar, QPushButton, QTreeWidget, QTreeWidgetItem,
                               QVBoxLayout, QWidget)

from .compare_dialog import ModelPairChoice

__all__ = ["StructDiffDialog", "StructDiffPanel", "DiffOverlay", "DiffLegend", "show_diff_legend", "DIFF_COLORS", "STATUS_LABELS"]

# fills of the overlay's bins (the graph view paints bins with the error overlay's colours, see
# app.graph_view.overlay.level_colors): changed → an amber one, added / removed → the red one
_BIN = {"changed": 2, "added": 6, "removed": 6}
DIFF_COLORS = {"changed": QColor("#ffd480"), "added": QColor("#e0457b"), "removed": QColor("#e0457b")}
STATUS_LABELS = {"changed": "changed", "added": "added in B", "removed": "removed from A", "same": "unchanged"}
_MARK = {"changed": "~", "added": "+", "removed": "−", "same": "="}


class DiffOverlay:
    """What the graph view's overlay painting needs (as :class:`~app.graph_view.overlay.ErrorOverlay`), for
    one graph of a structural diff: ``entry_node[k]`` the pack node of entry ``k`` (-1 where this graph
    has none), ``statuses[k]`` its status. ``node_of_layer`` maps an entry to its node, ``layer`` a node
    to its entry (-1: none)."""

    legend_title = "structural diff"
    legend_outlines = False

    def __init__(self, n_nodes: int, entry_node, statuses: list[str], *, side: str):
        from app.graph_view.overlay import BIN_MISSING

        self.n_nodes = int(n_nodes)
        self.side = side
        node = np.asarray(entry_node, np.int64)
        ok = (node >= 0) & (node < self.n_nodes)
        self.bin = np.full(self.n_nodes, -1, np.int8)
        self.status = np.full(self.n_nodes, -1, np.int8)     # no outlines: the fill says it
        self.level = np.full(self.n_nodes, np.nan)
        self.layer = np.full(self.n_nodes, -1, np.int64)
        self.diff_status: list[str | None] = [None] * self.n_nodes
        for k in np.flatnonzero(ok).tolist():
            i = int(node[k])
            s = statuses[k]
            self.layer[i] = k
            self.diff_status[i] = s
            if s in _BIN:
                self.bin[i] = _BIN[s]
        self._missing = BIN_MISSING
        self.node_of_layer = {int(k): int(node[k]) for k in np.flatnonzero(ok).tolist()}
        self.first_node = -1
        self.atol = 1.0
        self.threshold = 0.0

    def set_threshold(self, _decades: float) -> None:
        pass

    def colored_nodes(self) -> np.ndarray:
        return np.flatnonzero(self.bin >= 0)

    def status_of(self, node: int) -> str | None:
        return self.diff_status[node] if 0 <= node < self.n_nodes else None

    def color_of(self, node: int) -> QColor | None:
        from app.graph_view.overlay import level_colors

        b = int(self.bin[node]) if 0 <= node < self.n_nodes else -1
        return level_colors()[b] if b >= 0 else None

    def legend(self) -> list[tuple[QColor, str]]:
        """Empty: the error overlay's key does not describe these colours; :class:`DiffLegend` does."""
        return []

    def key(self) -> list[tuple[QColor, str]]:
        from app.graph_view.overlay import level_colors

        cols = level_colors()
        return [(cols[_BIN["changed"]], "changed"),
                (cols[_BIN["removed"]], "removed from A" if self.side == "a" else "added in B")]

    def group_bins(self, group_parent: np.ndarray, node_group: np.ndarray) -> np.ndarray:
        """The strongest mark inside each group (removed/added over changed), for collapsed group boxes."""
        from app.graph_view.overlay import worst_per_group

        G = len(group_parent)
        if G == 0 or not (self.bin >= 0).any():
            return np.full(G, -1, np.int8)
        return worst_per_group(self.bin.astype(np.int16), group_parent, node_group).astype(np.int8)


class DiffLegend(QWidget):
    """The diff marks' key, in the bottom-left corner of a graph's canvas (where the error overlay's key
    sits when that one is shown instead)."""

    def __init__(self, viewport: QWidget):
        super().__init__(viewport)
        self.setObjectName("diffLegend")
        self.setAttribute(Qt.WidgetAttribute.WA_TransparentForMouseEvents, True)
        self.rows: list[tuple[QColor, str]] = []
        viewport.installEventFilter(self)

    def set_overlay(self, ov) -> None:
        self.rows = ov.key() if ov is not None else []
        if not self.rows:
            self.hide()
            return
        fm = self.fontMetrics()
        w = max(fm.horizontalAdvance(t) for t in ["structural diff"] + [t for _c, t in self.rows]) + 52
        self.resize(w, (len(self.rows) + 1) * (fm.height() + 2) + 12)
        self._place()
        self.show()
        self.raise_()

    def _place(self) -> None:
        p = self.parentWidget()
        if p is not None:
            self.move(10, max(0, p.height() - self.height() - 10))

    def eventFilter(self, obj, ev) -> bool:
        from PySide6.QtCore import QEvent

        if ev.type() == QEvent.Type.Resize and self.rows:
            self._place()
        return False

    def paintEvent(self, _event) -> None:
        from PySide6.QtGui import QPainter

        from app.graph_view import palette

        if not self.rows:
            return
        p = QPainter(self)
        dark = palette.is_dark(self.palette())
        p.fillRect(self.rect(), QColor(30, 30, 34, 225) if dark else QColor(250, 250, 252, 235))
        p.setPen(QColor("#8d949e"))
        p.drawRect(self.rect().adjusted(0, 0, -1, -1))
        text = QColor("#e6e9ef") if dark else QColor("#1f2328")
        lh = self.fontMetrics().height() + 2
        from app.graph_view.view import paint_key

        paint_key(p, self.width(), 6, lh, text, "structural diff", self.rows)
        p.end()


def show_diff_legend(canvas, ov) -> None:
    """Show (or hide, with None) the diff's key on a graph canvas (a GraphView)."""
    viewport = canvas.canvas.viewport()
    legend = viewport.findChild(DiffLegend, "diffLegend")
    if legend is None:
        if ov is None:
            return
        legend = DiffLegend(viewport)
    legend.set_overlay(ov)


class StructDiffDialog(ModelPairChoice, QDialog):
    """Model A (an open tab) and model B (another tab or a file), as the Compare dialog picks them."""

    def __init__(self, choices: list[tuple[str, str]], current_a: str | None = None, parent: QWidget | None = None,
                 start_dir: str = ""):
        super().__init__(parent)
        self.setWindowTitle("Structural diff")
        self.start_dir = start_dir
        lay = QVBoxLayout(self)
        intro = QLabel("Lists the nodes added, removed or changed (op, attributes, shapes, weights) between two "
                       "models, read from their files: neither is run.", self)
        intro.setWordWrap(True)
        lay.addWidget(intro)
        form = QFormLayout()
        brow = self._model_pair(choices, choices, current_a)
        form.addRow("Model A", self.a_combo)
        form.addRow("Model B", brow)
        lay.addLayout(form)
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel, self)
        self.buttons.button(QDialogButtonBox.StandardButton.Ok).setText("Diff")
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        lay.addWidget(self.buttons)
        self.resize(max(self.sizeHint().width(), 560), self.sizeHint().height())


class StructDiffPanel(QWidget):
    """The diff's entries as a list. Signals: ``entrySelected(int)`` (an entry index of the result),
    ``marksChanged()`` (the result or "Mark on graphs" changed), ``openRequested(str)`` (open a side)."""

    entrySelected = Signal(int)
    marksChanged = Signal()
    openRequested = Signal(str)

    COLUMNS = ("", "A", "B", "op", "what changed", "paired by")

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.result: dict | None = None
        self.job = None
        self._items: dict[int, QTreeWidgetItem] = {}
        lay = QVBoxLayout(self)
        lay.setContentsMargins(6, 4, 6, 4)
        top = QHBoxLayout()
        self.title = QLabel("No structural diff yet: Model ▸ Structural diff…", self)
        self.title.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        top.addWidget(self.title, 1)
        self.progress = QProgressBar(self)
        self.progress.setMaximumWidth(180)
        self.progress.setMaximumHeight(16)
        self.cancel_button = QPushButton("Cancel", self)
        self.cancel_button.clicked.connect(self.cancel)
        for w in (self.progress, self.cancel_button):
            top.addWidget(w)
            w.hide()
        lay.addLayout(top)
        bar = QHBoxLayout()
        self.filters: dict[str, QCheckBox] = {}
        for s in ("changed", "added", "removed", "same"):
            cb = QCheckBox(STATUS_LABELS[s], self)
            cb.setChecked(s != "same")
            cb.toggled.connect(lambda _on: self._refill())
            self.filters[s] = cb
            bar.addWidget(cb)
        self.find = QLineEdit(self)
        self.find.setPlaceholderText("filter by name, op or change")
        self.find.setClearButtonEnabled(True)
        self.find.textChanged.connect(lambda _t: self._refill())
        bar.addWidget(self.find, 1)
        self.mark = QCheckBox("Mark on graphs", self)
        self.mark.setChecked(True)
        self.mark.setToolTip("Colour the changed (amber), added and removed (red) nodes on the open graphs of A "
                             "and B")
        self.mark.toggled.connect(lambda _on: self.marksChanged.emit())
        bar.addWidget(self.mark)
        lay.addLayout(bar)
        self.tree = QTreeWidget(self)
        self.tree.setObjectName("structDiffList")
        self.tree.setColumnCount(len(self.COLUMNS))
        self.tree.setHeaderLabels(list(self.COLUMNS))
        self.tree.setRootIsDecorated(False)
        self.tree.setUniformRowHeights(True)
        self.tree.setAlternatingRowColors(True)
        h = self.tree.header()
        h.setStretchLastSection(False)
        for c, mode in enumerate((QHeaderView.ResizeMode.ResizeToContents, QHeaderView.ResizeMode.Interactive,
                                  QHeaderView.ResizeMode.Interactive, QHeaderView.ResizeMode.ResizeToContents,
                                  QHeaderView.ResizeMode.Stretch, QHeaderView.ResizeMode.ResizeToContents)):
            h.setSectionResizeMode(c, mode)
        self.tree.setColumnWidth(1, 200)
        self.tree.setColumnWidth(2, 200)
        self.tree.currentItemChanged.connect(self._current_changed)
        lay.addWidget(self.tree, 1)
        self.note = QLabel("", self)
        self.note.setWordWrap(True)
        self.note.hide()
        lay.addWidget(self.note)

    # -- the job ---------------------------------------------------------------------------------------
    @property
    def running(self) -> bool:
        return self.job is not None and self.job.running

    def watch(self, job) -> None:
        """Show ``job`` (a ``struct_diff`` QtJob) running; its result fills the list."""
        self.job = job
        self.result = None
        self.tree.clear()
        self._items.clear()
        self.note.hide()
        a, b = (os.path.basename(str(job.params.get(k, "")).rstrip(os.sep)) for k in ("a", "b"))
        self.title.setText(f"Reading {a} and {b}…")
        self.progress.setRange(0, 0)
        self.progress.show()
        self.cancel_button.show()
        self.marksChanged.emit()
        job.progress.connect(self._progress)
        job.finished.connect(lambda res, j=job: self._finished(j, res))
        job.failed.connect(lambda msg, _k, j=job: self._failed(j, msg))

    def cancel(self) -> None:
        if self.job is not None:
            self.job.cancel()

    def _progress(self, fraction, message: str) -> None:
        if fraction is not None:
            self.progress.setRange(0, 1000)
            self.progress.setValue(int(float(fraction) * 1000))
        if message:
            self.progress.setToolTip(message)

    def _finished(self, job, res: dict) -> None:
        if job is not self.job:
            return
        self.progress.hide()
        self.cancel_button.hide()
        self.set_result(res)

    def _failed(self, job, message: str) -> None:
        if job is not self.job:
            return
        self.progress.hide()
        self.cancel_button.hide()
        self.title.setText("Structural diff " + ("cancelled" if job.state == "cancelled" else f"failed: {message}"))
        self.marksChanged.emit()

    # -- the list --------------------------------------------------------------------------------------
    def set_result(self, res: dict) -> None:
        self.result = res
        c = res.get("counts") or {}
        a = os.path.basename(str(res.get("a", "")).rstrip(os.sep))
        b = os.path.basename(str(res.get("b", "")).rstrip(os.sep))
        if res.get("identical"):
            head = f"{a} and {b}: identical ({c.get('same', 0):,} nodes)"
        else:
            head = (f"{a} → {b}: {c.get('changed', 0):,} changed, {c.get('added', 0):,} added, "
                    f"{c.get('removed', 0):,} removed, {c.get('same', 0):,} unchanged")
        self.title.setText(head)
        self.title.setToolTip(f"A: {res.get('a')} ({res.get('format_a')})\nB: {res.get('b')} ({res.get('format_b')})")
        notes = list(res.get("notes") or [])
        self.note.setText("\n".join(notes))
        self.note.setVisible(bool(notes))
        self._refill()
        self.marksChanged.emit()

    def entries(self) -> list[dict]:
        return list((self.result or {}).get("entries") or [])

    def visible_entries(self) -> list[int]:
        """Indices of the entries the list shows now (after the filters)."""
        out = []
        for k in range(self.tree.topLevelItemCount()):
            it = self.tree.topLevelItem(k)
            out.append(int(it.data(0, Qt.ItemDataRole.UserRole)))
        return out

    def _refill(self) -> None:
        cur = self.selected_entry()
        self.tree.blockSignals(True)
        self.tree.clear()
        self._items.clear()
        text = self.find.text().strip().lower()
        rows = []
        for k, e in enumerate(self.entries()):
            st = e.get("status", "same")
            if not self.filters[st].isChecked():
                continue
            cols = [_MARK.get(st, "?"), e.get("a") or "", e.get("b") or "", _op(e), _what(e), e.get("method") or ""]
            if text and not any(text in str(x).lower() for x in cols[1:]):
                continue
            it = QTreeWidgetItem(cols)
            it.setData(0, Qt.ItemDataRole.UserRole, k)
            it.setToolTip(0, STATUS_LABELS.get(st, st))
            it.setToolTip(4, "\n".join(_change_lines(e)) or _what(e))
            for c in (1, 2):
                if cols[c]:
                    it.setToolTip(c, cols[c])
            if st in DIFF_COLORS:
                it.setBackground(0, QBrush(DIFF_COLORS[st]))
                it.setForeground(0, QBrush(QColor("#1f2328")))
            it.setTextAlignment(0, Qt.AlignmentFlag.AlignCenter)
            rows.append(it)
            self._items[k] = it
        self.tree.addTopLevelItems(rows)
        self.tree.blockSignals(False)
        if cur is not None and cur in self._items:
            self.select_entry(cur, emit=False)

    def selected_entry(self) -> int | None:
        it = self.tree.currentItem()
        return int(it.data(0, Qt.ItemDataRole.UserRole)) if it is not None else None

    def select_entry(self, k: int, *, emit: bool = True) -> bool:
        """Make entry ``k`` the current row (shown even when a filter hid it); ``entrySelected`` unless not
        ``emit``."""
        if k not in self._items:
            e = self.entries()[k] if 0 <= k < len(self.entries()) else None
            if e is None:
                return False
            self.filters[e.get("status", "same")].setChecked(True)
            self.find.clear()
            if k not in self._items:
                return False
        it = self._items[k]
        if not emit:
            self.tree.blockSignals(True)
        self.tree.setCurrentItem(it)
        self.tree.scrollToItem(it)
        if not emit:
            self.tree.blockSignals(False)
        return True

    def _current_changed(self, cur, _prev) -> None:
        if cur is not None:
            self.entrySelected.emit(int(cur.data(0, Qt.ItemDataRole.UserRole)))


def _op(e: dict) -> str:
    a, b = e.get("op_a") or "", e.get("op_b") or ""
    return f"{a} → {b}" if a and b and a != b else (a or b)


def _what(e: dict) -> str:
    s = e.get("summary")
    if s:
        return str(s)
    return "; ".join(_change_lines(e)) or STATUS_LABELS.get(e.get("status", ""), "")


def _change_lines(e: dict) -> list[str]:
    from converters.parity.structdiff import Change

    out = []
    for c in e.get("changes") or []:
        try:
            out.append(Change(**c).text())
        except TypeError:
            out.append(str(c))
    return out
