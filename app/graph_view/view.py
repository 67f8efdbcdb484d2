"""GraphView: the zoomable, collapsible graph of a :class:`converters.viewpack.ViewPack`.

The pack's precomputed overview is drawn at once; any other expansion state is laid out in a background
thread with :class:`converters.layout.LayoutEngine` (the newest request wins, stale results are dropped)
and arrives on the GUI thread through a queued signal. Drawing is one item (see :mod:`.item`).

Mouse: drag pans, the wheel (or a pinch) zooms around the cursor, a click selects a node, a double
click (or the + / − marker) expands a collapsed group or collapses an expanded one. The minimap in the
top-right corner shows the whole graph and the visible part; click or drag in it to move there.

Why one module of this size: the canvas, the minimap, the legend and :class:`GraphView` are one widget
that shares the scene, the zoom and the layout thread's requests; the drawing itself is already apart
(:mod:`.item`, :mod:`.palette`).
"""
from __future__ import annotations

import itertools
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from PySide6.QtCore import QEvent, QObject, QPointF, QRectF, Qt, QTimer, Signal
from PySide6.QtGui import QBrush, QColor, QFont, QImage, QMouseEvent, QPainter, QPen, QWheelEvent
from PySide6.QtWidgets import QFrame, QGraphicsScene, QGraphicsView, QToolTip, QVBoxLayout, QWidget

from . import palette
from .item import GraphItem, LayoutData

__all__ = ["GraphView"]


class _Bridge(QObject):
    """Carries results from the layout thread to the GUI thread (queued: the receiver lives there)."""

    done = Signal(int, object, object)     # request id, LayoutData or None, error text or None


class _Canvas(QGraphicsView):
    def __init__(self, owner: "GraphView"):
        super().__init__(owner)
        self.owner = owner
        self.setRenderHint(QPainter.RenderHint.Antialiasing, False)
        self.setDragMode(QGraphicsView.DragMode.ScrollHandDrag)
        self.setTransformationAnchor(QGraphicsView.ViewportAnchor.AnchorUnderMouse)
        self.setResizeAnchor(QGraphicsView.ViewportAnchor.AnchorViewCenter)
        self.setViewportUpdateMode(QGraphicsView.ViewportUpdateMode.SmartViewportUpdate)
        self.setOptimizationFlag(QGraphicsView.OptimizationFlag.DontAdjustForAntialiasing, True)
        self.setFrameShape(QFrame.Shape.NoFrame)
        self._press: QPointF | None = None
        self.viewport().grabGesture(Qt.GestureType.PinchGesture)

    def paintEvent(self, event) -> None:
        super().paintEvent(event)
        self.owner._after_paint()

    def scrollContentsBy(self, dx: int, dy: int) -> None:
        super().scrollContentsBy(dx, dy)
        self.owner._minimap.update()
        try:
            self.owner.viewChanged.emit()
        except (RuntimeError, TypeError):  # scrolled while the view is being destroyed: nobody listens
            pass

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        self.owner._place_minimap()

    def wheelEvent(self, event: QWheelEvent) -> None:
        delta = event.angleDelta().y() or event.pixelDelta().y()
        if delta:
            self.owner._zoom_by(1.0015 ** delta, anchor_under_mouse=True)
        event.accept()

    def viewportEvent(self, event: QEvent) -> bool:
        t = event.type()
        if t == QEvent.Type.NativeGesture:
            try:
                if event.gestureType() == Qt.NativeGestureType.ZoomNativeGesture:
                    self.owner._zoom_by(1.0 + event.value(), anchor_under_mouse=True)
                    return True
            except AttributeError:
                pass
        elif t == QEvent.Type.Gesture:
            pinch = event.gesture(Qt.GestureType.PinchGesture)
            if pinch is not None:
                self.owner._zoom_by(pinch.scaleFactor(), anchor_under_mouse=True)
                return True
        return super().viewportEvent(event)

    def mousePressEvent(self, event: QMouseEvent) -> None:
        self._press = event.position()
        super().mousePressEvent(event)

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:
        super().mouseReleaseEvent(event)
        if self._press is not None and event.button() == Qt.MouseButton.LeftButton:
            moved = (event.position() - self._press).manhattanLength()
            if moved < 4:
                self.owner._click(self.mapToScene(event.position().toPoint()), double=False)
        self._press = None

    def mouseMoveEvent(self, event: QMouseEvent) -> None:
        super().mouseMoveEvent(event)
        if not event.buttons():
            text = self.owner._tooltip(self.mapToScene(event.position().toPoint()))
            if text:
                QToolTip.showText(event.globalPosition().toPoint(), text, self.viewport())
            else:
                QToolTip.hideText()

    def mouseDoubleClickEvent(self, event: QMouseEvent) -> None:
        if event.button() == Qt.MouseButton.LeftButton:
            self.owner._click(self.mapToScene(event.position().toPoint()), double=True)
            event.accept()
            return
        super().mouseDoubleClickEvent(event)


