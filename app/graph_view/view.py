"""GraphView: the zoomable, collapsible graph of a :class:`converters.viewpack.ViewPack`.

The pack's precomputed overview is drawn at once; any other expansion state is laid out in a background
thread with :class:`converters.layout.LayoutEngine` (the newest request wins, stale results are dropped)
and arrives on the GUI thread through a queued signal. Drawing is one item (see :mod:`.item`).

A graph opens at a zoom where op names and edge shapes can be read (:data:`READABLE_ZOOM`), anchored
on its inputs at the top; the minimap (:mod:`.minimap`) has the overview. Mouse: drag pans, the wheel
(or a pinch) zooms about the cursor, a click selects a node, a double click (or the + / − marker)
expands a collapsed group or collapses an expanded one. Keys and toolbar zoom about the selected node
when it is on screen, else about the middle. The canvas follows the window's theme at runtime (the
legend, :mod:`.legend`, and the minimap too). :meth:`GraphView.export_image` writes PNG or SVG
(:mod:`.export`).
"""
from __future__ import annotations

import itertools
import time
from concurrent.futures import ThreadPoolExecutor

from PySide6.QtCore import QEvent, QObject, QPoint, QPointF, QRectF, Qt, QTimer, Signal
from PySide6.QtWidgets import QGraphicsScene, QGraphicsView, QVBoxLayout, QWidget

from . import hits, palette
from .canvas import Canvas
from .item import GraphItem, LayoutData
from .legend import Legend, paint_key
from .minimap import Minimap, thumbnail

__all__ = ["GraphView", "paint_key", "READABLE_ZOOM"]

# The first view's zoom: node op names (11 px), names (9 px) and edge shapes (8 px) drawn at their size
READABLE_ZOOM = 1.0


class _Bridge(QObject):
    """Carries results from the layout thread to the GUI thread (queued: the receiver lives there)."""

    done = Signal(int, object, object)     # request id, LayoutData or None, error text or None


