"""Node detail of the Parity dock's Layers page: the selected layer pair's tensors, and what can be done
with a pair.

:class:`LayerDetail` shows A's tensor (the reference), B's (the converted model's) and B - A as images,
one 2-D slice at a time (a spin box picks the sample and channel of a 4-D tensor, the first axis of a 3-D
one), A and B on one colour scale over both whole tensors, B - A on a symmetric one, the element under
the mouse in words, and a histogram of B - A over the whole tensor. The tensors are those the per-layer
comparison kept in its result folder; a worker job (task ``layer_tensors``,
:mod:`converters.compare.layer_tensors`) reads them and writes the slices, downsampled to at most
512 x 512, that the window then reads with numpy. Where B's tensor was not kept (the pair passed) A's
is shown alone.

The pair's actions: "Reduce to a minimal repro" (task ``reduce``: :func:`converters.parity.reduce.
reduce_failure` in a worker, with progress and Cancel, cut to the pair shown when it fails (else the
first divergence) and reusing the comparison's kept folder; the repro folder is then shown with Open
repro.onnx and Open folder), copy the pair's names in both models, export the report (HTML + JSON) and
save the inputs used (.npz).

The pure words and slice helpers live in :mod:`app.panels.parity_slices`; their public names are
importable from here too.
"""
from __future__ import annotations

import math
import os
import shutil

import numpy as np
from PySide6.QtCore import Qt, QUrl, Signal
from PySide6.QtGui import QDesktopServices, QGuiApplication
from PySide6.QtWidgets import (QFileDialog, QHBoxLayout, QLabel, QProgressBar, QPushButton, QSpinBox,
                               QVBoxLayout, QWidget)

from converters.errors import ErrorKind

from .parity_slices import _TITLES, IMAGE_KEYS, _g, _worst_slice, pair_names, slice_text, tensor_words

__all__ = ["LayerDetail", "pair_names", "IMAGE_KEYS"]

NOT_KEPT = "B matches A within tolerance here (not kept)"
FAILING = ("source", "inherited", "layout")   # statuses of a pair a reduction can cut to


