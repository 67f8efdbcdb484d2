"""The Parity panel: how two models' outputs differ, from the worker task ``compare``.

The comparison runs in a worker process (:mod:`converters.compare.engine`); this panel shows its result:
a PASS/FAIL badge with the tolerance preset, one table row per output (errors in the output's units,
relative errors unitless), each side's runtime, device and median time, the warnings, and two plots of
the selected output: the engine's own histogram of log10 |A - B| (``OutputDiff.histogram``) and A against
B from the result's ``arrays.npz`` (at most :data:`SCATTER_POINTS` points); the figures come from
:mod:`converters.compare.plots`, shared with the HTML report. pyqtgraph is imported when the first
result arrives.

A per-layer result (``per_layer``) adds the Layers page (:class:`app.panels.parity_layers.LayersView`)
and a third plot, the error of every compared layer against its depth in A (log scale, the tolerance's
atol as a line, the first divergence starred). A comparison that failed without it offers "Find where
they part ways": the same comparison again, layer by layer.
"""
from __future__ import annotations

import os
import weakref
from typing import Any

import numpy as np
from PySide6.QtCore import Qt, QUrl, Signal
from PySide6.QtGui import QDesktopServices
from PySide6.QtWidgets import (QAbstractItemView, QHBoxLayout, QHeaderView, QLabel, QProgressBar,
                               QPushButton, QSplitter, QTableWidget, QTableWidgetItem, QTabWidget, QVBoxLayout,
                               QWidget)

from converters.errors import ErrorKind
from converters.compare.params import compare_params
from converters.compare.plots import SCATTER_POINTS, histogram_bars, paired, scatter_sample, sides

from ..jobs import JobRegistry, QtJob, show_fraction
from .parity_layers import LayersView

__all__ = ["ParityPanel", "COLUMNS", "SCATTER_POINTS", "compare_params", "depth_points", "node_for_value",
           "nodes_for_layers", "value_producers"]

# table columns: header -> how the row's OutputDiff dict is shown
COLUMNS = ["Output A", "Output B", "Shape", "Verdict", "Max abs", "Mean abs", "P99 abs", "Max rel",
           "Cosine", "Mismatches", "Worst index", "Top-1"]


def _g(x: Any, spec: str = ".3g") -> str:
    if x is None:
        return "–"
    if isinstance(x, str):
        return x
    return format(float(x), spec)


def depth_points(layers: list[dict], atol: float) -> tuple[np.ndarray, np.ndarray, list[int], float]:
    """The error-vs-depth plot's points: (x = depth in A, y = max abs error, layer indices, floor), one
    per compared layer (those with a ``max_abs``), in depth order. Layers the engine could not place
    (depth -1) come after the deepest one; exact matches (0) sit at ``floor`` (atol / 1e4, or lower when
    a real error is smaller) so that a log axis can show them."""
    rows = [r for r in layers if r.get("max_abs") is not None and np.isfinite(float(r["max_abs"]))]
    deepest = max((int(r.get("depth", -1)) for r in rows), default=-1)
    xs = [int(r.get("depth", -1)) if int(r.get("depth", -1)) >= 0 else deepest + 1 for r in rows]
    order = sorted(range(len(rows)), key=lambda k: (xs[k], int(rows[k]["index"])))
    x = np.array([xs[k] for k in order], np.float64)
    y = np.array([float(rows[k]["max_abs"]) for k in order], np.float64)
    pos = y[y > 0]
    floor = min((atol if atol > 0 else 1e-12) * 1e-4, float(pos.min()) / 10 if pos.size else np.inf)
    return x, np.maximum(y, floor), [int(rows[k]["index"]) for k in order], float(floor)


