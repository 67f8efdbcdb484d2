"""The Layers page of the Parity dock: every layer pair of a per-layer comparison.

One row per :class:`converters.parity.LayerResult` (A's name, B's name, op, status, max abs error, the
error B's layer makes by itself on A's tensors, how the pair was matched, depth), sortable, filterable
by status; the first divergence is marked and "Go to first divergence" selects it. Above the table: the
error overlay's switch (a QAction the View menu shares) and its threshold, in decades over the
tolerance's atol. Beside the table: the selected pair's tensors (:class:`app.panels.parity_detail.
LayerDetail`: A, B and B - A as images, a histogram of B - A); below it, the pair in words (local against
inherited error, the nodes it maps to). The pair's actions (Reduce to a minimal repro, Copy names, Export
report, Save inputs) sit in the bar and the table's context menu. The window listens to ``layerSelected``
and selects the pair's nodes in the open graphs.
"""
from __future__ import annotations

import math

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QAction, QColor, QFont
from PySide6.QtWidgets import (QAbstractItemView, QComboBox, QHBoxLayout, QHeaderView, QLabel, QMenu, QPushButton,
                               QSlider, QSplitter, QTableWidget, QTableWidgetItem, QToolButton, QVBoxLayout, QWidget)

from .parity_detail import LayerDetail

__all__ = ["LayersView", "LAYER_COLUMNS", "STATUS_FILTERS", "STATUS_TEXT"]

LAYER_COLUMNS = ["#", "Layer A", "Layer B", "Op", "Status", "Max abs", "Local", "Method", "Depth"]
# filter label -> statuses shown (None: all)
STATUS_FILTERS: dict[str, tuple[str, ...] | None] = {
    "All layers": None, "Not within tolerance": ("source", "inherited", "layout"), "Wrong itself (source)": ("source",),
    "Inherited": ("inherited",), "Layout-only": ("layout",), "Not compared": ("missing",), "Within tolerance": ("ok",)}
STATUS_TEXT = {"ok": "ok", "source": "source", "inherited": "inherited", "layout": "layout", "missing": "not compared"}
_STATUS_FG = {"ok": "#1e8e3e", "source": "#c5221f", "inherited": "#b36200", "layout": "#8e24aa", "missing": "#70757a"}
_INDEX = Qt.ItemDataRole.UserRole          # column 0: the engine's layer index
_SORT = Qt.ItemDataRole.UserRole + 1       # the number a column sorts by


def _g(x) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "–"
    return format(float(x), ".3g")


class _Item(QTableWidgetItem):
    """Sorts by the number in ``_SORT`` when both cells have one (errors, depths), else by text."""

    def __lt__(self, other) -> bool:
        a, b = self.data(_SORT), other.data(_SORT)
        if a is not None and b is not None:
            return float(a) < float(b)
        return super().__lt__(other)