class _Minimap(QWidget):
    """A thumbnail of the whole drawing with the visible rectangle; click or drag to move there."""

    MAX_W, MAX_H = 150, 220

    def __init__(self, owner: "GraphView", parent: QWidget):
        super().__init__(parent)
        self.owner = owner
        self.thumb: QImage | None = None
        self.setCursor(Qt.CursorShape.PointingHandCursor)
        self.setAttribute(Qt.WidgetAttribute.WA_OpaquePaintEvent, False)

    def set_thumb(self, img: QImage | None, w: float, h: float) -> None:
        self.thumb = img
        if w <= 0 or h <= 0:
            self.hide()
            return
        s = min(self.MAX_W / w, self.MAX_H / h)
        self.resize(max(24, int(w * s) + 6), max(24, int(h * s) + 6))
        self.show()
        self.owner._place_minimap()

    def _scale(self) -> tuple[float, float, float]:
        d = self.owner._data
        if d is None:
            return 1.0, 3.0, 3.0
        W, H = max(d.lay.width, 1.0), max(d.lay.height, 1.0)
        s = min((self.width() - 6) / W, (self.height() - 6) / H)
        return s, 3.0 + ((self.width() - 6) - W * s) / 2, 3.0 + ((self.height() - 6) - H * s) / 2

    def paintEvent(self, event) -> None:
        d = self.owner._data
        if d is None:
            return
        p = QPainter(self)
        dark = palette.is_dark(self.palette())
        p.fillRect(self.rect(), QColor(30, 30, 34, 210) if dark else QColor(250, 250, 252, 220))
        p.setPen(QColor("#8d949e"))
        p.drawRect(self.rect().adjusted(0, 0, -1, -1))
        s, ox, oy = self._scale()
        if self.thumb is not None:
            p.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, True)
            p.drawImage(QRectF(ox, oy, d.lay.width * s, d.lay.height * s), self.thumb)
        vis = self.owner._canvas.mapToScene(self.owner._canvas.viewport().rect()).boundingRect()
        pen = QPen(palette.SELECT)
        pen.setWidthF(1.5)
        p.setPen(pen)
        p.setBrush(QColor(255, 140, 0, 40))
        r = QRectF(ox + vis.x() * s, oy + vis.y() * s, max(3.0, vis.width() * s), max(3.0, vis.height() * s))
        p.drawRect(r.intersected(QRectF(self.rect()).adjusted(1, 1, -1, -1)))
        p.end()

    def _jump(self, pos: QPointF) -> None:
        s, ox, oy = self._scale()
        self.owner._canvas.centerOn(QPointF((pos.x() - ox) / s, (pos.y() - oy) / s))
        self.update()

    def mousePressEvent(self, event) -> None:
        self._jump(event.position())

    def mouseMoveEvent(self, event) -> None:
        if event.buttons() & Qt.MouseButton.LeftButton:
            self._jump(event.position())


def paint_key(p: QPainter, width: int, y: float, lh: float, text: QColor, title: str,
              rows: list) -> float:
    """Draw a key on a canvas: ``title`` in bold, then one swatch and label per (colour, label) of
    ``rows``, from ``y`` down; returns the ``y`` below it. The error overlay's legend and the structural
    diff's key look alike this way."""
    f = p.font()
    f.setBold(True)
    p.setFont(f)
    p.setPen(text)
    p.drawText(QRectF(8, y, width - 12, lh), Qt.AlignmentFlag.AlignVCenter, title)
    f.setBold(False)
    p.setFont(f)
    y += lh
    for colour, label in rows:
        p.setPen(QColor(colour).darker(160))
        p.setBrush(colour)
        p.drawRect(QRectF(8, y + 2, 22, lh - 5))
        p.setPen(text)
        p.drawText(QRectF(36, y, width - 40, lh), Qt.AlignmentFlag.AlignVCenter, label)
        y += lh
    return y