class GraphView(QWidget):
    """The graph canvas.

    Signals: ``nodeSelected(int)`` (node index, -1 for none), ``drawn()`` (a requested layout is on
    screen), ``busy(bool)`` (a layout is being computed), ``viewChanged()`` (panned or zoomed),
    ``groupToggled(int, bool)`` (a group expanded (True) or collapsed; -1: all of them), ``exported(str,
    str)`` (a picture written in the background, or the error line).
    """

    READABLE_ZOOM = READABLE_ZOOM

    nodeSelected = Signal(int)
    drawn = Signal()
    exported = Signal(str, str)     # path, error line ("" when written): export_dialog's background result
    busy = Signal(bool)
    viewChanged = Signal()
    groupToggled = Signal(int, bool)
    layoutFailed = Signal(str)      # a layout request failed (one line); the graph keeps what it drew

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.pack = None
        self._expanded: set[int] = set()
        self._data: LayoutData | None = None
        self._selected = -1
        self._pending_drawn = False
        self._center_on_node: int | None = None
        self._req = itertools.count(1)
        self._latest = 0
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="graph-layout")
        self._export_pool: ThreadPoolExecutor | None = None
        self._bridge = _Bridge()
        self._bridge.done.connect(self._on_layout, Qt.ConnectionType.QueuedConnection)
        self._scene = QGraphicsScene(self)
        self._scene.setItemIndexMethod(QGraphicsScene.ItemIndexMethod.NoIndex)
        self._item = GraphItem()
        self._scene.addItem(self._item)
        self._canvas = Canvas(self)
        self._canvas.setScene(self._scene)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(self._canvas)
        # a child of this widget, not of the viewport: QGraphicsView scrolls the viewport's children
        self._minimap = Minimap(self, self)
        self._minimap.hide()
        self._legend = Legend(self, self)
        self._legend.hide()
        self._overlay = None
        self._pairing = None
        self._show_legend = True
        self.last_layout_seconds = 0.0
        self._prefetch_engine = None
        # load the fonts now (tens of ms the first time), not during the first paint of a graph
        from PySide6.QtGui import QFontMetricsF

        from .item import _fonts
        for f in _fonts():
            QFontMetricsF(f).horizontalAdvance("Conv 0123456789")

    # -- public API ----------------------------------------------------------------------------------
    def set_pack(self, pack) -> None:
        """Show a pack: its precomputed overview at once (collapsed when large), the rest on demand.

        Setting a pack of the same graph again (same node and group counts, e.g. the full pack after a
        quick first one) keeps the expansion state, the selection and the viewport.
        """
        old = self.pack
        same = (old is not None and pack is not None and self._data is not None and pack.same_structure(old))
        if same:
            pack.adopt_engine(old)
        self.pack = pack
        self._latest = next(self._req)      # drop any layout still running for the old pack
        if not same and self._overlay is not None:
            self.set_overlay(None)          # its node indices belong to the old graph
        if pack is None or pack.weights_only or pack.n_nodes == 0:
            self._expanded = set()
            self._show(None)
            return
        self._apply_theme()
        if same:
            self._request(set(self._expanded), keep_view=True)
            return
        self._selected = -1
        self._item.selected = -1
        if pack.overview is not None:
            self._expanded = set(pack.overview.expanded) - {0}
            self._show(LayoutData(pack.overview, pack), initial=True)
        else:
            self._expanded = set()
            self._request(set(), initial=True)
        # build the engine off the GUI thread once the first view is on screen, so the first expand
        # is quick and the first paint does not compete with it
        self._prefetch_engine = pack

    def fit(self) -> None:
        """Show the whole graph."""
        if self._data is not None:
            self._canvas.fitInView(self._data.bounds, Qt.AspectRatioMode.KeepAspectRatio)
            self._minimap.update()
            self.viewChanged.emit()

    def zoom_in(self) -> None:
        self._zoom_by(1.25)

    def zoom_out(self) -> None:
        self._zoom_by(0.8)

    def find(self, text: str) -> list[int]:
        """Nodes whose name contains ``text`` or whose op type is ``text`` (case-insensitive); selects
        and centres the first (expanding the groups that hide it)."""
        if self.pack is None or self.pack.weights_only:
            return []
        hits = self.pack.find(text)
        if hits:
            self.select(hits[0], center=True)
        return hits

    def select(self, node_index: int, center: bool = True) -> None:
        """Select a node (-1 clears). Groups hiding it are expanded; the view moves to it when ``center``."""
        if self.pack is None:
            return
        i = int(node_index)
        if i >= self.pack.n_nodes:
            raise IndexError(f"node {i} out of range")
        self._selected = i if i >= 0 else -1
        self._item.selected = self._selected
        self._item.update()
        if i >= 0 and self._data is not None and self._data.node_row[i] < 0:
            self._expanded.update(self.pack.engine().ancestors(i))
            self._center_on_node = i if center else None
            self._request(set(self._expanded), keep_view=True)
        elif i >= 0 and center and self._data is None:
            self._center_on_node = i          # once the first layout is on screen
        elif i >= 0 and center:
            self._center_node(i)
        self.nodeSelected.emit(self._selected)

    @property
    def selected(self) -> int:
        return self._selected

    def set_overlay(self, overlay) -> None:
        """Paint an :class:`~app.graph_view.overlay.ErrorOverlay` over the nodes (None removes it).
        Call again after changing its threshold: the colours are looked up per paint, not copied."""
        if overlay is not None and (self.pack is None or overlay.n_nodes != self.pack.n_nodes):
            overlay = None                 # made for another graph
        self._overlay = overlay
        self._item.overlay = overlay
        self._item.group_bins = (overlay.group_bins(self.pack.group_parent, self.pack.node_group)
                                 if overlay is not None else None)
        self._legend.set_overlay(overlay)
        self._item.update()

    @property
    def overlay(self):
        return self._overlay

    def set_pairing(self, pairing) -> None:
        """Mark how each node is paired (an :class:`~app.graph_view.overlay.Pairing`: method badges, the
        unmatched nodes hatched, a legend entry); None removes it."""
        if pairing is not None and (self.pack is None or pairing.n_nodes != self.pack.n_nodes):
            pairing = None
        self._pairing = pairing
        self._item.pairing = pairing
        self._legend.set_pairing(pairing)
        self._item.update()

    @property
    def pairing(self):
        return self._pairing

    @property
    def show_legend(self) -> bool:
        """Whether the overlay's key is drawn (when there is an overlay or a pairing)."""
        return self._show_legend

    @show_legend.setter
    def show_legend(self, on: bool) -> None:
        self._show_legend = bool(on)
        self._legend._fit()

    @property
    def zoom(self) -> float:
        """Screen pixels per scene unit."""
        return float(self._canvas.transform().m11())

    def view_center(self) -> QPointF:
        """The scene point at the middle of the viewport."""
        return self._canvas.mapToScene(self._canvas.viewport().rect().center())

    def set_view(self, zoom: float, center: QPointF) -> None:
        """Zoom to ``zoom`` (screen pixels per scene unit) and centre the viewport on scene point ``center``."""
        c = self._canvas
        c.resetTransform()
        c.scale(zoom, zoom)
        c.centerOn(center)
        self._minimap.update()
        self.viewChanged.emit()

    def drawn_anchor(self, node: int) -> QRectF | None:
        """Where node ``node`` is on screen: its rectangle, or the box of the collapsed group that hides
        it (None when neither is drawn)."""
        r = self.node_scene_rect(node)
        if r is not None or self.pack is None or self._data is None:
            return r
        par = self.pack.group_parent
        g = int(self.pack.node_group[node])
        while g > 0 and g not in self._data.box_row:
            g = int(par[g])
        return self.group_scene_rect(g) if g > 0 else None

    def expand(self, group: int) -> None:
        """Expand a group (its ancestors too)."""
        g = int(group)
        add = {g}
        if self.pack is not None:
            par = self.pack.group_parent
            p = int(par[g])
            while p > 0:
                add.add(p)
                p = int(par[p])
        self._expanded |= add
        self._request(set(self._expanded), keep_view=True)
        self.groupToggled.emit(g, True)

    def collapse(self, group: int) -> None:
        """Collapse a group (its subgroups keep their state for when it opens again)."""
        self._expanded.discard(int(group))
        self._request(set(self._expanded), keep_view=True)
        self.groupToggled.emit(int(group), False)

    def expand_all(self) -> None:
        if self.pack is not None:
            self._expanded = set(range(1, self.pack.n_groups))
            self._request(set(self._expanded), keep_view=True)
            self.groupToggled.emit(-1, True)

    def collapse_all(self) -> None:
        self._expanded = set()
        self._request(set(), keep_view=False, initial=True)
        self.groupToggled.emit(-1, False)

    def drawn_count(self) -> int:
        """Nodes plus collapsed group boxes in the current layout."""
        return self._data.lay.n_drawn if self._data is not None else 0

    def drawn_nodes(self) -> int:
        return len(self._data.lay.node_idx) if self._data is not None else 0

    def group_at_node(self, node_index: int) -> int:
        return int(self.pack.node_group[node_index]) if self.pack is not None else -1

    @property
    def expanded_groups(self) -> set[int]:
        return set(self._expanded)

    # -- layout requests -----------------------------------------------------------------------------
    def _request(self, expanded: set[int], keep_view: bool = True, initial: bool = False) -> None:
        rid = self._latest = next(self._req)
        pack = self.pack
        dark = self._item.dark
        self.busy.emit(True)

        def work():
            if rid != self._latest:
                return
            try:
                t = time.perf_counter()
                lay = pack.engine().layout(expanded)
                d = LayoutData(lay, pack)
                if rid != self._latest:
                    return
                d.thumb = thumbnail(d, dark)
                d.seconds = time.perf_counter() - t
                self._bridge.done.emit(rid, (d, keep_view, initial), None)
            except Exception as exc:  # a bug must not leave the view busy forever: logged, and said in one line
                import logging

                logging.getLogger("tensorbridge.window").exception("graph layout failed")
                self._bridge.done.emit(rid, None, f"{type(exc).__name__}: {exc}")

        self._pool.submit(work)

    def _on_layout(self, rid: int, payload, error) -> None:
        if rid != self._latest:
            return                        # a newer request is on its way
        self.busy.emit(False)
        if payload is None:
            if error:
                self.layoutFailed.emit(str(error).splitlines()[0][:300])
            return
        d, keep_view, initial = payload
        self.last_layout_seconds = getattr(d, "seconds", 0.0)
        self._show(d, keep_view=keep_view, initial=initial)

    def _show(self, d: LayoutData | None, keep_view: bool = False, initial: bool = False) -> None:
        canvas = self._canvas
        anchor = None
        if keep_view and self._data is not None:
            anchor = canvas.mapToScene(canvas.viewport().rect().center())
        self._data = d
        self._item.set_data(d)
        if d is None:
            self._scene.setSceneRect(QRectF(0, 0, 1, 1))
            self._minimap.hide()
            self._pending_drawn = True
            canvas.viewport().update()
            return
        m = 400.0
        b = d.bounds
        self._scene.setSceneRect(b.adjusted(-m, -m, m, m))
        thumb = getattr(d, "thumb", None)
        if thumb is None:
            thumb = d.thumb = thumbnail(d, self._item.dark)
        self._minimap.set_thumb(thumb, d.lay.width, d.lay.height)
        if self._center_on_node is not None and d.node_row[self._center_on_node] >= 0:
            self._center_node(self._center_on_node)
            self._center_on_node = None
        elif initial or not keep_view:
            self._initial_view()
        elif anchor is not None:
            canvas.centerOn(anchor)
        self._pending_drawn = True
        canvas.viewport().update()

    def _initial_view(self) -> None:
        """Open where a first-time user can read it: the whole graph when it fits at the readable zoom,
        else the readable zoom anchored on the graph's inputs at the top (the minimap shows the rest)."""
        d = self._data
        c = self._canvas
        vw, vh = max(50, c.viewport().width()), max(50, c.viewport().height())
        s = READABLE_ZOOM
        c.resetTransform()
        c.scale(s, s)
        cx = d.lay.width / 2
        if d.bounds.width() * s > vw:
            lo, hi = hits.top_row_span(d)
            cx = (lo + hi) / 2 if (hi - lo) * s <= vw - 40 else lo - 20 + vw / (2 * s)
        cy = d.lay.height / 2 if d.bounds.height() * s <= vh else d.bounds.top() + vh / (2 * s)
        c.centerOn(QPointF(cx, cy))
        self._minimap.update()
        self.viewChanged.emit()

    def _center_node(self, i: int) -> None:
        d = self._data
        k = int(d.node_row[i]) if d is not None else -1
        if k < 0:
            return
        x, y, w, h = d.lay.node_rect[k]
        if self._canvas.transform().m11() < 0.6:
            self._canvas.resetTransform()
            self._canvas.scale(1.0, 1.0)
        self._canvas.centerOn(QPointF(x + w / 2, y + h / 2))
        self._minimap.update()
        self.viewChanged.emit()

    def _prefetch(self, pack, start: int) -> None:
        """Layout thread: build the engine, then every group's layering and order, a slice at a time
        so that a user's request waits at most one slice (~30 ms). Expanding anything is then quick."""
        if pack is not self.pack:
            return
        eng = pack.engine()
        t = time.perf_counter()
        g = start
        while g < eng.G and time.perf_counter() - t < 0.03:
            eng.structure(g)
            g += 1
        if g < eng.G and pack is self.pack:
            try:
                self._pool.submit(self._prefetch, pack, g)
            except RuntimeError:      # the view is closing
                pass

    def _after_paint(self) -> None:
        if self._pending_drawn:
            self._pending_drawn = False
            QTimer.singleShot(0, self.drawn.emit)
            pack, self._prefetch_engine = self._prefetch_engine, None
            if pack is not None:
                self._pool.submit(self._prefetch, pack, 0)

    # -- interaction ---------------------------------------------------------------------------------
    def _zoom_by(self, f: float, anchor: QPoint | None = None) -> None:
        """Zoom by ``f`` keeping the scene point under viewport point ``anchor`` where it is on screen;
        without one, about the selected node when it is on screen, else about the viewport's middle."""
        c = self._canvas
        cur = c.transform().m11()
        f = max(0.00005 / cur, min(f, 8.0 / cur))
        if anchor is None:
            anchor = self._zoom_anchor()
        before = c.mapToScene(anchor)
        # room to pan: the scene grows to hold the view about the anchor (a graph narrower than the
        # view would otherwise be centred by the canvas, and the anchor would jump)
        z = cur * f
        vp = c.viewport().rect()
        want = QRectF(before.x() - anchor.x() / z, before.y() - anchor.y() / z, vp.width() / z, vp.height() / z)
        if not self._scene.sceneRect().contains(want):
            self._scene.setSceneRect(self._scene.sceneRect().united(want.adjusted(-2 / z, -2 / z, 2 / z, 2 / z)))
        c.scale(f, f)                         # the canvas has no transformation anchor of its own
        after = c.mapToScene(anchor)
        c.translate(after.x() - before.x(), after.y() - before.y())
        self._minimap.update()
        self.viewChanged.emit()

    def _zoom_anchor(self) -> QPoint:
        vp = self._canvas.viewport().rect()
        r = self.node_scene_rect(self._selected) if self._selected >= 0 else None
        if r is not None:
            at = self._canvas.mapFromScene(r.center())
            if vp.contains(at):
                return at
        return vp.center()

    def _place_minimap(self) -> None:
        vp = self._canvas.viewport()
        top_right = vp.mapTo(self, vp.rect().topRight())
        self._minimap.move(top_right.x() - self._minimap.width() - 8, top_right.y() + 8)
        self._minimap.raise_()
        bottom_left = vp.mapTo(self, vp.rect().bottomLeft())
        self._legend.move(bottom_left.x() + 8, bottom_left.y() - self._legend.height() - 8)
        self._legend.raise_()

    def hit(self, pos: QPointF) -> tuple[str, int]:
        """What is at a scene point: ("node", i), ("io", k), ("box", g), ("frame", g), ("frame-marker", g),
        ("box-marker", g) or ("", -1)."""
        return hits.hit(self._data, pos)

    def _tooltip(self, pos: QPointF) -> str:
        return hits.tooltip(self.pack, self._data, pos, self._overlay, self._pairing)

    def keyPressEvent(self, event) -> None:
        key = event.key()
        if key in (Qt.Key.Key_Plus, Qt.Key.Key_Equal):
            self.zoom_in()
        elif key == Qt.Key.Key_Minus:
            self.zoom_out()
        elif key == Qt.Key.Key_F:
            self.fit()
        elif key == Qt.Key.Key_Escape:
            self.select(-1, center=False)
        else:
            super().keyPressEvent(event)
            return
        event.accept()

    def _click(self, pos: QPointF, double: bool) -> None:
        kind, idx = self.hit(pos)
        if kind == "node":
            self.select(idx, center=False)
        elif kind == "box-marker" or (kind == "box" and double):
            self.expand(idx)
        elif kind == "frame-marker" or (kind == "frame" and double):
            self.collapse(idx)
        elif kind == "" and not double:
            if self._selected != -1:
                self.select(-1, center=False)

    def changeEvent(self, event) -> None:
        # a theme switch (MainWindow.set_theme changes the application's palette at runtime): the canvas,
        # the frames, the overlay's outlines, the minimap and the legend have a light and a dark set
        if event.type() in (QEvent.Type.PaletteChange, QEvent.Type.ApplicationPaletteChange):
            self._apply_theme()
        super().changeEvent(event)

    def _apply_theme(self) -> None:
        dark = palette.is_dark(self.palette())
        changed = dark != self._item.dark
        self._item.dark = dark
        self._scene.setBackgroundBrush(palette.canvas_background(self.palette()))
        if changed and self._data is not None:
            self._data.thumb = thumbnail(self._data, dark)
            self._minimap.thumb = self._data.thumb
        self._item.update()
        self._minimap.update()
        self._legend.update()

    @property
    def dark(self) -> bool:
        """Whether the canvas is drawn in its dark set (it follows the window's palette)."""
        return self._item.dark

    def closeEvent(self, event) -> None:
        self._latest = next(self._req)
        self._pool.shutdown(wait=False, cancel_futures=True)
        if self._export_pool is not None:
            self._export_pool.shutdown(wait=False)
        super().closeEvent(event)

    def node_scene_rect(self, i: int) -> QRectF | None:
        """Scene rectangle of a drawn node (None when hidden in a collapsed group)."""
        d = self._data
        if d is None or d.node_row[i] < 0:
            return None
        return QRectF(*d.lay.node_rect[int(d.node_row[i])])

    def group_scene_rect(self, g: int) -> QRectF | None:
        d = self._data
        if d is None:
            return None
        if g in d.box_row:
            return QRectF(*d.lay.box_rect[d.box_row[g]])
        if g in d.frame_row:
            return QRectF(*d.lay.frame_rect[d.frame_row[g]])
        return None

    @property
    def canvas(self) -> QGraphicsView:
        return self._canvas

    # -- export --------------------------------------------------------------------------------------
    def export_snapshot(self, whole: bool = True):
        """What :meth:`export_image` paints (an :class:`~app.graph_view.export.Snapshot`; None with no
        graph): the whole drawing at a readable scale, or the part on screen at the current zoom."""
        from .export import Snapshot

        d = self._data
        if d is None:
            return None
        kw = dict(background=self._scene.backgroundBrush().color(), dark=self._item.dark, selected=self._selected,
                  overlay=self._overlay, group_bins=self._item.group_bins, pairing=self._pairing)
        if whole:
            return Snapshot.whole(d, **kw)
        vis = self._canvas.mapToScene(self._canvas.viewport().rect()).boundingRect()
        return Snapshot(d, vis, self.zoom, **kw)

    def export_image(self, path: str, whole: bool = True):
        """Write the graph to ``path`` as PNG or SVG (by the extension): the whole graph at a readable
        scale (``whole``) or the visible part as it is on screen. Returns the picture's size (QSize).
        Any thread may render a snapshot (see :mod:`.export`); this call renders on the caller's."""
        from .export import render

        snap = self.export_snapshot(whole)
        if snap is None:
            raise ValueError("no graph to export: open a model first")
        return render(snap, path)

    def export_dialog(self) -> None:
        """View ▸ Export graph…: ask for a file (PNG or SVG) and the extent, render it in the background;
        the window's status bar says where it went, a message box says what went wrong."""
        from .export_dialog import ask_export

        ask_export(self)