class LayersView(QWidget):
    """Signals: ``layerSelected(int)`` (a layer index of the result, -1 for none), ``overlayChanged()``
    (the overlay switched or its threshold moved), ``openBRequested()``, ``sideBySideRequested()`` (the
    compare view, A and B in step)."""

    layerSelected = Signal(int)
    overlayChanged = Signal()
    openBRequested = Signal()
    sideBySideRequested = Signal()

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.layers: list[dict] = []
        self.first: int | None = None
        self.atol = 1e-5
        self._by_index: dict[int, dict] = {}

        self.filter = QComboBox(self)
        self.filter.addItems(list(STATUS_FILTERS))
        self.filter.setToolTip("Show only layers of these statuses")
        self.filter.currentIndexChanged.connect(lambda _i: self._apply_filter())
        self.first_button = QPushButton("Go to first divergence", self)
        self.first_button.setIcon(self.style().standardIcon(self.style().StandardPixmap.SP_ArrowForward))
        self.first_button.setToolTip("Select the first layer that is wrong itself, in this table and in both graphs")
        self.first_button.clicked.connect(self.go_to_first)
        self.overlay_action = QAction("Error &overlay on graphs", self, checkable=True)
        self.overlay_action.setChecked(True)
        self.overlay_action.setStatusTip("Colour the nodes of both graphs by their layer's error")
        self.overlay_action.toggled.connect(lambda _on: self._overlay_toggled())
        self.overlay_button = QToolButton(self)
        self.overlay_button.setDefaultAction(self.overlay_action)
        self.overlay_button.setText("Overlay")
        self.overlay_button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextOnly)
        self.threshold_slider = QSlider(Qt.Orientation.Horizontal, self)
        self.threshold_slider.setRange(-6, 8)          # half decades over atol
        self.threshold_slider.setValue(0)
        self.threshold_slider.setMaximumWidth(110)
        self.threshold_slider.setToolTip("Layers whose max abs error is under this value are drawn green")
        self.threshold_slider.valueChanged.connect(lambda _v: self._threshold_moved())
        self.threshold_label = QLabel("", self)
        self.threshold_label.setMinimumWidth(52)
        self.open_b_button = QPushButton("Open model B", self)
        self.open_b_button.setToolTip("Open B in a tab to see the overlay and the selection in its graph too")
        self.open_b_button.clicked.connect(self.openBRequested.emit)
        self.open_b_button.hide()
        self.side_button = QPushButton("Side by side", self)
        self.side_button.setToolTip("A and B side by side in one view, in step through the layer pairs (opens B if needed)")
        self.side_button.clicked.connect(self.sideBySideRequested.emit)
        self.tensors = LayerDetail(self)
        self.reduce_action = QAction("&Reduce to a minimal repro", self)
        self.reduce_action.setStatusTip("Cut the smallest ONNX subgraph that still fails the same way at the selected "
                                        "failing pair, else the first divergence (repro.onnx with its inputs and "
                                        "expected values)")
        self.reduce_action.triggered.connect(lambda _c=False: self.tensors.reduce())
        self.copy_action = QAction("&Copy names in both models", self)
        self.copy_action.setStatusTip("Copy the selected pair's node and tensor names in A and B")
        self.copy_action.triggered.connect(lambda _c=False: self.tensors.copy_names(self.selected_layer()))
        self.export_action = QAction("&Export report (HTML + JSON)…", self)
        self.export_action.triggered.connect(lambda _c=False: self.tensors.export_report())
        self.inputs_action = QAction("&Save inputs used (.npz)…", self)
        self.inputs_action.triggered.connect(lambda _c=False: self.tensors.save_inputs())
        self.reduce_button = QToolButton(self)
        self.reduce_button.setDefaultAction(self.reduce_action)
        self.reduce_button.setText("Reduce…")
        self.reduce_button.setToolTip(self.reduce_action.statusTip())
        self.actions_menu = QMenu(self)
        for a in (self.reduce_action, self.copy_action, None, self.export_action, self.inputs_action):
            self.actions_menu.addSeparator() if a is None else self.actions_menu.addAction(a)
        self.actions_button = QToolButton(self)
        self.actions_button.setText("Actions")
        self.actions_button.setMenu(self.actions_menu)
        self.actions_button.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
        bar = QHBoxLayout()
        bar.setContentsMargins(0, 0, 0, 0)
        bar.addWidget(self.filter)
        bar.addWidget(self.first_button)
        bar.addSpacing(12)
        bar.addWidget(self.overlay_button)
        self.colour_label = QLabel("green up to", self)
        bar.addWidget(self.colour_label)
        bar.addWidget(self.threshold_slider)
        bar.addWidget(self.threshold_label)
        bar.addStretch(1)
        bar.addWidget(self.open_b_button)
        bar.addWidget(self.side_button)
        bar.addWidget(self.reduce_button)
        bar.addWidget(self.actions_button)

        self.table = QTableWidget(0, len(LAYER_COLUMNS), self)
        self.table.setHorizontalHeaderLabels(LAYER_COLUMNS)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.verticalHeader().hide()
        self.table.setWordWrap(False)
        hh = self.table.horizontalHeader()
        hh.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        hh.setStretchLastSection(False)
        self.table.itemSelectionChanged.connect(self._selection_changed)
        self.table.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.table.customContextMenuRequested.connect(self._table_menu)

        self.detail = QLabel("", self)
        self.detail.setWordWrap(True)
        self.detail.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.detail.setTextFormat(Qt.TextFormat.PlainText)

        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 2, 0, 0)
        self.split = QSplitter(Qt.Orientation.Horizontal, self)
        self.split.setChildrenCollapsible(False)
        self.split.addWidget(self.table)
        self.split.addWidget(self.tensors)
        self.split.setStretchFactor(0, 2)
        self.split.setStretchFactor(1, 3)
        lay.addLayout(bar)
        lay.addWidget(self.split, 1)
        lay.addWidget(self.detail)
        self._threshold_moved(emit=False)
        self._update_actions()

    # -- filling -----------------------------------------------------------------------------------
    def set_layers(self, layers: list[dict], first: dict | None, atol: float) -> None:
        """Show a result's ``layers`` (LayerResult dicts) with its ``layer_first``; ``atol`` scales the
        threshold."""
        self.tensors.set_result(None)  # the window hands the new result's files over (set_result)
        self.layers = list(layers)
        self._by_index = {int(r["index"]): r for r in self.layers}
        self.first = int(first["index"]) if first else None
        self.atol = float(atol) if atol and atol > 0 else 1e-12
        t = self.table
        t.setSortingEnabled(False)
        t.blockSignals(True)
        t.clearContents()
        t.setRowCount(len(self.layers))
        bold = QFont(t.font())
        bold.setBold(True)
        dark = self.palette().window().color().lightness() < 128
        for row, r in enumerate(self.layers):
            k = int(r["index"])
            is_first = k == self.first
            status = r.get("status", "missing")
            local = r.get("local_max_abs")
            cells = [(str(k), k), (r.get("a", ""), None), (r.get("b", ""), None),
                     (r.get("op") or "", None),
                     (("▶ first · " if is_first else "") + STATUS_TEXT.get(status, status), None),
                     (_g(r.get("max_abs")), _num(r.get("max_abs"))),
                     (_g(local) + ("" if local is None else (" ✓" if r.get("local_passed") else " ✗")), _num(local)),
                     (r.get("method", ""), None), (str(r.get("depth", -1)), r.get("depth", -1))]
            for c, (text, num) in enumerate(cells):
                it = _Item(text)
                if num is not None:
                    it.setData(_SORT, float(num))
                if c == 0:
                    it.setData(_INDEX, k)
                if c in (0, 5, 6, 8):
                    it.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
                if c == 4:
                    fg = QColor(_STATUS_FG.get(status, "#70757a"))
                    it.setForeground(fg.lighter(150) if dark else fg)
                    it.setFont(bold)
                    if r.get("reason"):
                        it.setToolTip(r["reason"])
                if c in (1, 2):
                    it.setToolTip(f"node {r.get('node' if c == 1 else 'node_b') or '?'}"
                                  + (f" · scope {r['scope']}" if c == 1 and r.get("scope") else ""))
                if c == 6:
                    it.setToolTip("B's layer re-run alone on A's tensors: the error it makes by itself "
                                  "(✗: outside tolerance)" if local is not None else
                                  "not re-run alone (the runtime cannot, or the layer matches)")
                if is_first and c != 4:
                    it.setFont(bold)
                t.setItem(row, c, it)
        t.blockSignals(False)
        t.setSortingEnabled(True)
        t.sortItems(0, Qt.SortOrder.AscendingOrder)
        t.resizeColumnsToContents()
        for c in (1, 2):  # long scoped names: keep the table's other columns in view
            t.setColumnWidth(c, min(t.columnWidth(c), 260))
        self._apply_filter()
        self.first_button.setEnabled(self.first is not None)
        self.detail.setText(self._summary())
        self._threshold_moved(emit=False)

    def _summary(self) -> str:
        counts: dict[str, int] = {}
        for r in self.layers:
            counts[r.get("status", "missing")] = counts.get(r.get("status", "missing"), 0) + 1
        parts = [f"{counts[s]} {STATUS_TEXT[s]}" for s in ("source", "inherited", "layout", "ok", "missing")
                 if counts.get(s)]
        head = f"{len(self.layers)} layer pairs: " + ", ".join(parts) + "."
        f = self._by_index.get(self.first) if self.first is not None else None
        if f is not None:
            head += f" The first that is wrong itself: '{f['a']}'" + (f" [{f['op']}]" if f.get("op") else "") + "."
        return head

    # -- filtering and selection -------------------------------------------------------------------
    def statuses_shown(self) -> tuple[str, ...] | None:
        return STATUS_FILTERS[self.filter.currentText()]

    def set_filter(self, label: str) -> None:
        self.filter.setCurrentText(label)

    def _apply_filter(self) -> None:
        show = self.statuses_shown()
        for row in range(self.table.rowCount()):
            r = self._by_index.get(self.layer_at(row))
            self.table.setRowHidden(row, show is not None and (r is None or r.get("status") not in show))
        k = self.selected_layer()
        if k >= 0:
            self._scroll_to(k)

    def layer_at(self, row: int) -> int:
        """The layer index shown in table row ``row`` (after sorting), -1 when none."""
        it = self.table.item(row, 0)
        v = it.data(_INDEX) if it is not None else None
        return int(v) if v is not None else -1

    def row_of(self, index: int) -> int:
        return next((row for row in range(self.table.rowCount()) if self.layer_at(row) == index), -1)

    def visible_layers(self) -> list[int]:
        return [self.layer_at(r) for r in range(self.table.rowCount()) if not self.table.isRowHidden(r)]

    def first_row(self) -> int:
        """The table row of the first divergence (-1 when there is none)."""
        return self.row_of(self.first) if self.first is not None else -1

    def cell(self, row: int, column: str) -> str:
        it = self.table.item(row, LAYER_COLUMNS.index(column))
        return it.text() if it is not None else ""

    def selected_layer(self) -> int:
        rows = self.table.selectionModel().selectedRows()
        return self.layer_at(rows[0].row()) if rows else -1

    def select_layer(self, index: int, emit: bool = True) -> bool:
        """Select the row of layer ``index`` (shown even when the filter hid it); ``emit``: tell the
        window (which selects the nodes), else only the table and the detail follow."""
        row = self.row_of(index)
        if row < 0:
            return False
        if self.table.isRowHidden(row):
            self.filter.setCurrentText("All layers")
        if not emit:
            self.table.blockSignals(True)
        self.table.selectRow(row)
        self._scroll_to(index)
        if not emit:
            self.table.blockSignals(False)
            self.detail.setText(self.describe(index))
            self._show_tensors(index)
        return True

    def _scroll_to(self, index: int) -> None:
        row = self.row_of(index)
        if row >= 0:
            self.table.scrollToItem(self.table.item(row, 0), QAbstractItemView.ScrollHint.PositionAtCenter)

    def go_to_first(self) -> bool:
        """Select the first divergence (and so its nodes in the open graphs)."""
        if self.first is None:
            return False
        if self.selected_layer() == self.first:
            self._scroll_to(self.first)
            self.layerSelected.emit(self.first)      # again: centre the graphs on it
            return True
        return self.select_layer(self.first)

    def _selection_changed(self) -> None:
        k = self.selected_layer()
        self.detail.setText(self.describe(k) if k >= 0 else self._summary())
        self._show_tensors(k)
        self.layerSelected.emit(k)

    def _show_tensors(self, index: int) -> None:
        self._update_actions()
        if index < 0:
            self.tensors.show_layer(-1)
        elif index != self.tensors.index or self.tensors.info is None:
            self.tensors.show_layer(index)

    def set_result(self, result: dict | None, params: dict | None = None) -> None:
        """The comparison behind the layers (its files: the tensors, report and inputs): shows the
        selected pair's tensors."""
        self.tensors.set_result(result if result and result.get("layers") else None, params)
        self._show_tensors(self.selected_layer())

    def _update_actions(self) -> None:
        k = self.selected_layer()
        r = self._by_index.get(k)
        t = self.tensors
        self.reduce_action.setEnabled(t.can_reduce())
        k_red = t.reduce_target(k)
        at = self._by_index.get(k_red if k_red is not None else self.first)
        self.reduce_action.setToolTip("Cut the smallest ONNX subgraph that still fails the same way at "
                                      + ("the selected pair" if k_red is not None else "the first divergence")
                                      + (f" ('{at['a']}')" if at else ""))
        self.copy_action.setEnabled(r is not None)
        html, js = t.report_files()
        self.export_action.setEnabled(bool(html or js))
        self.inputs_action.setEnabled(t.inputs_file() is not None)

    def _table_menu(self, pos) -> None:
        row = self.table.rowAt(pos.y())
        if row >= 0 and self.layer_at(row) != self.selected_layer():
            self.table.selectRow(row)
        self._update_actions()
        self.actions_menu.popup(self.table.viewport().mapToGlobal(pos))

    def describe(self, index: int) -> str:
        """The pair in words: where it is, its status, its error against the tolerance, local error."""
        r = self._by_index.get(index)
        if r is None:
            return ""
        op = f" [{r['op']}]" if r.get("op") else ""
        op_b = f" [{r['op_b']}]" if r.get("op_b") and r.get("op_b") != r.get("op") else ""
        lines = [f"A '{r['a']}'{op} (node {r.get('node') or '?'}) ↔ B '{r['b']}'{op_b} (node {r.get('node_b') or '?'}), "
                 f"paired by {r.get('method', '?')}" + (f", B transposed {r['perm']}" if r.get("perm") else "")]
        status = r.get("status")
        m = r.get("max_abs")
        what = {"ok": "within tolerance", "source": "wrong itself: every paired layer feeding it matches",
                "inherited": "inherits error from a layer upstream", "layout":
                "a layout-only op outside tolerance while its inputs match: check its axis or permutation",
                "missing": "not compared" + (f" ({r['reason']})" if r.get("reason") else "")}.get(status, status)
        line = ("▶ first divergence — " if index == self.first else "") + what
        if m is not None:
            lv = math.log10(m / self.atol) if m > 0 else float("-inf")
            over = "exact" if m == 0 else (f"{lv:+.1f} decades against atol {self.atol:g}")
            line += f". Max abs {m:.3g} ({over})"
            if r.get("cosine") is not None:
                line += f", cosine {r['cosine']:.6f}"
        lines.append(line)
        loc = r.get("local_max_abs")
        if loc is not None and m is not None:
            own = (f"Re-run alone on A's tensors, B's layer is off by {loc:.3g} (its local error): ")
            if not r.get("local_passed"):
                own += "its own op is wrong" + (", and more arrives from upstream" if status == "inherited" else "")
            else:
                own += f"its own op is within tolerance, so the {m:.3g} it shows is inherited from upstream"
            lines.append(own)
        ups = [self._by_index.get(u) for u in r.get("upstream") or []]
        ups = [u for u in ups if u is not None]
        if ups:
            lines.append("Fed by: " + ", ".join(f"'{u['a']}' ({STATUS_TEXT.get(u['status'], u['status'])})"
                                                for u in ups[:4]) + (" …" if len(ups) > 4 else ""))
        return "\n".join(lines)

    # -- overlay ------------------------------------------------------------------------------------
    @property
    def overlay_on(self) -> bool:
        return self.overlay_action.isChecked()

    @property
    def threshold(self) -> float:
        """Decades over atol under which a layer is drawn green."""
        return self.threshold_slider.value() / 2.0

    def set_threshold(self, decades: float) -> None:
        self.threshold_slider.setValue(int(round(decades * 2)))

    def _threshold_moved(self, emit: bool = True) -> None:
        self.threshold_label.setText(f"{self.atol * 10 ** self.threshold:.0e}")
        self.threshold_label.setToolTip(f"{self.threshold:+.1f} decades against the tolerance's atol {self.atol:g}")
        if emit:
            self.overlayChanged.emit()

    def _overlay_toggled(self) -> None:
        on = self.overlay_on
        for w in (self.threshold_slider, self.threshold_label, self.colour_label):
            w.setEnabled(on)
        self.overlayChanged.emit()

    def set_b_open(self, is_open: bool) -> None:
        self.open_b_button.setVisible(not is_open and bool(self.layers))


def _num(x):
    if x is None:
        return None
    try:
        v = float(x)
    except (TypeError, ValueError):
        return None
    return v if not math.isnan(v) else None