class LayerDetail(QWidget):
    """Signals: ``openRequested(str)`` (a model file to open in a tab: the repro), ``loaded(dict)`` (a
    ``layer_tensors`` result is shown), ``reduced(dict)`` (a repro was written: the ``reduce`` result)."""

    openRequested = Signal(str)
    loaded = Signal(dict)
    reduced = Signal(dict)

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.registry = None                 # the window's JobRegistry (set by the window)
        self.result: dict | None = None      # the per-layer compare result shown
        self.params: dict | None = None      # the compare params that made it
        self.index = -1
        self.info: dict | None = None        # the layer_tensors result shown
        self.arrays: dict[str, np.ndarray] = {}
        self.job = None
        self.reduce_job = None
        self.repro: dict | None = None
        self._cache: dict[int, tuple[dict, dict]] = {}
        self._plots: dict = {}
        self._images: dict = {}
        self._bars: dict = {}
        self._empty: dict = {}                # the text an image shows when its tensor was not kept
        self.hist_plot = self.hist_item = None
        self._graphics = None

        self.title = QLabel("Select a layer pair to see its tensors.", self)
        self.title.setWordWrap(True)
        self.title.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.slice_label = QLabel("slice", self)
        self.slice_spin = QSpinBox(self)
        self.slice_spin.setKeyboardTracking(False)
        self.slice_spin.setToolTip("Which 2-D slice to show: sample and channel of a 4-D tensor, the first axis of a 3-D one")
        self.slice_spin.valueChanged.connect(self._slice_changed)
        self.worst_button = QPushButton("Worst", self)
        self.worst_button.setToolTip("Show the slice that holds the largest |B − A|")
        self.worst_button.clicked.connect(self.go_to_worst)
        head = QHBoxLayout()
        head.setContentsMargins(0, 0, 0, 0)
        head.addWidget(self.title, 1)
        head.addWidget(self.slice_label)
        head.addWidget(self.slice_spin)
        head.addWidget(self.worst_button)

        self.canvas_box = QVBoxLayout()
        self.canvas_box.setContentsMargins(0, 0, 0, 0)
        self.hover = QLabel(" ", self)
        self.hover.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.note = QLabel("", self)
        self.note.setWordWrap(True)
        self.note.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)

        # the repro of a reduction: progress, Cancel, then where it is
        self.repro_label = QLabel("", self)
        self.repro_label.setWordWrap(True)
        self.repro_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.repro_bar = QProgressBar(self)
        self.repro_bar.setMaximumWidth(140)
        self.repro_bar.setMaximumHeight(14)
        self.repro_cancel = QPushButton("Cancel", self)
        self.repro_cancel.clicked.connect(self.cancel_reduce)
        self.open_repro_button = QPushButton("Open repro.onnx", self)
        self.open_repro_button.setToolTip("Open the repro's model in a tab: the cut that still fails")
        self.open_repro_button.clicked.connect(self.open_repro)
        self.open_folder_button = QPushButton("Open folder", self)
        self.open_folder_button.clicked.connect(self.open_repro_folder)
        rrow = QHBoxLayout()
        rrow.setContentsMargins(0, 0, 0, 0)
        rrow.addWidget(self.repro_label, 1)
        for w in (self.repro_bar, self.repro_cancel, self.open_repro_button, self.open_folder_button):
            rrow.addWidget(w)
            w.hide()
        self.repro_label.hide()

        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.setSpacing(2)
        lay.addLayout(head)
        lay.addLayout(self.canvas_box, 1)
        lay.addWidget(self.hover)
        lay.addWidget(self.note)
        lay.addLayout(rrow)
        self._set_slicing(False)

    # -- the result ------------------------------------------------------------------------------
    def set_result(self, result: dict | None, params: dict | None = None) -> None:
        """A new comparison result (or none): what is shown is dropped; a running reduction goes on."""
        if self.job is not None and self.job.running:
            self.job.cancel()
        self.result, self.params = result, dict(params or {})
        self.index, self.info, self.arrays = -1, None, {}
        self._cache.clear()
        self.title.setText("Select a layer pair to see its tensors.")
        self.note.setText("")
        self.hover.setText(" ")
        self._set_slicing(False)
        if self._graphics is not None:
            for k in IMAGE_KEYS:
                self._images[k].clear()
            self.hist_item.setData([], [])

    @property
    def result_dir(self) -> str | None:
        f = (self.result or {}).get("files") or {}
        p = f.get("json")
        d = os.path.dirname(p) if p else None
        return d if d and os.path.exists(os.path.join(d, "result.json")) else None

    def layer(self, index: int) -> dict | None:
        return next((r for r in (self.result or {}).get("layers") or [] if int(r["index"]) == int(index)), None)

    # -- showing a pair --------------------------------------------------------------------------
    def show_layer(self, index: int, slice_: int | None = None):
        """Show layer pair ``index``'s tensors (slice ``slice_``, default the worst one); returns the job
        started, or None when nothing needed reading."""
        r = self.layer(index) if index is not None and index >= 0 else None
        if r is None:
            self.set_result(self.result, self.params)
            return None
        self.index = int(index)
        cached = self._cache.get(self.index)
        if cached is not None:
            info, arrays = cached
            s = slice_ if slice_ is not None else _worst_slice(info)
            if info["slice_start"] <= s < info["slice_start"] + info["slice_count"] or not arrays:
                self._show(info, arrays, s)
                return None
        return self._request(self.index, slice_)

    def _request(self, index: int, slice_: int | None):
        if self.registry is None or self.result_dir is None:
            self.note.setText("The comparison's folder is gone: run it again to see the tensors.")
            return None
        from converters.jobs.protocol import LayerTensorsParams

        if self.job is not None and self.job.running:
            self.job.cancel()
        r = self.layer(index)
        self.title.setText(f"Reading the tensors of '{r['a']}'…")
        job = self.registry.run("layer_tensors", LayerTensorsParams(self.result_dir, int(index),
                                                                   slice=slice_).to_dict(),
                                title=f"tensors of {r['a']}")
        self.job = job
        job.finished.connect(lambda res, j=job, s=slice_: self._on_loaded(j, res, s))
        job.failed.connect(lambda m, k, j=job: self._on_failed(j, m, k))
        return job

    def _on_loaded(self, job, info: dict, slice_: int | None) -> None:
        arrays: dict[str, np.ndarray] = {}
        npz = info.get("npz")
        if npz and os.path.exists(npz):
            with np.load(npz) as z:
                arrays = {k: np.array(z[k]) for k in z.files}
        job.release()  # read: its folder can go
        if job is not self.job or int(info.get("index", -1)) != self.index:
            return
        self._cache[self.index] = (info, arrays)
        self._show(info, arrays, int(info.get("slice") or 0))

    def _on_failed(self, job, message: str, kind: str) -> None:
        if job is not self.job or kind == ErrorKind.CANCELLED:
            return
        self.title.setText("The tensors could not be read.")
        self.note.setText(message)

    def _show(self, info: dict, arrays: dict, s: int) -> None:
        self.info, self.arrays = info, arrays
        r = self.layer(self.index) or {}
        n = int(info.get("n_slices") or 0)
        self._set_slicing(n > 1)
        self.slice_spin.blockSignals(True)
        self.slice_spin.setRange(0, max(n - 1, 0))
        self.slice_spin.setValue(min(max(s, 0), max(n - 1, 0)))
        self.slice_spin.blockSignals(False)
        self.worst_button.setEnabled(bool(info.get("worst")))
        self._ensure_plots()
        self._draw_slice()
        st = info.get("stats") or {}
        h = info.get("hist") or {}
        if h.get("counts"):
            e = np.asarray(h["edges"], np.float64)
            self.hist_item.setData(e, np.asarray(h["counts"], np.float64))
            self.hist_plot.setTitle(f"B − A: all {math.prod(info['shape']) if info['shape'] else 1:,} values",
                                    size="8pt")
            self.hist_plot.show()
        else:
            self.hist_item.setData([], [])
            self.hist_plot.hide()
        self.note.setText(self._words(r, info, st))
        self.loaded.emit(info)

    def _words(self, r: dict, info: dict, st: dict) -> str:
        """Local against inherited error, and what is shown, in words."""
        return tensor_words(info, st)

    def _set_slicing(self, on: bool) -> None:
        for w in (self.slice_label, self.slice_spin, self.worst_button):
            w.setVisible(on)

    def slice_text(self, s: int) -> str:
        return slice_text(self.info or {}, s)

    def _slice_changed(self, s: int) -> None:
        info = self.info
        if info is None:
            return
        if info["slice_start"] <= s < info["slice_start"] + info["slice_count"]:
            self._draw_slice()
        else:
            self._request(self.index, s)

    def go_to_worst(self) -> None:
        if self.info and self.info.get("worst"):
            self.slice_spin.setValue(int(self.info["worst"]["slice"]))

    @property
    def current_slice(self) -> int:
        return int(self.slice_spin.value())

    def image(self, key: str) -> np.ndarray | None:
        """The 2-D array drawn as image ``key`` ("a", "b" or "diff"), None when that image is empty."""
        it = self._images.get(key)
        return None if it is None or it.image is None else it.image

    def _draw_slice(self) -> None:
        info, arrays = self.info, self.arrays
        if info is None or self._graphics is None:
            return
        r = self.layer(self.index) or {}
        k = self.current_slice - int(info.get("slice_start") or 0)
        shape = info.get("shape") or []
        where = self.slice_text(self.current_slice)
        self.title.setText(f"'{r.get('a', '')}' [{r.get('op') or '?'}] " + "×".join(str(x) for x in shape))
        self.slice_label.setText(where)
        lo, hi = (info.get("levels") or {}).get("a_b") or [0.0, 1.0]
        if not hi > lo:
            hi = lo + 1.0
        dm = float((info.get("levels") or {}).get("diff") or 0.0) or 1e-12
        for key in IMAGE_KEYS:
            a = arrays.get(key)
            item, plot = self._images[key], self._plots[key]
            self._empty[key].setVisible(a is None)
            if a is None or not 0 <= k < len(a):
                item.clear()
                h, w = info.get("image") or [1, 1]
                self._empty[key].setPos(w / 2, h / 2)
                plot.getViewBox().setRange(xRange=(0, w), yRange=(0, h), padding=0)
                plot.setTitle(_TITLES[key], size="8pt")
                if key == "diff":
                    self._bars["diff"].setVisible(False)
                continue
            if key == "diff":
                self._bars["diff"].setVisible(True)
            img = a[k]
            item.setImage(img, autoLevels=False)
            item.setLevels((-dm, dm) if key == "diff" else (lo, hi))
            self._bars[key].setLevels((-dm, dm) if key == "diff" else (lo, hi))
            plot.setTitle(_TITLES[key], size="8pt")
            plot.getViewBox().setRange(xRange=(0, img.shape[1]), yRange=(0, img.shape[0]), padding=0)

    # -- hover -----------------------------------------------------------------------------------
    def _mouse_moved(self, pos) -> None:
        info = self.info
        if info is None:
            return
        for key in IMAGE_KEYS:
            plot = self._plots[key]
            if not plot.sceneBoundingRect().contains(pos):
                continue
            p = plot.getViewBox().mapSceneToView(pos)
            i, j = int(math.floor(p.y())), int(math.floor(p.x()))
            h, w = info["image"]
            if not (0 <= i < h and 0 <= j < w):
                break
            k = self.current_slice - int(info["slice_start"])
            step = int(info.get("step") or 1)
            vals = []
            for name, label in (("a", "A"), ("b", "B"), ("diff", "B − A")):
                arr = self.arrays.get(name)
                if arr is not None and 0 <= k < len(arr):
                    vals.append(f"{label} {_g(float(arr[k, i, j]))}")
            self.hover.setText(f"row {i * step}, column {j * step}: " + " · ".join(vals))
            return

    # -- plots -------------------------------------------------------------------------------------
    def _ensure_plots(self) -> None:
        if self._graphics is not None:
            self._follow_palette()
            return
        import pyqtgraph as pg

        g = pg.GraphicsLayoutWidget(self)
        g.setMinimumHeight(150)
        g.ci.setContentsMargins(0, 0, 0, 0)
        g.ci.setSpacing(2)
        seq = pg.colormap.get("viridis")
        div = pg.colormap.get("CET-D1")
        col = 0
        for key in IMAGE_KEYS:
            p = g.addPlot(row=0, col=col)
            col += 1
            p.setMenuEnabled(False)
            p.hideButtons()
            for ax in ("left", "bottom"):
                p.hideAxis(ax)
            p.setPreferredWidth(100)  # equal widths, whatever the titles say
            p.setMinimumWidth(50)
            vb = p.getViewBox()
            vb.invertY(True)
            vb.setAspectLocked(True)
            vb.setDefaultPadding(0.0)
            item = pg.ImageItem(axisOrder="row-major")
            p.addItem(item)
            empty = pg.TextItem("not kept:\nmatches A\nwithin tolerance", anchor=(0.5, 0.5))
            empty.setPos(0.5, 0.5)
            empty.hide()
            p.addItem(empty)
            self._empty[key] = empty
            self._plots[key], self._images[key] = p, item
            if key == "a":
                continue
            # A and B share one colour scale (over both whole tensors); B - A has its own, symmetric
            bar = pg.ColorBarItem(colorMap=div if key == "diff" else seq, interactive=False, width=10,
                                  colorMapMenu=False)
            bar.setImageItem([self._images["a"], item] if key == "b" else item)
            g.addItem(bar, row=0, col=col)
            col += 1
            self._bars[key] = bar
        self._bars["a"] = self._bars["b"]
        for c in range(col):  # the images share the width equally; the colour bars take what they need
            g.ci.layout.setColumnStretchFactor(c, 0 if c in (2, 4) else 4)
        hp = g.addPlot(row=0, col=col)
        g.ci.layout.setColumnStretchFactor(col, 5)
        hp.setPreferredWidth(125)
        hp.setMinimumWidth(80)
        hp.setMenuEnabled(False)
        hp.hideButtons()
        hp.setLabel("bottom", "B − A")
        hp.getAxis("left").setStyle(showValues=False)
        self.hist_plot = hp
        self.hist_item = pg.PlotDataItem(stepMode="center", fillLevel=0)
        hp.addItem(self.hist_item)
        g.scene().sigMouseMoved.connect(self._mouse_moved)
        self._graphics = g
        self.canvas_box.addWidget(g, 1)
        self._follow_palette()

    def _follow_palette(self) -> None:
        import pyqtgraph as pg

        pal = self.palette()
        fg, hl = pal.text().color(), pal.highlight().color()
        self._graphics.setBackground(pal.base().color())
        fill = pg.mkColor(hl)
        fill.setAlpha(170)
        self.hist_item.setPen(pg.mkPen(hl))
        self.hist_item.setBrush(pg.mkBrush(fill))
        for p in list(self._plots.values()) + [self.hist_plot]:
            p.getPlotItem().titleLabel.setAttr("color", fg.name()) if hasattr(p, "getPlotItem") else \
                p.titleLabel.setAttr("color", fg.name())
            for ax in ("left", "bottom"):
                p.getAxis(ax).setPen(fg)
                p.getAxis(ax).setTextPen(fg)
        for t in self._empty.values():
            t.setColor(fg)
        for bar in set(self._bars.values()):
            bar.axis.setPen(fg)
            bar.axis.setTextPen(fg)

    def changeEvent(self, e) -> None:
        from PySide6.QtCore import QEvent

        if e.type() == QEvent.Type.PaletteChange and self._graphics is not None:
            self._follow_palette()
            if self.info is not None:
                self._draw_slice()
        super().changeEvent(e)

    # -- actions -----------------------------------------------------------------------------------
    def copy_names(self, index: int | None = None) -> str:
        """Put the pair's node and tensor names in both models on the clipboard; returns the text."""
        r = self.layer(self.index if index is None else index)
        if r is None:
            return ""
        text = pair_names(r)
        QGuiApplication.clipboard().setText(text)
        return text

    def report_files(self) -> tuple[str | None, str | None]:
        f = (self.result or {}).get("files") or {}
        html, js = f.get("report"), f.get("json")
        return (html if html and os.path.exists(html) else None, js if js and os.path.exists(js) else None)

    def export_report(self, path: str | None = None) -> list[str]:
        """Copy the comparison's HTML report to ``path`` and its JSON beside it (same name, .json); asks
        where when ``path`` is None. Returns the files written."""
        html, js = self.report_files()
        if html is None and js is None:
            return []
        if path is None:
            path, _ = QFileDialog.getSaveFileName(self, "Export the parity report", "parity-report.html",
                                                  "HTML report (*.html)")
            if not path:
                return []
        stem = path[:-5] if path.lower().endswith(".html") else path
        out = []
        for src, dst in ((html, stem + ".html"), (js, stem + ".json")):
            if src:
                shutil.copyfile(src, dst)
                out.append(dst)
        return out

    def inputs_file(self) -> str | None:
        p = ((self.result or {}).get("files") or {}).get("inputs")
        return p if p and os.path.exists(p) else None

    def save_inputs(self, path: str | None = None) -> str | None:
        """Copy the inputs both models were fed (.npz, one array per input) to ``path`` (asked when None)."""
        src = self.inputs_file()
        if src is None:
            return None
        if path is None:
            path, _ = QFileDialog.getSaveFileName(self, "Save the inputs used", "inputs.npz", "NumPy arrays (*.npz)")
            if not path:
                return None
        if not path.lower().endswith(".npz"):
            path += ".npz"
        shutil.copyfile(src, path)
        return path

    def can_reduce(self) -> bool:
        res = self.result or {}
        return bool(res.get("layers")) and not res.get("passed", True) and self.registry is not None

    def reduce_target(self, layer: int | None = None) -> int | None:
        """The layer a reduction cuts to: ``layer`` (else the pair shown) when it fails, else None (the
        engine's first divergence)."""
        k = self.index if layer is None else int(layer)
        r = self.layer(k) if k is not None and k >= 0 else None
        return int(r["index"]) if r is not None and r.get("status") in FAILING else None

    def reduce(self, out: str | None = None, layer: int | None = None):
        """Start the ``reduce`` task on the comparison's two models: the smallest ONNX cut that still fails
        the same way at pair ``layer`` (default: the pair shown when it fails, else the first divergence).
        The comparison's kept folder is reused (its tolerance and inputs; no comparison is run again) while it
        exists. Returns the job (None when it cannot)."""
        if not self.can_reduce():
            return None
        from converters.jobs.protocol import ReduceParams

        if self.reduce_job is not None and self.reduce_job.running:
            return self.reduce_job
        res, p = self.result, self.params or {}
        tol = res.get("tolerance") or {}
        inputs = list(p.get("inputs") or [])
        target = self.reduce_target(layer)
        params = ReduceParams(res["a"]["path"], res["b"]["path"], out=out, preset=p.get("preset") or tol.get("name"),
                              seed=int(p.get("seed") or res.get("seed") or 0), inputs=inputs or None,
                              trust=bool(p.get("trust")), layer=target, result_dir=self.result_dir)
        r = self.layer(target) if target is not None else None
        job = self.registry.run("reduce", params.to_dict(), title=f"reduce {os.path.basename(res['b']['path'])}"
                                + (f" at {r['a']}" if r else ""))
        self.reduce_job = job
        self.repro = None
        self.repro_label.setText(f"Reducing to a minimal repro of '{r['a']}'…" if r else
                                 "Reducing to a minimal repro of the first divergence…")
        self.repro_label.show()
        self.repro_bar.setRange(0, 0)
        for w in (self.repro_bar, self.repro_cancel):
            w.show()
        for w in (self.open_repro_button, self.open_folder_button):
            w.hide()
        job.progress.connect(lambda f, m, j=job: self._reduce_progress(j, f, m))
        job.finished.connect(lambda r, j=job: self._reduce_done(j, r))
        job.failed.connect(lambda m, k, j=job: self._reduce_failed(j, m, k))
        return job

    def cancel_reduce(self) -> None:
        if self.reduce_job is not None and self.reduce_job.running:
            self.reduce_job.cancel()

    def _reduce_progress(self, job, f, m: str) -> None:
        if job is not self.reduce_job:
            return
        from ..jobs import show_fraction

        show_fraction(self.repro_bar, f)
        if m:
            self.repro_label.setText(f"Reducing: {m}")

    def _reduce_ended(self) -> None:
        for w in (self.repro_bar, self.repro_cancel):
            w.hide()

    def _reduce_failed(self, job, message: str, kind: str) -> None:
        if job is not self.reduce_job:
            return
        self._reduce_ended()
        self.repro_label.setText("Reduction cancelled." if kind == ErrorKind.CANCELLED else
                                 f"No repro: {message}")

    def _reduce_done(self, job, r: dict) -> None:
        if job is not self.reduce_job:
            return
        self._reduce_ended()
        self.repro = r
        if not r.get("differ"):
            self.repro_label.setText(r.get("message") or "A and B agree: nothing to reduce.")
            return
        ops = sorted(set(r.get("ops") or []))
        self.repro_label.setText(
            f"Repro: {r.get('nodes_after')} of {r.get('nodes_before')} nodes ({', '.join(ops[:4])}"
            f"{'…' if len(ops) > 4 else ''}) ending at '{r.get('target')}', still off by max abs "
            f"{_g(r.get('max_abs'))}, in {r.get('out_dir')}")
        self.repro_label.setToolTip("\n".join(r.get("nodes") or []))
        self.open_repro_button.setVisible(bool(self.repro_model()))
        self.open_folder_button.show()
        self.reduced.emit(r)

    def repro_model(self) -> str | None:
        p = ((self.repro or {}).get("files") or {}).get("model")
        return p if p and os.path.exists(p) else None

    def open_repro(self) -> None:
        p = self.repro_model()
        if p:
            self.openRequested.emit(p)

    def open_repro_folder(self) -> bool:
        d = (self.repro or {}).get("out_dir")
        return bool(d) and QDesktopServices.openUrl(QUrl.fromLocalFile(d))