_LEGEND_TITLE = "max |A − B| per layer"
_PAIR_TITLE = "paired by"
_LEGEND_KEYS = ("wrong itself (source)", "inherited from upstream", "layout-only op", "first divergence")


class _Legend(QWidget):
    """The error overlay's key, in the bottom-left corner: one swatch per colour (absolute error) and
    the outline of each status."""

    def __init__(self, owner: "GraphView", parent: QWidget):
        super().__init__(parent)
        self.owner = owner
        self.setAttribute(Qt.WidgetAttribute.WA_TransparentForMouseEvents, True)
        self.rows: list[tuple[QColor, str]] = []
        self.pair_rows: list[tuple[str, str, QColor, str]] = []

    def set_overlay(self, ov) -> None:
        self.rows = ov.legend() if ov is not None else []
        self._fit()

    def set_pairing(self, pairing) -> None:
        self.pair_rows = pairing.legend() if pairing is not None else []
        self._fit()

    def _fit(self) -> None:
        if (not self.rows and not self.pair_rows) or not self.owner.show_legend:
            self.hide()
            return
        from PySide6.QtGui import QFontMetrics

        fm = QFontMetrics(self.font())
        bold = self.font()
        bold.setBold(True)
        texts = [t for _c, t in self.rows] + [t for *_x, t in self.pair_rows]
        if self.rows:
            texts += list(_LEGEND_KEYS)
        w = max([fm.horizontalAdvance(t) for t in texts]
                + [QFontMetrics(bold).horizontalAdvance(t) - 28 for t in self._titles()]) + 48
        n = (len(self.rows) + 5 if self.rows else 0) + (len(self.pair_rows) + 1 if self.pair_rows else 0)
        self.resize(w, n * (fm.height() + 2) + 12)
        self.show()
        self.owner._place_minimap()

    def _titles(self) -> list[str]:
        return ([_LEGEND_TITLE] if self.rows else []) + ([_PAIR_TITLE] if self.pair_rows else [])

    def paintEvent(self, event) -> None:
        from . import overlay as ov

        if not self.rows and not self.pair_rows:
            return
        p = QPainter(self)
        dark = palette.is_dark(self.palette())
        p.fillRect(self.rect(), QColor(30, 30, 34, 225) if dark else QColor(250, 250, 252, 235))
        p.setPen(QColor("#8d949e"))
        p.drawRect(self.rect().adjusted(0, 0, -1, -1))
        text = QColor("#e6e9ef") if dark else QColor("#1f2328")
        fm = p.fontMetrics()
        lh = fm.height() + 2
        y = 6
        f = p.font()
        if self.rows:
            y = paint_key(p, self.width(), y, lh, text, _LEGEND_TITLE, self.rows)
        oc = ov.outline_colors(dark)
        keys = zip((oc["source"], oc["inherited"], oc["layout"], oc["first"]),
                   (Qt.PenStyle.SolidLine, Qt.PenStyle.DashLine, Qt.PenStyle.DotLine, Qt.PenStyle.SolidLine),
                   (2.5, 2.0, 2.0, 2.5), _LEGEND_KEYS if self.rows else ())
        for colour, style, width, label in keys:
            pen = QPen(colour)
            pen.setWidthF(width)
            pen.setStyle(style)
            p.setPen(pen)
            p.setBrush(Qt.BrushStyle.NoBrush)
            p.drawRoundedRect(QRectF(9, y + 3, 20, lh - 7), 3 if label == "first divergence" else 0, 3)
            p.setPen(text)
            p.drawText(QRectF(36, y, self.width() - 40, lh), Qt.AlignmentFlag.AlignVCenter, label)
            y += lh
        if self.pair_rows:
            f.setBold(True)
            p.setFont(f)
            p.setPen(text)
            p.drawText(QRectF(8, y, self.width() - 12, lh), Qt.AlignmentFlag.AlignVCenter, _PAIR_TITLE)
            y += lh
            small = QFont(f)
            small.setPixelSize(10)
            for kind, letter, colour, label in self.pair_rows:
                box = QRectF(12, y + 2, 15, lh - 4)
                if kind == "unmatched":
                    p.setPen(QPen(colour, 1.5, Qt.PenStyle.DashLine))
                    p.setBrush(QBrush(colour, Qt.BrushStyle.BDiagPattern))
                    p.drawRect(QRectF(8, y + 2, 22, lh - 5))
                else:
                    p.setPen(Qt.PenStyle.NoPen)
                    p.setBrush(colour)
                    p.drawRect(box)
                    p.setFont(small)
                    p.setPen(QColor("white"))
                    p.drawText(box, Qt.AlignmentFlag.AlignCenter, letter)
                    p.setFont(f)
                f.setBold(False)
                p.setFont(f)
                p.setPen(text)
                p.drawText(QRectF(36, y, self.width() - 40, lh), Qt.AlignmentFlag.AlignVCenter, label)
                y += lh
        p.end()


