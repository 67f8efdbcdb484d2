"""The plots pane of the Parity panel: an output's histogram and scatter, where an image-like output
differs (an error map) or how often a classifier's top classes agree (top-k), and error against depth.

:class:`OutputPlots` is a mixin of :class:`app.panels.parity.ParityPanel`: its methods draw into the
panel's ``plots`` pane (made by the panel, filled here with pyqtgraph widgets on first use) from the
panel's ``diffs``, ``arrays`` and ``layers``; the plot attributes (``hist_plot``, ``depth_item`` …) are
set to None in the panel's constructor. :func:`depth_points` is the depth plot's data, pure.
"""
from __future__ import annotations

import numpy as np
from PySide6.QtCore import Qt

from converters.compare.plots import (SCATTER_POINTS, channels_last_runtime, error_map, histogram_bars,
                                      scatter_sample, topk_bars)

__all__ = ["OutputPlots", "depth_points"]

_TITLE_SIZE = "9pt"
_DEPTH_COLORS = {"ok": "#1e8e3e", "source": "#c5221f", "inherited": "#e37400", "layout": "#8e24aa",
                 "missing": "#70757a"}


def _short(name: str, limit: int = 22) -> str:
    """``name`` elided in the middle to ``limit`` characters (plot titles must fit a narrow pane)."""
    return name if len(name) <= limit else name[: limit // 2 - 1] + "…" + name[-(limit - limit // 2):]


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


class OutputPlots:
    """The plot methods of the Parity panel (see the module docs)."""

    def plot_output(self, row: int) -> None:
        """Draw the histogram (the engine's counts) and the scatter of table row ``row`` (shown on the Outputs
        page; see :meth:`plots_for_page`)."""
        if self.pages.currentWidget() is self.layers:
            return
        pair = self.pair_arrays(row) if 0 <= row < len(self.diffs) else None
        if pair is None:
            if self.hist_plot is not None:
                for p in (self.hist_plot, self.scatter_plot, self.map_plot, self.topk_plot):
                    p.hide()
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
        name = str(self.diffs[row]["name"])
        exact = f"; {int(counts[0]):,} exact (left bar)" if counts.size and counts[0] else ""
        self.hist_plot.setTitle(f"|A − B| of {_short(name)}", size=_TITLE_SIZE)
        self.hist_plot.setToolTip(f"how many elements of {name} differ by how much (log10 |A − B|){exact}")
        self.scatter_plot.setTitle("B against A", size=_TITLE_SIZE)
        self.scatter_plot.setToolTip(f"{x.size:,} of {a.size:,} values of {name}, B against A; the dashed line "
                                     "is y = x")
        self.hist_plot.enableAutoRange()
        self.scatter_plot.enableAutoRange()
        self._plot_map(row, a, b)
        self._plot_topk(row)
        self._show_plots()

    def _plot_map(self, row: int, a: np.ndarray, b: np.ndarray) -> None:
        """The error map of an image-like output (log10 |A − B| over height and width); hidden otherwise."""
        runtime = ((self.result or {}).get("a") or {}).get("runtime")
        m = error_map(a, b, channels_last=channels_last_runtime(runtime))
        self.error_map = m
        if m is None:
            self.map_plot.hide()
            return
        img = m["map"]
        pos = img[np.isfinite(img) & (img > 0)]
        hi = float(pos.max()) if pos.size else 1e-12
        # exact matches sit a decade below the smallest error (the scale spans at most 6 decades)
        lo = max(float(pos.min()) / 10 if pos.size else hi / 10, hi * 1e-6)
        logged = np.log10(np.clip(np.where(np.isfinite(img), img, hi), lo, None))
        self.map_image.setImage(logged, autoLevels=False)
        top, bottom = float(np.log10(hi)), float(np.log10(lo))
        self.map_image.setLevels((bottom, top))
        self.map_bar.setLevels((bottom, top))
        self.map_plot.getViewBox().setRange(xRange=(0, img.shape[1]), yRange=(0, img.shape[0]), padding=0)
        name = self.diffs[row]["name"]
        self._map_title = f"where {_short(name, 16)} differs"
        self.map_plot.setTitle(self._map_title, size=_TITLE_SIZE)
        bh, bw = m["block"]
        tip = f"log10 |A − B| of {name} over its {m['height']}×{m['width']} height and width"
        tip += f", {m['reduced']}" if m["reduced"] else ""
        tip += f"; each cell is the worst of {bh}×{bw} pixels" if bh * bw > 1 else ""
        self.map_plot.setToolTip(tip + ". Hover for values")
        self.map_plot.show()

    def map_value_at(self, i: int, j: int) -> str:
        """The hover text of error-map cell (row ``i``, column ``j``)."""
        m = self.error_map
        if m is None or not (0 <= i < m["map"].shape[0] and 0 <= j < m["map"].shape[1]):
            return ""
        bh, bw = m["block"]
        where = f"row {i * bh}, column {j * bw}" if bh * bw == 1 else \
            f"rows {i * bh}–{min(m['height'], (i + 1) * bh) - 1}, columns {j * bw}–{min(m['width'], (j + 1) * bw) - 1}"
        return f"{where}: |A − B| {float(m['map'][i, j]):.3g}"

    def _map_hover(self, pos) -> None:
        if self.error_map is None or self.map_plot.isHidden() or not self.map_plot.sceneBoundingRect().contains(pos):
            return
        p = self.map_plot.getViewBox().mapSceneToView(pos)
        text = self.map_value_at(int(np.floor(p.y())), int(np.floor(p.x())))
        self.map_plot.setTitle(text or self._map_title, size=_TITLE_SIZE)

    def _plot_topk(self, row: int) -> None:
        """Top-k agreement of a classifier output (the engine's ``topk``) as bars; hidden otherwise."""
        labels, pct = topk_bars(self.diffs[row].get("topk"))
        self.topk_values = dict(zip(labels, pct.tolist()))
        if not labels:
            self.topk_plot.hide()
            return
        x = np.arange(len(labels), dtype=np.float64)
        self.topk_item.setOpts(x=x, height=pct, width=0.6)
        self.topk_plot.getAxis("bottom").setTicks([list(zip(x.tolist(), labels))])
        import pyqtgraph as pg

        for t in self.topk_texts:
            self.topk_plot.removeItem(t)
        self.topk_texts = []
        fg = self.palette().text().color()
        for xi, v in zip(x.tolist(), pct.tolist()):  # each bar's figure on top of it
            t = pg.TextItem(f"{v:.0f}%", color=fg, anchor=(0.5, 1.0))
            t.setPos(xi, min(v, 100.0))
            self.topk_plot.addItem(t)
            self.topk_texts.append(t)
        self.topk_plot.setXRange(-0.6, len(labels) - 0.4, padding=0)
        self.topk_plot.setYRange(0, 118, padding=0)
        self.topk_plot.setTitle(f"top-k of {_short(str(self.diffs[row]['name']), 14)}", size=_TITLE_SIZE)
        self.topk_plot.setToolTip("how often B's top classes are A's: top-1 is the share of samples whose best "
                                  "class is the same; top-k the mean overlap of the k best")
        self.topk_plot.show()

    def plots_for_page(self) -> None:
        """The plots follow the dock's page: the selected output's (histogram, scatter, error map or top-k) on
        the Outputs page, error against depth on the Layers page (whose pair has its own images)."""
        layers = self.pages.currentWidget() is self.layers
        if self.hist_plot is None:
            return
        if layers:
            for p in (self.hist_plot, self.scatter_plot, self.map_plot, self.topk_plot):
                p.hide()
            self.depth_plot.setVisible(bool(self.depth_layers))
        else:
            self.depth_plot.hide()
            rows = self.table.selectionModel().selectedRows()
            if rows:
                self.plot_output(rows[0].row())
                return
        self._show_plots()

    def _show_plots(self) -> None:
        """The plots pane is shown while any of its plots is."""
        any_plot = self.hist_plot is not None and any(
            not p.isHidden() for p in (self.hist_plot, self.scatter_plot, self.map_plot, self.topk_plot,
                                       self.depth_plot))
        if not any_plot:
            self.plots.hide()
            return
        shown = sum(not p.isHidden() for p in (self.hist_plot, self.scatter_plot, self.map_plot, self.topk_plot,
                                                self.depth_plot))
        if not self.plots.isVisible() or shown != getattr(self, "_plots_shown", 0):
            self.plots.show()
            # each plot gets about 200 px, the table (12 columns) keeps at least 40 % of the width
            w = max(self.split.width(), 600)
            room = min(int(w * 0.6), 200 * shown + 20)
            if self.pages.currentWidget() is self.layers:  # the depth plot; the pair's images keep the most room
                room = min(int(w * 0.3), 420)
            self.split.setSizes([w - room, room])
        self._plots_shown = shown

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
        self.depth_plot.setVisible(self.pages.currentWidget() is self.layers)
        self._show_plots()

    def _update_depth_threshold(self) -> None:
        if self.depth_threshold_line is None:
            return
        atol = getattr(self, "_depth_atol", 1e-5)
        t = self.layers.threshold
        self.depth_threshold_line.setValue(np.log10(atol if atol > 0 else 1e-12) + t)
        self.depth_threshold_line.setVisible(self.layers.overlay_on and t != 0)

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
            p.setMinimumSize(150, 150)
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
        # where an image-like output differs, and a classifier's top-k agreement (each only when it applies)
        self.map_plot = pg.PlotWidget(self.plots)
        self.topk_plot = pg.PlotWidget(self.plots)
        for p in (self.map_plot, self.topk_plot):
            p.setMenuEnabled(False)
            p.hideButtons()
            p.setMinimumSize(150, 150)
            self.plots_layout.addWidget(p, 2)
            p.hide()
        mvb = self.map_plot.getViewBox()
        mvb.invertY(True)
        mvb.setAspectLocked(True)
        mvb.setMouseEnabled(False, False)
        for ax in ("left", "bottom"):
            self.map_plot.getAxis(ax).setStyle(showValues=False)
        self.map_image = pg.ImageItem(axisOrder="row-major")
        self.map_plot.addItem(self.map_image)
        self.map_bar = pg.ColorBarItem(colorMap=pg.colormap.get("inferno"), interactive=False, width=10,
                                       colorMapMenu=False, label="log10 |A − B|")
        self.map_bar.setImageItem(self.map_image, insert_in=self.map_plot.getPlotItem())
        self.map_plot.scene().sigMouseMoved.connect(self._map_hover)
        self.topk_item = pg.BarGraphItem(x=[0], height=[0], width=0.6)
        self.topk_plot.addItem(self.topk_item)
        self.topk_plot.setLabel("left", "agree %")
        self.topk_plot.setMouseEnabled(False, False)
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
        for p in (self.hist_plot, self.scatter_plot, self.map_plot, self.topk_plot, self.depth_plot):
            p.setBackground(pal.base().color())
            for ax in ("left", "bottom"):
                p.getAxis(ax).setPen(fg)
                p.getAxis(ax).setTextPen(fg)
            p.getPlotItem().titleLabel.setAttr("color", fg.name())
        self.hist_item.setPen(pg.mkPen(hl))
        self.hist_item.setBrush(pg.mkBrush(fill))
        self.scatter_item.setSymbolPen(None)
        self.scatter_item.setSymbolBrush(pg.mkBrush(fill))
        self.topk_item.setOpts(pen=pg.mkPen(hl), brush=pg.mkBrush(fill))
        self.map_bar.axis.setPen(fg)
        self.map_bar.axis.setTextPen(fg)
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