class ParityPanel(QWidget):
    """Shows one comparison at a time. :meth:`start` runs one; :meth:`show_result` shows a result dict.

    Signals: ``started(QtJob)``, ``resultShown(dict)``, ``divergenceRequested(path_a, name_a, path_b,
    name_b)`` when the user asks to see where the numbers first part ways.
    """

    started = Signal(object)
    resultShown = Signal(dict)
    divergenceRequested = Signal(str, str, str, str)
    layerSelected = Signal(int)

    def __init__(self, registry: JobRegistry, parent: QWidget | None = None):
        super().__init__(parent)
        self.registry = registry
        self.job: QtJob | None = None
        self.params: dict | None = None
        self.title = ""
        self.result: dict | None = None
        self.arrays: dict[str, np.ndarray] = {}
        self.diffs: list[dict] = []
        self.hist_plot = self.scatter_plot = None
        self.hist_item = self.scatter_item = self.diag_item = None
        self.depth_plot = self.depth_item = self.depth_first_item = self.depth_tol_line = None
        self.depth_threshold_line = self.depth_sel_item = None
        self.depth_layers: list[int] = []       # layer index of each point of the depth plot
        self.first_divergence: dict | None = None

        self.badge = QLabel("", self)
        self.badge.setObjectName("parityBadge")
        self.badge.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.badge.setMinimumWidth(64)
        self.headline = QLabel("No comparison yet. Convert a model, or use Model ▸ Compare with…", self)
        self.headline.setWordWrap(True)
        self.headline.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.bar = QProgressBar(self)
        self.bar.setMaximumWidth(180)
        self.bar.setMaximumHeight(16)
        self.cancel_button = QPushButton("Cancel", self)
        self.rerun_button = QPushButton("Re-run", self)
        self.report_button = QPushButton("Open HTML report", self)
        self.find_button = QPushButton("Find where they part ways", self)
        self.find_button.setToolTip("Run the same comparison again layer by layer: the first layer that is "
                                    "wrong itself, and the layers that only inherit its error")
        self.find_button.clicked.connect(self.find_divergence)
        self.find_button.hide()
        self.cancel_button.clicked.connect(self.cancel)
        self.rerun_button.clicked.connect(self.rerun)
        self.report_button.clicked.connect(self.open_report)
        top = QHBoxLayout()
        top.setContentsMargins(0, 0, 0, 0)
        top.addWidget(self.badge)
        top.addWidget(self.headline, 1)
        for w in (self.bar, self.cancel_button, self.find_button, self.rerun_button, self.report_button):
            top.addWidget(w)

        self.sides = QLabel("", self)
        self.sides.setWordWrap(True)
        self.sides.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.divergence = QLabel("", self)
        self.divergence.setWordWrap(True)
        self.divergence_button = QPushButton("Show in graph", self)
        self.divergence_button.setToolTip("Select the first tensor that differs in the open model's graph")
        self.divergence_button.clicked.connect(self._request_divergence)
        drow = QHBoxLayout()
        drow.setContentsMargins(0, 0, 0, 0)
        drow.addWidget(self.divergence, 1)
        drow.addWidget(self.divergence_button)
        self.warnings = QLabel("", self)
        self.warnings.setWordWrap(True)
        self.warnings.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)

        self.table = QTableWidget(0, len(COLUMNS), self)
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.verticalHeader().hide()
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.table.itemSelectionChanged.connect(self._row_changed)

        self.plots = QWidget(self)
        self.plots_layout = QHBoxLayout(self.plots)
        self.plots_layout.setContentsMargins(0, 0, 0, 0)
        self.plots.hide()

        self.layers = LayersView(self)
        self.layers.layerSelected.connect(self._layer_selected)
        self.layers.overlayChanged.connect(self._update_depth_threshold)
        self.pages = QTabWidget(self)
        self.pages.setDocumentMode(True)
        outputs_page = QWidget(self)
        ol = QVBoxLayout(outputs_page)
        ol.setContentsMargins(0, 2, 0, 0)
        ol.addWidget(self.table, 1)
        ol.addWidget(self.sides)
        ol.addLayout(drow)
        self.pages.addTab(outputs_page, "Outputs")
        self.pages.addTab(self.layers, "Layers")
        self.pages.setTabVisible(1, False)

        body = QWidget(self)
        bl = QVBoxLayout(body)
        bl.setContentsMargins(0, 0, 0, 0)
        bl.addWidget(self.pages, 1)
        bl.addWidget(self.warnings)
        self.split = QSplitter(Qt.Orientation.Horizontal, self)
        self.split.addWidget(body)
        self.split.addWidget(self.plots)
        self.split.setStretchFactor(0, 3)
        self.split.setStretchFactor(1, 2)

        lay = QVBoxLayout(self)
        lay.setContentsMargins(6, 4, 6, 4)
        lay.addLayout(top)
        lay.addWidget(self.split, 1)
        self._set_running(False)
        self.report_button.setEnabled(False)
        self.rerun_button.setEnabled(False)
        self._set_badge("", "")
        self.divergence.hide()
        self.divergence_button.hide()
        self.warnings.hide()

    # -- running ---------------------------------------------------------------------------------------
    def start(self, params: dict, title: str = "") -> QtJob:
        """Run the ``compare`` task with ``params`` (see :func:`compare_params`); a running one is cancelled."""
        if self.job is not None and self.job.running:
            self.job.cancel()
        self.params, self.title = dict(params), title or self._default_title(params)
        self.result, self.arrays, self.diffs = None, {}, []
        self.table.setRowCount(0)
        self.sides.setText("")
        self.warnings.hide()
        self.divergence.hide()
        self.divergence_button.hide()
        self.find_button.hide()
        self.plots.hide()
        self._clear_layers()
        self.report_button.setEnabled(False)
        self._set_badge("…", "running")
        self.headline.setText(f"Comparing {self.title}…")
        job = self.registry.run("compare", self.params, title=f"compare {self.title}")
        self.job = job
        self._set_running(True)
        job.progress.connect(lambda f, m, j=job: self._on_progress(j, f, m))
        job.finished.connect(lambda r, j=job: self._on_finished(j, r))
        job.failed.connect(lambda m, k, j=job: self._on_failed(j, m, k))
        self.started.emit(job)
        return job

    @staticmethod
    def _default_title(p: dict) -> str:
        a, b = (os.path.basename(str(p.get(k, "?")).rstrip(os.sep)) for k in ("a", "b"))
        return f"{a} ↔ {b}"

    def rerun(self) -> QtJob | None:
        """The last comparison again, same settings (a new result folder)."""
        if self.params is None:
            return None
        p = dict(self.params)
        if p.get("save_dir"):
            fresh = compare_params(p["a"], p["b"])  # only for its new folder
            p["save_dir"], p["report"] = fresh["save_dir"], fresh["report"]
        return self.start(p, self.title)

    def find_divergence(self) -> QtJob | None:
        """The last comparison again, layer by layer (a new result folder)."""
        if self.params is None:
            return None
        p = dict(self.params)
        fresh = compare_params(p["a"], p["b"])  # only for its new folder
        p["save_dir"], p["report"] = fresh["save_dir"], fresh["report"]
        p["per_layer"] = True
        return self.start(p, self.title)

    def cancel(self) -> None:
        if self.job is not None and self.job.running:
            self.job.cancel()

    @property
    def running(self) -> bool:
        return self.job is not None and self.job.running

    def _set_running(self, on: bool) -> None:
        self.bar.setVisible(on)
        self.cancel_button.setVisible(on)
        self.rerun_button.setEnabled(not on and self.params is not None)
        if on:
            self.bar.setRange(0, 0)

    def _on_progress(self, job: QtJob, f, m: str) -> None:
        if job is not self.job:
            return
        show_fraction(self.bar, f)
        if m:
            self.headline.setText(f"Comparing {self.title}: {m}")

    def _on_failed(self, job: QtJob, message: str, kind: str) -> None:
        if job is not self.job:
            return
        self._set_running(False)
        if kind == ErrorKind.CANCELLED:
            self._set_badge("—", "cancelled")
            self.headline.setText(f"Comparison of {self.title} was cancelled.")
        else:
            self._set_badge("ERROR", "error")
            self.headline.setText(f"Comparison of {self.title} failed: {message}")

    def _on_finished(self, job: QtJob, result: dict) -> None:
        if job is not self.job:
            return
        self._set_running(False)
        self.show_result(result)

    # -- showing ---------------------------------------------------------------------------------------
    def _set_badge(self, text: str, state: str) -> None:
        self.badge.setText(text)
        self.badge.setProperty("verdict", state)
        colours = {"pass": "#1e8e3e", "fail": "#c5221f", "error": "#c5221f", "running": "#5f6368",
                   "cancelled": "#5f6368"}
        c = colours.get(state)
        self.badge.setStyleSheet(f"QLabel{{background:{c};color:white;font-weight:bold;border-radius:3px;"
                                 f"padding:2px 8px}}" if c else "")
        self.badge.setVisible(bool(text))

    def show_result(self, result: dict) -> None:
        """Show a ``compare`` result (CompareResult.to_dict(), JSON-safe)."""
        from converters.compare.results import CompareResult

        self.result = result
        res = CompareResult.from_dict(result)
        tol = res.tolerance or {}
        preset = tol.get("name", "?")
        desc = f"{preset} (atol {_g(tol.get('atol'), 'g')}, rtol {_g(tol.get('rtol'), 'g')})"
        if res.error:
            self._set_badge("ERROR", "error")
            self.headline.setText(f"{self.title or self._default_title({'a': res.a.path, 'b': res.b.path})}: "
                                  f"{res.error}")
        elif res.passed:
            self._set_badge("PASS", "pass")
            self.headline.setText(f"{self._names(res)}: all {len(res.model_outputs)} output"
                                  f"{'s' * (len(res.model_outputs) != 1)} match within {desc}")
        else:
            self._set_badge("FAIL", "fail")
            self.headline.setText(f"{self._names(res)}: {len(res.failed_outputs)} of {len(res.model_outputs)} "
                                  f"outputs differ beyond {desc}")
        self.diffs = [d.to_dict() for d in res.model_outputs]
        self._fill_table(self.diffs)
        self.sides.setText("\n".join(self._side_line(s) for s in (res.a, res.b)))
        first = res.first_divergence
        inner = res.intermediates
        if inner:
            ok = sum(1 for d in inner if d.passed)
            if first is not None:
                b_name = f" (B: '{first.name_b}')" if first.name_b != first.name else ""
                self.divergence.setText(f"Inner tensors: {ok} of {len(inner)} match. The numbers first part "
                                        f"ways at '{first.name}'{b_name}: max abs {first.max_abs:.3g}")
            else:
                self.divergence.setText(f"Inner tensors: all {len(inner)} match.")
            self.divergence.show()
            self.divergence_button.setVisible(first is not None)
        self.first_divergence = first.to_dict() if first is not None else None
        per_layer = bool(result.get("layers"))
        self.find_button.setVisible(not res.passed and not res.error and not per_layer
                                    and not (self.params or {}).get("per_layer"))
        notes = list(res.warnings) + list(res.layer_notes)
        if notes:
            self.warnings.setText("Warnings:\n" + "\n".join(f"• {w}" for w in notes))
            self.warnings.show()
        self.report_button.setEnabled(bool(res.files.get("report")) and os.path.exists(res.files.get("report", "")))
        self.arrays = {}
        npz = res.files.get("npz")
        if npz and os.path.exists(npz):
            with np.load(npz, allow_pickle=False) as z:
                self.arrays = {k: z[k] for k in z.files}
        if self.diffs:
            self.table.selectRow(0)
        if per_layer:
            self._show_layers(result)
        self.resultShown.emit(result)

    def _names(self, res) -> str:
        return self.title or self._default_title({"a": res.a.path, "b": res.b.path})

    @staticmethod
    def _side_line(s) -> str:
        line = f"{s.label}: {os.path.basename(s.path.rstrip(os.sep))} — {s.runtime or '?'} on {s.device}"
        t = s.timing or {}
        if t.get("repeats"):
            line += f", median {t['median_ms']:.3f} ms (min {t['min_ms']:.3f} ms, {t['repeats']} runs)"
        if s.error:
            line += f" — {'crashed' if s.crashed else 'failed'}: {s.error}"
        return line

    def _fill_table(self, diffs: list[dict]) -> None:
        self.table.setRowCount(len(diffs))
        for r, d in enumerate(diffs):
            worst = d.get("worst") or []
            topk = d.get("topk") or {}
            cells = [d["name"], d["name_b"], "×".join(str(x) for x in d.get("shape") or []) or "scalar",
                     "PASS" if d.get("passed") else "FAIL", _g(d.get("max_abs")), _g(d.get("mean_abs")),
                     _g(d.get("p99_abs")), _g(d.get("max_rel")),
                     _g(d.get("cosine"), ".6f") if d.get("cosine") is not None else "–",
                     f"{int(d.get('mismatches', 0)):,} ({float(d.get('mismatch_fraction', 0)):.2%})",
                     str(list(worst[0]["index"])) if worst else "–",
                     f"{topk['top1']:.0%}" if "top1" in topk else "–"]
            for c, text in enumerate(cells):
                it = QTableWidgetItem(text)
                if c >= 4:
                    it.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
                if c == 3:
                    f = it.font()
                    f.setBold(True)
                    it.setFont(f)
                    it.setForeground(Qt.GlobalColor.darkGreen if d.get("passed") else Qt.GlobalColor.red)
                if c == 10 and worst:
                    w = worst[0]
                    it.setToolTip(f"A = {w.get('a')}, B = {w.get('b')}, |A−B| = {w.get('abs')}")
                if d.get("reasons") and c == 3:
                    it.setToolTip("\n".join(d["reasons"]))
                self.table.setItem(r, c, it)

    def cell(self, row: int, column: str) -> str:
        """The text shown in ``row`` under the header ``column`` (for checks and copy)."""
        it = self.table.item(row, COLUMNS.index(column))
        return it.text() if it is not None else ""

    # -- plots -----------------------------------------------------------------------------------------
    def _row_changed(self) -> None:
        rows = self.table.selectionModel().selectedRows()
        if rows:
            self.plot_output(rows[0].row())

    def pair_arrays(self, row: int) -> tuple[np.ndarray, np.ndarray] | None:
        """(A, B) arrays of table row ``row`` from the result's npz, B in A's layout; None when absent."""
        return paired(self.diffs[row], *sides(self.arrays))

    def plot_output(self, row: int) -> None:
        """Draw the histogram (the engine's counts) and the scatter of table row ``row``."""
        pair = self.pair_arrays(row) if 0 <= row < len(self.diffs) else None
        if pair is None:
            if self.hist_plot is not None:
                self.hist_plot.hide()
                self.scatter_plot.hide()
            self._show_plots()
            return
        self._ensure_plots()
        a, b = pair
        edges, counts = histogram_bars(self.diffs[row].get("histogram") or [])
        self.hist_plot.setVisible(counts.size > 0)
        self.scatter_plot.show()
        if counts.size:
            self.hist_item.setData(edges, counts)
        x, y = scatter_sample(a, b, SCATTER_POINTS)
        self.scatter_item.setData(x, y)
        lo = float(min(x.min(), y.min())) if x.size else 0.0
        hi = float(max(x.max(), y.max())) if x.size else 1.0
        self.diag_item.setData([lo, hi], [lo, hi])
        exact = f" · {int(counts[0]):,} exact (left bar)" if counts.size and counts[0] else ""
        self.hist_plot.setTitle(f"{self.diffs[row]['name']}: |A − B|{exact}", size=_TITLE_SIZE)
        self.scatter_plot.setTitle(f"B against A: {x.size:,} of {a.size:,} values", size=_TITLE_SIZE)
        self.hist_plot.enableAutoRange()
        self.scatter_plot.enableAutoRange()
        self._show_plots()

    def _show_plots(self) -> None:
        """The plots pane is shown while any of its plots is."""
        any_plot = self.hist_plot is not None and any(
            not p.isHidden() for p in (self.hist_plot, self.scatter_plot, self.depth_plot))
        if not any_plot:
            self.plots.hide()
            return
        if not self.plots.isVisible():
            self.plots.show()
            w = max(self.split.width(), 600)
            self.split.setSizes([int(w * 0.52), w - int(w * 0.52)])  # the table's 12 columns need the room

    # -- layers --------------------------------------------------------------------------------------
    def _clear_layers(self) -> None:
        self.layers.set_layers([], None, 1e-5)
        self.pages.setTabVisible(1, False)
        self.pages.setCurrentIndex(0)
        self.depth_layers = []
        if self.depth_plot is not None:
            self.depth_plot.hide()

    def _show_layers(self, result: dict) -> None:
        atol = float((result.get("tolerance") or {}).get("atol") or 1e-5)
        first = result.get("layer_first")
        self.layers.set_layers(result.get("layers") or [], first, atol)
        self.pages.setTabVisible(1, True)
        self.pages.setTabText(1, f"Layers ({len(result.get('layers') or [])})")
        self.pages.setCurrentIndex(1)
        self.plot_depth(result.get("layers") or [], first, atol)
        if first is not None:
            self.layers.select_layer(int(first["index"]), emit=False)

    def plot_depth(self, layers: list[dict], first: dict | None, atol: float) -> None:
        """Draw max abs error against depth, one point per compared layer, coloured by status."""
        self._ensure_plots()
        import pyqtgraph as pg

        x, y, idx, floor = depth_points(layers, atol)
        self.depth_layers = idx
        self._depth_args = (layers, first, atol)
        by_index = {int(r["index"]): r for r in layers}
        dark = self.palette().window().color().lightness() < 128
        brushes = []
        for k in idx:
            c = pg.mkColor(_DEPTH_COLORS.get(by_index[k].get("status"), "#70757a"))
            brushes.append(pg.mkBrush(c.lighter(135) if dark else c))
        self.depth_item.setData(x, y, symbolBrush=brushes)
        fx, fy = [], []
        if first is not None and int(first["index"]) in idx:
            j = idx.index(int(first["index"]))
            fx, fy = [x[j]], [y[j]]
        self.depth_first_item.setData(fx, fy)
        self.depth_tol_line.setValue(np.log10(atol if atol > 0 else 1e-12))
        self._depth_atol = atol
        self._update_depth_threshold()
        exact = int((y <= floor).sum())
        self.depth_plot.setTitle(f"error by depth: {len(idx)} layers", size=_TITLE_SIZE)
        self.depth_plot.setToolTip(f"max |A − B| of each compared layer against its depth in A; the star is the "
                                   f"first divergence, the dashed line the tolerance's atol {atol:g}"
                                   + (f"; {exact} exact matches sit at the bottom ({floor:.0e})" if exact else "")
                                   + ". Click a point to select its layer")
        self.depth_plot.enableAutoRange()
        self.depth_plot.show()
        self._show_plots()

    def _update_depth_threshold(self) -> None:
        if self.depth_threshold_line is None:
            return
        atol = getattr(self, "_depth_atol", 1e-5)
        t = self.layers.threshold
        self.depth_threshold_line.setValue(np.log10(atol if atol > 0 else 1e-12) + t)
        self.depth_threshold_line.setVisible(self.layers.overlay_on and t != 0)

    def _layer_selected(self, index: int) -> None:
        self._mark_depth(index)
        self.layerSelected.emit(index)

    def _mark_depth(self, index: int) -> None:
        if self.depth_item is None or self.depth_sel_item is None:
            return
        if index in self.depth_layers:
            j = self.depth_layers.index(index)
            self.depth_sel_item.setData([self.depth_item.xData[j]], [self.depth_item.yData[j]])
        else:
            self.depth_sel_item.setData([], [])

    def _depth_clicked(self, _item, points, *_a) -> None:
        if not len(points):
            return
        j = int(points[0].index())
        if 0 <= j < len(self.depth_layers):
            self.layers.select_layer(self.depth_layers[j])

    def _ensure_plots(self) -> None:
        if self.hist_plot is not None:
            self._follow_palette()
            return
        import pyqtgraph as pg

        self.hist_plot = pg.PlotWidget(self.plots)
        self.scatter_plot = pg.PlotWidget(self.plots)
        for p in (self.hist_plot, self.scatter_plot):
            p.setMenuEnabled(False)
            p.hideButtons()
            p.setMinimumSize(170, 150)
            self.plots_layout.addWidget(p, 2)
        self.hist_plot.setLabel("bottom", "log10 |A − B|")
        self.hist_plot.setLabel("left", "elements")
        self.scatter_plot.setLabel("bottom", "A")
        self.scatter_plot.setLabel("left", "B")
        self.hist_item = pg.PlotDataItem(stepMode="center", fillLevel=0)
        self.hist_plot.addItem(self.hist_item)
        self.diag_item = pg.PlotDataItem()
        self.scatter_plot.addItem(self.diag_item)
        self.scatter_item = pg.PlotDataItem(pen=None, symbol="o", symbolSize=5)
        self.scatter_plot.addItem(self.scatter_item)
        # error against depth (per-layer results only)
        self.depth_plot = pg.PlotWidget(self.plots)
        self.depth_plot.setMenuEnabled(False)
        self.depth_plot.hideButtons()
        self.depth_plot.setMinimumSize(220, 150)
        self.depth_plot.setLogMode(False, True)
        self.depth_plot.getAxis("left").enableAutoSIPrefix(False)
        self.depth_plot.getViewBox().setDefaultPadding(0.08)
        self.depth_plot.setLabel("bottom", "depth in A")
        self.depth_plot.setLabel("left", "max |A − B|")
        self.depth_item = pg.PlotDataItem(symbol="o", symbolSize=7)
        self.depth_item.sigPointsClicked.connect(self._depth_clicked)
        self.depth_plot.addItem(self.depth_item)
        self.depth_tol_line = pg.InfiniteLine(angle=0, movable=False, label="atol",
                                              labelOpts={"position": 0.04, "anchors": [(0, 1), (0, 1)]})
        self.depth_plot.addItem(self.depth_tol_line)
        self.depth_threshold_line = pg.InfiniteLine(angle=0, movable=False)
        self.depth_plot.addItem(self.depth_threshold_line)
        self.depth_threshold_line.hide()
        self.depth_sel_item = pg.PlotDataItem(pen=None, symbol="o", symbolSize=15)
        self.depth_plot.addItem(self.depth_sel_item)
        self.depth_first_item = pg.PlotDataItem(pen=None, symbol="star", symbolSize=18)
        self.depth_plot.addItem(self.depth_first_item)
        self.plots_layout.addWidget(self.depth_plot, 3)
        self.depth_plot.hide()
        self._follow_palette()

    def _follow_palette(self) -> None:
        import pyqtgraph as pg

        pal = self.palette()
        fg = pal.text().color()
        hl = pal.highlight().color()
        fill = pg.mkColor(hl)
        fill.setAlpha(170)
        for p in (self.hist_plot, self.scatter_plot, self.depth_plot):
            p.setBackground(pal.base().color())
            for ax in ("left", "bottom"):
                p.getAxis(ax).setPen(fg)
                p.getAxis(ax).setTextPen(fg)
            p.getPlotItem().titleLabel.setAttr("color", fg.name())
        self.hist_item.setPen(pg.mkPen(hl))
        self.hist_item.setBrush(pg.mkBrush(fill))
        self.scatter_item.setSymbolPen(None)
        self.scatter_item.setSymbolBrush(pg.mkBrush(fill))
        mid = pg.mkColor(fg)
        mid.setAlpha(120)
        self.diag_item.setPen(pg.mkPen(mid, style=Qt.PenStyle.DashLine))
        self.depth_item.setPen(pg.mkPen(mid, width=1))
        self.depth_item.setSymbolPen(None)
        dark = pal.window().color().lightness() < 128
        first = pg.mkColor("#ff4fb0" if dark else "#d6007e")
        self.depth_first_item.setSymbolBrush(pg.mkBrush(first))
        self.depth_first_item.setSymbolPen(pg.mkPen(fg, width=1))
        self.depth_sel_item.setSymbolBrush(None)
        self.depth_sel_item.setSymbolPen(pg.mkPen(pg.mkColor("#ff8c00"), width=2.5))
        tol = pg.mkColor("#4caf50" if dark else "#1e8e3e")
        self.depth_tol_line.setPen(pg.mkPen(tol, width=1.5, style=Qt.PenStyle.DashLine))
        self.depth_tol_line.label.setColor(tol)
        self.depth_threshold_line.setPen(pg.mkPen(mid, width=1, style=Qt.PenStyle.DotLine))
    def changeEvent(self, e) -> None:
        from PySide6.QtCore import QEvent

        if e.type() == QEvent.Type.PaletteChange and self.hist_plot is not None:
            self._follow_palette()
            if self.depth_layers and getattr(self, "_depth_args", None):
                self.plot_depth(*self._depth_args)  # the status colours have a light and a dark set
        super().changeEvent(e)

    # -- actions ---------------------------------------------------------------------------------------
    def report_path(self) -> str | None:
        f = (self.result or {}).get("files") or {}
        p = f.get("report")
        return p if p and os.path.exists(p) else None

    def open_report(self) -> bool:
        p = self.report_path()
        return bool(p) and QDesktopServices.openUrl(QUrl.fromLocalFile(p))

    def _request_divergence(self) -> None:
        d = self.first_divergence
        if d is None or self.result is None:
            return
        self.divergenceRequested.emit(self.result["a"]["path"], d["name"], self.result["b"]["path"], d["name_b"])