def _thumbnail(d: LayoutData) -> QImage:
    """A small picture of the whole layout for the minimap (boxes and lines only)."""
    from .item import paint_layout

    W, H = max(d.lay.width, 1.0), max(d.lay.height, 1.0)
    s = min(_Minimap.MAX_W * 2 / W, _Minimap.MAX_H * 2 / H)
    img = QImage(max(1, int(W * s) + 1), max(1, int(H * s) + 1), QImage.Format.Format_ARGB32_Premultiplied)
    img.fill(Qt.GlobalColor.transparent)
    p = QPainter(img)
    p.scale(s, s)
    paint_layout(p, d, QRectF(0, 0, W, H), s, selected=-1, dark=False, text=False)
    p.end()
    return img


class GraphView(QWidget):
    """The graph canvas.

    Signals: ``nodeSelected(int)`` (node index, -1 for none), ``drawn()`` (a requested layout is on
    screen), ``busy(bool)`` (a layout is being computed), ``viewChanged()`` (panned or zoomed),
    ``groupToggled(int, bool)`` (a group expanded (True) or collapsed; -1: all of them).
    """

    nodeSelected = Signal(int)
    drawn = Signal()
    busy = Signal(bool)
    viewChanged = Signal()
    groupToggled = Signal(int, bool)

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
        self._bridge = _Bridge()
        self._bridge.done.connect(self._on_layout, Qt.ConnectionType.QueuedConnection)
        self._scene = QGraphicsScene(self)
        self._scene.setItemIndexMethod(QGraphicsScene.ItemIndexMethod.NoIndex)
        self._item = GraphItem()
        self._scene.addItem(self._item)
        self._canvas = _Canvas(self)
        self._canvas.setScene(self._scene)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(self._canvas)
        # a child of this widget, not of the viewport: QGraphicsView scrolls the viewport's children
        self._minimap = _Minimap(self, self)
        self._minimap.hide()
        self._legend = _Legend(self, self)
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
        self._item.dark = palette.is_dark(self.palette())
        self._scene.setBackgroundBrush(self.palette().base())
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
                d.thumb = _thumbnail(d)
                d.seconds = time.perf_counter() - t
                self._bridge.done.emit(rid, (d, keep_view, initial), None)
            except Exception as exc:  # a bug must not leave the view busy forever
                import traceback

                traceback.print_exc()
                self._bridge.done.emit(rid, None, f"{type(exc).__name__}: {exc}")

        self._pool.submit(work)

    def _on_layout(self, rid: int, payload, error) -> None:
        if rid != self._latest:
            return                        # a newer request is on its way
        self.busy.emit(False)
        if payload is None:
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
            thumb = d.thumb = _thumbnail(d)
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
        """Fit the width (never beyond 100 %), top aligned: the start of the graph, readable."""
        d = self._data
        vw = max(50, self._canvas.viewport().width())
        s = min(1.0, (vw - 20) / max(d.lay.width + 40, 1.0))
        s = max(s, 0.05)
        self._canvas.resetTransform()
        self._canvas.scale(s, s)
        vh = self._canvas.viewport().height() / s
        self._canvas.centerOn(QPointF(d.lay.width / 2, min(d.lay.height / 2, vh / 2 - 20)))
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
    def _zoom_by(self, f: float, anchor_under_mouse: bool = False) -> None:
        c = self._canvas
        cur = c.transform().m11()
        f = max(0.00005 / cur, min(f, 8.0 / cur))
        c.setTransformationAnchor(QGraphicsView.ViewportAnchor.AnchorUnderMouse if anchor_under_mouse
                                  else QGraphicsView.ViewportAnchor.AnchorViewCenter)
        c.scale(f, f)
        self._minimap.update()
        self.viewChanged.emit()

    def _place_minimap(self) -> None:
        vp = self._canvas.viewport()
        top_right = vp.mapTo(self, vp.rect().topRight())
        self._minimap.move(top_right.x() - self._minimap.width() - 8, top_right.y() + 8)
        self._minimap.raise_()
        bottom_left = vp.mapTo(self, vp.rect().bottomLeft())
        self._legend.move(bottom_left.x() + 8, bottom_left.y() - self._legend.height() - 8)
        self._legend.raise_()

    def hit(self, pos: QPointF) -> tuple[str, int]:
        """What is at a scene point: ("node", i), ("box", g), ("frame", g), ("frame-marker", g),
        ("box-marker", g) or ("", -1)."""
        d = self._data
        if d is None:
            return "", -1
        x, y = pos.x(), pos.y()
        x0, y0, x1, y1 = d.n
        k = np.flatnonzero((x0 <= x) & (x <= x1) & (y0 <= y) & (y <= y1))
        if len(k):
            return "node", int(d.lay.node_idx[k[0]])
        x0, y0, x1, y1 = d.b
        k = np.flatnonzero((x0 <= x) & (x <= x1) & (y0 <= y) & (y <= y1))
        if len(k):
            g = int(d.lay.box_idx[k[0]])
            return ("box-marker" if x >= x1[k[0]] - 24 and y <= y0[k[0]] + 22 else "box"), g
        x0, y0, x1, y1 = d.f
        k = np.flatnonzero((x0 <= x) & (x <= x1) & (y0 <= y) & (y <= y1))
        if len(k):
            j = k[-1]                         # innermost frame: frames are listed parent first
            g = int(d.lay.frame_idx[j])
            if y <= y0[j] + 24:
                return ("frame-marker" if x >= x1[j] - 26 else "frame"), g
            return "frame", g
        return "", -1

    def _tooltip(self, pos: QPointF) -> str:
        """Text for the item under a scene point: a node's op, name and output shapes, or a group's path."""
        kind, idx = self.hit(pos)
        pack = self.pack
        if kind == "node":
            out = [pack.edge_text(int(e)) for e in np.flatnonzero(pack.edge_src == idx)[:1]]
            lines = [f"{pack.op_type(idx)}  {pack.names[idx]}"] + [f"→ {t}" for t in out if t]
            ov = self._overlay
            if ov is not None and ov.status[idx] >= 0:
                lv = float(ov.level[idx])
                err = "not compared" if lv != lv else \
                    ("exact" if lv == float("-inf") else f"max |A − B| {ov.atol * 10 ** lv:.3g}")
                lines.append(f"{err} · {ov.status_of(idx)}")
            pr = self._pairing
            if pr is not None and pr.method_of(idx):
                lines.append(f"paired by {pr.method_of(idx)}")
            elif pr is not None and pr.unmatched[idx]:
                lines.append("no partner in the other model")
            return "\n".join(lines)
        if kind.startswith(("box", "frame")) and idx > 0:
            what = "double-click to expand" if kind.startswith("box") else "double-click the title to collapse"
            return f"{pack.group_paths[idx]}  ({int(pack.group_count[idx]):,} nodes; {what})"
        return ""

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
        # a theme switch: the frames, the overlay's outlines and the legend have a light and a dark set
        if event.type() == QEvent.Type.PaletteChange:
            self._item.dark = palette.is_dark(self.palette())
            self._scene.setBackgroundBrush(self.palette().base())
            self._item.update()
            self._legend.update()
        super().changeEvent(event)

    def closeEvent(self, event) -> None:
        self._latest = next(self._req)
        self._pool.shutdown(wait=False, cancel_futures=True)
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
