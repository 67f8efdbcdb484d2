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

The plots live in :mod:`app.panels.parity_plots` (a mixin of the panel), the look-up of a layer's node in
a view pack in :mod:`app.panels.parity_nodes`; their public names are importable from here too.
"""
from __future__ import annotations

import os
from typing import Any

import numpy as np
from PySide6.QtCore import Qt, QUrl, Signal
from PySide6.QtGui import QDesktopServices, QGuiApplication
from PySide6.QtWidgets import (QAbstractItemView, QHBoxLayout, QHeaderView, QLabel, QProgressBar,
                               QPushButton, QSizePolicy, QSplitter, QTableWidget, QTableWidgetItem, QTabWidget, QVBoxLayout,
                               QWidget)

from converters.errors import ErrorKind
from converters.compare.params import compare_params
from converters.compare.plots import SCATTER_POINTS, paired, sides

from ..jobs import JobRegistry, QtJob, show_fraction
from .parity_layers import LayersView
from .parity_nodes import node_for_value, nodes_for_layers, value_producers
from .parity_plots import OutputPlots, depth_points

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


class ParityPanel(OutputPlots, QWidget):
    """Shows one comparison at a time. :meth:`start` runs one; :meth:`show_result` shows a result dict.

    Signals: ``started(QtJob)``, ``resultShown(dict)``, ``divergenceRequested(path_a, name_a, path_b,
    name_b)`` when the user asks to see where the numbers first part ways.
    """

    started = Signal(object)
    resultShown = Signal(dict)
    divergenceRequested = Signal(str, str, str, str)
    layerSelected = Signal(int)
    compareRequested = Signal(str)   # "Compare with…" for the current tab's model (its path)
    noticeRequested = Signal(str, str, list)  # (text, kind, [(label, callable)]) for the window's notice bar

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
        self.map_plot = self.map_image = self.map_bar = self.topk_plot = self.topk_item = None
        self.error_map: dict | None = None          # the shown output's error map (converters.compare.plots)
        self.topk_values: dict[str, float] = {}     # the shown output's top-k bars: label -> agreement %
        self.topk_texts: list = []                  # their figures, drawn above the bars
        self._map_title = ""
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
        # the Layers page's toolbar must not set the Outputs page's minimum width (the plots need the room)
        self.layers.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
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
        self.pages.currentChanged.connect(lambda _i: self.plots_for_page())

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

        # shown instead of the result while the current tab is neither of its models
        self.elsewhere = QWidget(self)
        el = QHBoxLayout(self.elsewhere)
        el.setContentsMargins(0, 0, 0, 0)
        self.elsewhere_label = QLabel("", self.elsewhere)
        self.elsewhere_label.setWordWrap(True)
        self.elsewhere_show = QPushButton("Show it", self.elsewhere)
        self.elsewhere_show.setToolTip("Show the last comparison here anyway")
        self.elsewhere_show.clicked.connect(lambda: self.set_context(None))
        self.elsewhere_compare = QPushButton("Compare with…", self.elsewhere)
        self.elsewhere_compare.clicked.connect(lambda: self.compareRequested.emit(self.context_path or ""))
        el.addWidget(self.elsewhere_label, 1)
        el.addWidget(self.elsewhere_show)
        el.addWidget(self.elsewhere_compare)
        self.elsewhere.hide()
        self.context_path: str | None = None
        self.main = QWidget(self)
        ml = QVBoxLayout(self.main)
        ml.setContentsMargins(0, 0, 0, 0)
        ml.addLayout(top)
        ml.addWidget(self.split, 1)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(6, 4, 6, 4)
        lay.addWidget(self.elsewhere)
        lay.addWidget(self.main, 1)
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
        self.set_context(None)  # a comparison just asked for is shown, whichever tab is current
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

    # -- which model the window shows ----------------------------------------------------------------
    def models(self) -> tuple[str, str] | None:
        """The absolute paths of the shown (or running) comparison's models A and B; None before any."""
        src = self.result if self.result else self.params
        if not src:
            return None
        a, b = src.get("a"), src.get("b")
        a, b = (a.get("path") if isinstance(a, dict) else a), (b.get("path") if isinstance(b, dict) else b)
        return (os.path.abspath(a), os.path.abspath(b)) if a and b else None

    def set_context(self, path: str | None) -> bool:
        """The window now shows the model at ``path`` (None: a view of both, or no model). While that model
        is neither A nor B of the last comparison, the panel says so instead of showing the comparison as
        if it were this model's; it comes back on A's or B's tab. Returns whether the comparison is shown."""
        self.context_path = os.path.abspath(path) if path else None
        models = self.models()
        unrelated = self.context_path is not None and models is not None and self.context_path not in models
        if unrelated:
            a, b = (os.path.basename(m) for m in models)  # type: ignore[union-attr]
            name = os.path.basename(self.context_path or "")
            self.elsewhere_label.setText(f"No comparison of {name} yet. The last one, of {a} and {b}, "
                                         f"is shown on their tabs.")
            self.elsewhere_compare.setText(f"Compare {name} with…")
        self.elsewhere.setVisible(unrelated)
        self.main.setVisible(not unrelated)
        return not unrelated

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
        self.report_button.setToolTip(f"Open {res.files['report']} in your browser" if self.report_button.isEnabled()
                                      else "")
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

    def _layer_selected(self, index: int) -> None:
        self._mark_depth(index)
        self.layerSelected.emit(index)

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
        """Open the HTML report with the desktop's handler for HTML files; either way a notice says where the
        report is (with Copy path and Open folder), and when no handler started, that it did not."""
        p = self.report_path()
        if not p:
            self.noticeRequested.emit("The report is no longer on disk (its comparison folder was removed); "
                                      "run the comparison again.", "error", [])
            return False
        ok = QDesktopServices.openUrl(QUrl.fromLocalFile(p))
        folder = os.path.dirname(p)
        actions = [("Copy path", lambda: QGuiApplication.clipboard().setText(p)),
                   ("Open folder", lambda: QDesktopServices.openUrl(QUrl.fromLocalFile(folder)))]
        if ok:
            self.noticeRequested.emit(f"Report opened in your browser: {p}", "info", actions)
        else:
            self.noticeRequested.emit(f"No browser could be started for the report; it is at {p}", "error", actions)
        return ok

    def _request_divergence(self) -> None:
        d = self.first_divergence
        if d is None or self.result is None:
            return
        self.divergenceRequested.emit(self.result["a"]["path"], d["name"], self.result["b"]["path"], d["name_b"])