_TITLE_SIZE = "9pt"
_DEPTH_COLORS = {"ok": "#1e8e3e", "source": "#c5221f", "inherited": "#e37400", "layout": "#8e24aa",
                 "missing": "#70757a"}


def node_for_value(pack, name: str) -> int:
    """Index of the node of view pack ``pack`` that produces the value ``name`` (or is named so); -1 when
    none does. Reads the pack's details file once, looking only at entries whose text holds the name."""
    if pack is None or not name or getattr(pack, "weights_only", False):
        return -1
    import json

    names = pack.names
    for cand in (name, name.replace(".", "_"), name.replace("/", ".")):
        if cand in names:
            hit = names.index(cand)
            if cand == name:
                return hit
            break
    else:
        hit = -1
    offs = getattr(pack, "_details_off", None)
    path = os.path.join(str(pack.dir), "details.jsonl")
    if offs is not None and len(offs) > 1 and os.path.exists(path):
        with open(path, "rb") as f:
            data = f.read()
        needle = json.dumps(name).encode()
        start = 0
        while True:  # only entries that mention the name are parsed
            k = data.find(needle, start)
            if k < 0:
                break
            i = int(np.searchsorted(offs, k, side="right")) - 1
            if 0 <= i < pack.n_nodes:
                try:
                    d = json.loads(data[int(offs[i]):int(offs[i + 1])])
                except ValueError:
                    d = {}
                if any(o.get("name") == name for o in d.get("outputs") or []):
                    return i
                start = int(offs[i + 1])
            else:
                break
    return hit


_PRODUCERS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def value_producers(pack) -> dict[str, int]:
    """{value name: index of the node that outputs it} over a whole view pack, from one read of its
    details file (cached per pack: a 50k-node pack takes a few tenths of a second once)."""
    import json
    import re

    try:
        hit = _PRODUCERS.get(pack)
    except TypeError:
        hit = None
    if hit is not None:
        return hit
    out: dict[str, int] = {}
    path = os.path.join(str(pack.dir), "details.jsonl")
    if pack.n_nodes and os.path.exists(path):
        with open(path, "rb") as f:
            lines = f.read().split(b"\n")
        # line i is node i: {"index", "name", …, "outputs": [{"name": …, "dtype", "shape"}, …], "weights": …}
        name_re = re.compile(rb'"name": ("(?:[^"\\]|\\.)*")')
        start, end = b'"outputs": [', b'], "weights": '
        for i, line in enumerate(lines[:pack.n_nodes]):
            k = line.find(start)
            if k < 0:
                continue
            e = line.find(end, k)
            for q in name_re.findall(line, k, e if e >= 0 else len(line)):
                name = q[1:-1].decode("utf-8", "surrogatepass") if b"\\" not in q else json.loads(q)
                if name not in out:
                    out[name] = i
    try:
        _PRODUCERS[pack] = out
    except TypeError:
        pass
    return out


def nodes_for_layers(pack, node_names: list[str], value_names: list[str]) -> np.ndarray:
    """Index in view pack ``pack`` of each layer's node (-1 where the graph has none), for many layers at
    once: by node name first, then by the node that outputs the value (one read of the details file, only
    when some are left), then a node named like the value (as :func:`node_for_value`)."""
    n = len(value_names)
    out = np.full(n, -1, np.int64)
    if pack is None or getattr(pack, "weights_only", False) or not pack.n_nodes:
        return out
    by_name: dict[str, int] = {}
    for i, s in enumerate(pack.names):
        by_name.setdefault(s, i)
    left = []
    for k, nd in enumerate(node_names):
        i = by_name.get(nd) if nd else None
        if i is not None:
            out[k] = i
        else:
            left.append(k)
    if left:
        prod = value_producers(pack)
        for k in left:
            v = value_names[k]
            i = prod.get(v) if v else None
            if i is None and v:
                i = next((by_name[c] for c in (v, v.replace(".", "_"), v.replace("/", ".")) if c in by_name), None)
            if i is not None:
                out[k] = i
    return out
