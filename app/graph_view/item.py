"""One QGraphicsItem that paints a whole laid-out graph, culled to the exposed rectangle with numpy.

No per-node items: a 50k-node graph is a few numpy arrays. Level of detail, by the zoom in screen
pixels per scene unit (``lod``):

* far: only what covers a few pixels: group frames and boxes at least ``MIN_PX`` on screen, edge
  segments at least that long; nodes thinner than ~1.5 px are left to their frames when there are
  more than ``MAX_TINY_NODES`` of them in view (so the cost of a frame is bounded at any zoom);
* nearer, boxes and lines in batches (``drawRects``/``drawLines``, one brush per op category);
* text only where it can be read: op types from ``lod`` ≥ 0.55, names ≥ 0.95, edge labels (shape
  and dtype) ≥ 0.8; arrow heads and rounded corners once they are visible;
* group titles: the full scope path, elided from the left (the distinctive tail stays), from ``lod``
  ≥ 0.12, never under ``TITLE_MIN_PX`` on screen: at mid zoom they are drawn at that size in screen
  space, on a plate where the frame's title band is thinner than the text.
"""
from __future__ import annotations

import numpy as np
from PySide6.QtCore import QLineF, QPointF, QRectF, Qt
from PySide6.QtGui import QBrush, QColor, QFont, QFontMetricsF, QPainter, QPen, QPolygonF
from PySide6.QtWidgets import QGraphicsItem, QStyleOptionGraphicsItem

from converters.layout import GROUP_H as GROUP_H_
from converters.layout import Layout

from . import palette

LOD_OP = 0.55
LOD_NAME = 0.95
LOD_EDGE_LABEL = 0.8
LOD_GROUP_TITLE = 0.45            # collapsed boxes' node counts; the first divergence's caption
LOD_TITLE_MIN = 0.12              # group titles below this zoom: none (frames a few px wide)
TITLE_MIN_PX = 10.0               # a group title's smallest size on screen (px)
MIN_PX = 3.0                      # frames and edges smaller than this on screen are not drawn
MAX_TINY_NODES = 6000             # past this many sub-pixel nodes in view, frames stand for them


def _fonts():
    op = QFont()
    op.setPixelSize(11)
    op.setBold(True)
    name = QFont()
    name.setPixelSize(9)
    title = QFont()
    title.setPixelSize(12)
    title.setBold(True)
    small = QFont()
    small.setPixelSize(8)
    return op, name, title, small


class LayoutData:
    """A Layout plus the per-item arrays painting needs (made once per layout, any thread)."""

    def __init__(self, lay: Layout, pack):
        self.lay = lay
        self.pack = pack
        nr = lay.node_rect
        self.n = nr[:, 0], nr[:, 1], nr[:, 0] + nr[:, 2], nr[:, 1] + nr[:, 3]
        self.node_cat = pack.node_cat[lay.node_idx] if len(lay.node_idx) else np.zeros(0, np.int8)
        br = lay.box_rect
        self.b = br[:, 0], br[:, 1], br[:, 0] + br[:, 2], br[:, 1] + br[:, 3]
        fr = lay.frame_rect
        self.f = fr[:, 0], fr[:, 1], fr[:, 0] + fr[:, 2], fr[:, 1] + fr[:, 3]
        s = lay.seg
        self.s = (np.minimum(s[:, 0], s[:, 2]), np.minimum(s[:, 1], s[:, 3]),
                  np.maximum(s[:, 0], s[:, 2]), np.maximum(s[:, 1], s[:, 3]))
        self.node_row = np.full(pack.n_nodes, -1, np.int64)
        self.node_row[lay.node_idx] = np.arange(len(lay.node_idx))
        self.box_row = {int(g): k for k, g in enumerate(lay.box_idx.tolist())}
        self.frame_row = {int(g): k for k, g in enumerate(lay.frame_idx.tolist())}
        ne = len(lay.edge_ref)
        # numpy's set routines (unique, isin) import numpy.ma on first use (tens of ms): use masks
        self.is_last_seg = np.zeros(len(s), bool)
        self.is_first_seg = np.zeros(len(s), bool)
        if ne:
            self.is_last_seg[np.append(lay.edge_first_seg[1:], len(s)) - 1] = True
            self.is_first_seg[lay.edge_first_seg] = True
        self.frame_depth = pack_depths(pack)[lay.frame_idx] if len(lay.frame_idx) else np.zeros(0, np.int64)
        self.bounds = QRectF(-20, -20, lay.width + 40, lay.height + 40)

    def primitives(self) -> int:
        return len(self.lay.node_idx) + len(self.lay.box_idx) + len(self.lay.seg)


_DEPTH_CACHE: dict[int, np.ndarray] = {}


def pack_depths(pack) -> np.ndarray:
    key = id(pack)
    d = _DEPTH_CACHE.get(key)
    if d is None or len(d) != pack.n_groups:
        from converters.layout import _depths

        d = _DEPTH_CACHE[key] = _depths(np.asarray(pack.group_parent, np.int64))
    return d


def _qrects(rows: np.ndarray, px: float) -> list[QRectF]:
    """QRectF list from x, y, w, h rows, each at least one pixel (``px`` scene units) wide and high:
    the raster engine drops thinner rectangles entirely."""
    if len(rows) and (rows[:, 2:4] < px).any():
        rows = rows.copy()
        grow = np.maximum(px - rows[:, 2:4], 0.0)
        rows[:, 0:2] -= grow / 2
        rows[:, 2:4] += grow
    return [QRectF(*row) for row in rows.tolist()]


def _cull(b, r: QRectF) -> np.ndarray:
    x0, y0, x1, y1 = b
    return np.flatnonzero((x1 >= r.left()) & (x0 <= r.right()) & (y1 >= r.top()) & (y0 <= r.bottom()))


def paint_layout(p: QPainter, d: LayoutData, r: QRectF, lod: float, *, selected: int, dark: bool,
                 text: bool = True, overlay=None, group_bins: np.ndarray | None = None, pairing=None) -> None:
    """Paint the part of ``d`` inside scene rect ``r`` at zoom ``lod`` (screen px per scene unit).

    ``overlay``: an :class:`~app.graph_view.overlay.ErrorOverlay` whose colours replace the op
    categories' (nodes that are no compared layer turn neutral) and whose statuses outline the nodes;
    ``group_bins``: its worst bin per group, shown as a band on collapsed group boxes; ``pairing``: an
    :class:`~app.graph_view.overlay.Pairing` (method badges, unmatched nodes hatched)."""
    lay, pack = d.lay, d.pack
    fills = palette.category_fills()
    borders = palette.category_borders()
    ffill, fborder, ftext = palette.frame_colors(dark)
    # fonts only when text is drawn: the minimap thumbnail is painted off the GUI thread
    op_font, name_font, title_font, small_font = _fonts() if text else (None, None, None, None)
    px = 1.0 / max(lod, 1e-9)       # one screen pixel in scene units

    # expanded groups: frames behind their content, parents first
    fi = _cull(d.f, r)
    if len(fi) and lod < 1:
        fr_ = lay.frame_rect[fi]
        # the longer side decides: a tall thin frame still shows as a 1 px line (cosmetic pen)
        fi = fi[np.maximum(fr_[:, 2], fr_[:, 3]) * lod >= MIN_PX]
    if len(fi):
        pen = QPen(fborder)
        pen.setCosmetic(True)
        p.setPen(pen)
        p.setBrush(QBrush(ffill))
        fr = lay.frame_rect
        p.drawRects(_qrects(fr[fi], px))
        if text and lod >= LOD_TITLE_MIN:
            paths, counts = pack.group_paths, pack.group_count
            items = []
            for k in fi[fr[fi, 2] * lod >= 60].tolist():     # a title needs some room on screen
                x, y, w, h = fr[k]
                g = int(lay.frame_idx[k])
                items.append((QRectF(x + 8, y + 3, w - 30, 18), paths[g], f"  ({int(counts[g]):,})",
                              QRectF(x + w - 22, y + 3, 16, 18)))
            _titles(p, items, title_font, 12.0, lod, ftext, dark, "−")

    # edges
    si = _cull(d.s, r)
    if len(si) and lod < 0.5:
        sg_ = lay.seg[si]
        si = si[(np.abs(sg_[:, 2] - sg_[:, 0]) + np.abs(sg_[:, 3] - sg_[:, 1])) * lod >= MIN_PX]
    if len(si):
        pen = QPen(palette.EDGE)
        pen.setCosmetic(True)
        pen.setWidthF(1.0 if lod < 0.8 else 1.3)
        p.setPen(pen)
        sg = lay.seg[si]
        p.drawLines([QLineF(*row) for row in sg.tolist()])
        if lod >= 0.35:
            ends = np.flatnonzero(d.is_last_seg[si])
            if len(ends):
                p.setBrush(QBrush(palette.EDGE))
                p.setPen(Qt.PenStyle.NoPen)
                a = 5.0 * max(1.0, px)
                polys = []
                for x1, y1, x2, y2 in lay.seg[si[ends]].tolist():
                    dx, dy = x2 - x1, y2 - y1
                    L = (dx * dx + dy * dy) ** 0.5 or 1.0
                    ux, uy = dx / L, dy / L
                    polys.append(QPolygonF([QPointF(x2, y2), QPointF(x2 - a * ux - a * 0.5 * uy, y2 - a * uy + a * 0.5 * ux),
                                            QPointF(x2 - a * ux + a * 0.5 * uy, y2 - a * uy - a * 0.5 * ux)]))
                for poly in polys:
                    p.drawPolygon(poly)
        if text and lod >= LOD_EDGE_LABEL and pack.labels:
            firsts = np.flatnonzero(d.is_first_seg[si])
            if len(firsts):
                p.setFont(small_font)
                p.setPen(ftext)
                seg_edge = lay.seg_edge
                done = set()          # one label per output: fan-out edges share their start point
                for k in si[firsts].tolist():
                    x1, y1, x2, y2 = lay.seg[k]
                    key = (round(x1, 1), round(y1, 1))
                    if key in done:
                        continue
                    t = pack.edge_text(int(lay.edge_ref[int(seg_edge[k])]))
                    if t:
                        done.add(key)
                        p.drawText(QPointF(x1 + 4, y1 + 11), t)

    # collapsed groups
    bi = _cull(d.b, r)
    if len(bi) and lod * GROUP_H_ < MIN_PX and len(bi) > MAX_TINY_NODES:
        bi = bi[:: max(1, len(bi) // MAX_TINY_NODES)]
    if len(bi):
        br = lay.box_rect
        pen = QPen(palette.GROUP_BORDER)
        pen.setCosmetic(True)
        pen.setWidthF(1.2)
        p.setPen(pen)
        p.setBrush(QBrush(palette.GROUP_FILL))
        if lod >= 0.3:
            # a second outline behind suggests the stack of nodes inside
            p.drawRects([QRectF(x + 4, y + 4, w, h) for x, y, w, h in br[bi].tolist()])
        p.drawRects(_qrects(br[bi], px))
        if group_bins is not None and len(group_bins) == pack.n_groups:
            # the worst error inside a collapsed group: a band along its top edge
            gb = group_bins[lay.box_idx[bi]]
            ocols = _overlay_colors()
            p.setPen(Qt.PenStyle.NoPen)
            for b in np.flatnonzero(np.bincount(gb[gb >= 0], minlength=len(ocols))).tolist():
                rows = br[bi[gb == b]].copy()
                rows[:, 3] = np.maximum(6.0, 3 * px)
                p.setBrush(QBrush(ocols[b]))
                p.drawRects(_qrects(rows, px))
        if text and lod >= LOD_TITLE_MIN:
            paths = pack.group_paths
            items = [(QRectF(x + 6, y + 4, w - 26, 18), paths[int(g)], "", QRectF(x + w - 20, y + 3, 16, 16))
                     for (x, y, w, h), g in zip(br[bi].tolist(), lay.box_idx[bi].tolist()) if w * lod >= 48]
            _titles(p, items, op_font, 11.0, lod, palette.NODE_TEXT, False, "+")
        if text and lod >= LOD_GROUP_TITLE:
            counts = pack.group_count
            p.setFont(name_font)
            p.setPen(palette.NODE_SUBTEXT)
            for k in bi.tolist():
                x, y, w, h = br[k]
                p.drawText(QRectF(x + 6, y + 22, w - 12, 16), Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter,
                           f"{int(counts[int(lay.box_idx[k])]):,} nodes")

    # graph inputs and outputs (Layout.io_idx; see converters.viewpack): pills in the I/O colours
    io_rect = getattr(lay, "io_rect", None)
    if io_rect is not None and len(io_rect):
        _paint_io(p, d, r, lod, px, text, dark, op_font, small_font)

    # nodes, one brush per category
    ni = _cull(d.n, r)
    if len(ni) > MAX_TINY_NODES and lod * 34 < 1.5 and len(lay.frame_idx):
        ni = ni[:0]
    if len(ni):
        nr = lay.node_rect
        cats = d.node_cat[ni].astype(np.int16)
        nfill, nborder = fills, borders
        if overlay is not None:
            # one key per brush: the error bins of compared layers, one neutral fill for the rest
            ocols = _overlay_colors()
            ob = overlay.bin[lay.node_idx[ni]].astype(np.int16)
            cats = np.where(ob >= 0, ob, len(ocols))
            nfill = ocols + [palette.OVERLAY_NEUTRAL]
            nborder = [c.darker(160) for c in ocols] + [palette.OVERLAY_NEUTRAL_BORDER]
        rounded = text and lod >= 0.6
        for c in np.flatnonzero(np.bincount(cats, minlength=len(nfill))).tolist():
            rows = ni[cats == c]
            p.setBrush(QBrush(nfill[c]))
            if lod * 34 < 3:
                p.setPen(Qt.PenStyle.NoPen)
            else:
                pen = QPen(nborder[c])
                pen.setCosmetic(True)
                p.setPen(pen)
            if rounded and len(rows) < 3000:
                for x, y, w, h in nr[rows].tolist():
                    p.drawRoundedRect(QRectF(x, y, w, h), 5, 5)
            else:
                p.drawRects(_qrects(nr[rows], px))
        if text and lod >= LOD_OP:
            names = pack.names
            node_idx = lay.node_idx
            fm_name = QFontMetricsF(name_font)
            show_name = lod >= LOD_NAME
            p.setPen(palette.NODE_TEXT)
            p.setFont(op_font)
            for k in ni.tolist():
                x, y, w, h = nr[k]
                i = int(node_idx[k])
                rect = QRectF(x, y + (2 if show_name else 0), w, 18 if show_name else h)
                p.drawText(rect, Qt.AlignmentFlag.AlignCenter, pack.ops[int(pack.node_op[i])])
            if show_name:
                p.setFont(name_font)
                p.setPen(palette.NODE_SUBTEXT)
                for k in ni.tolist():
                    x, y, w, h = nr[k]
                    i = int(node_idx[k])
                    p.drawText(QRectF(x + 3, y + 18, w - 6, 14), Qt.AlignmentFlag.AlignCenter,
                               fm_name.elidedText(names[i].rsplit("/", 1)[-1], Qt.TextElideMode.ElideMiddle, w - 6))

    if overlay is not None and len(ni):
        _paint_status(p, d, ni, overlay, lod, px, text, dark)
    if pairing is not None and len(ni) and pairing.n_nodes == pack.n_nodes:
        _paint_pairing(p, d, ni, pairing, lod, px, text)

    # selection on top
    if 0 <= selected < len(d.node_row):
        k = int(d.node_row[selected])
        if k >= 0:
            # the selected node's own edges (to its neighbours or to its group's ports), highlighted
            mine = np.flatnonzero((lay.edge_src_item == selected) | (lay.edge_dst_item == selected))
            if len(mine) and len(mine) < 2000:
                is_mine = np.zeros(len(lay.edge_ref), bool)
                is_mine[mine] = True
                segs = lay.seg[is_mine[lay.seg_edge]]
                pen = QPen(palette.HIGHLIGHT_EDGE)
                pen.setCosmetic(True)
                pen.setWidthF(2.0)
                p.setPen(pen)
                p.drawLines([QLineF(*row) for row in segs.tolist()])
            x, y, w, h = lay.node_rect[k]
            pen = QPen(palette.SELECT)
            pen.setCosmetic(True)
            pen.setWidthF(3.0)
            p.setPen(pen)
            p.setBrush(Qt.BrushStyle.NoBrush)
            m = 2 * px
            p.drawRect(QRectF(x - m, y - m, w + 2 * m, h + 2 * m))


def _elide_left(fm: QFontMetricsF, path: str, tail: str, width: float) -> str:
    """``path`` + ``tail`` in ``width`` px: the path elided from the left, so its last scopes stay. When not
    even the last scope fits, that one keeps its start instead (``…/block 3 (Conv·Ba…``: a structural group's
    number and a module's name come first)."""
    room = width - fm.horizontalAdvance(tail)
    if room <= fm.horizontalAdvance("…"):
        return tail
    text = fm.elidedText(path, Qt.TextElideMode.ElideLeft, room)
    last = path.rsplit("/", 1)[-1]
    if text == path or text.endswith("/" + last) or text[1:] == last:
        return text + tail
    lead = "…/" if "/" in path else ""
    return lead + fm.elidedText(last, Qt.TextElideMode.ElideRight, room - fm.horizontalAdvance(lead)) + tail


def _titles(p: QPainter, items: list, font: QFont, size: float, lod: float, colour, dark: bool, marker: str) -> None:
    """Group titles: (text rect, path, tail, marker rect) in scene units. At or above ``TITLE_MIN_PX /
    size`` zoom they are drawn in scene space at ``size`` units; below, in screen space at
    ``TITLE_MIN_PX`` (readable at mid zoom), on a plate of the frame's colour where they overflow
    their band, and only where the title has some room on screen."""
    if lod * size >= TITLE_MIN_PX:
        p.setFont(font)
        fm = QFontMetricsF(font)
        p.setPen(colour)
        for rect, path, tail, mrect in items:
            p.drawText(rect, Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter,
                       _elide_left(fm, path, tail, rect.width()))
            p.drawText(mrect, Qt.AlignmentFlag.AlignCenter, marker)
        return
    t = p.worldTransform()
    f = QFont(font)
    f.setPixelSize(int(TITLE_MIN_PX))
    fm = QFontMetricsF(f)
    line = fm.height()
    p.save()
    p.resetTransform()
    p.setFont(f)
    back = QColor(30, 32, 38, 215) if dark else QColor(246, 247, 250, 215)
    for rect, path, tail, mrect in items:
        sr = t.mapRect(QRectF(rect.x(), rect.y(), mrect.right() - rect.x(), rect.height()))
        if sr.width() < 48:
            continue
        sr.setHeight(max(sr.height(), line))
        text = _elide_left(fm, path, tail, sr.width())
        if sr.height() <= line + 0.5:         # the band is thinner than the text: a plate under it
            p.fillRect(QRectF(sr.x() - 2, sr.y(), fm.horizontalAdvance(text) + 4, line), back)
        p.setPen(colour)
        p.drawText(sr, Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop, text)
    p.restore()


def _paint_io(p: QPainter, d: LayoutData, r: QRectF, lod: float, px: float, text: bool, dark: bool,
              op_font, small_font) -> None:
    """Graph inputs and outputs: pills of their own colour (inputs and outputs apart), the value's name
    in them, and "input" / "output" above once it can be read."""
    lay, pack = d.lay, d.pack
    rect = lay.io_rect
    x0, y0 = rect[:, 0], rect[:, 1]
    vis = np.flatnonzero((x0 + rect[:, 2] >= r.left()) & (x0 <= r.right()) & (y0 + rect[:, 3] >= r.top())
                         & (y0 <= r.bottom()))
    if not len(vis):
        return
    kinds = np.asarray(pack.io_kind)[lay.io_idx[vis]] if len(getattr(pack, "io_kind", ())) else np.ones(len(vis))
    names = pack.io_names if text and lod >= LOD_OP else None
    for kind in (1, 2):
        rows = vis[kinds == kind]
        if not len(rows):
            continue
        fill, border, ink = palette.io_colors(kind, dark)
        pen = QPen(border)
        pen.setCosmetic(True)
        pen.setWidthF(1.5 if lod >= 0.3 else 1.0)
        for k in rows.tolist():
            x, y, w, h = rect[k]
            p.setPen(pen)
            p.setBrush(QBrush(fill))
            if lod * h >= 3:
                p.drawRoundedRect(QRectF(x, y, w, h), h / 2, h / 2)
            else:
                p.drawRect(QRectF(x, y, max(w, px), max(h, px)))
            if names is not None:
                p.setFont(op_font)
                p.setPen(ink)
                p.drawText(QRectF(x + 6, y, w - 12, h), Qt.AlignmentFlag.AlignCenter,
                           QFontMetricsF(op_font).elidedText(names[int(lay.io_idx[k])], Qt.TextElideMode.ElideMiddle,
                                                             w - 12))
                if lod >= LOD_NAME:
                    p.setFont(small_font)
                    p.setPen(border)
                    p.drawText(QRectF(x + h / 2, y - 11, w, 10), Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignBottom,
                               palette.IO_WORDS[kind])


_OVERLAY_COLORS: list = []


def _overlay_colors() -> list:
    if not _OVERLAY_COLORS:
        from .overlay import level_colors

        _OVERLAY_COLORS.extend(level_colors())
    return _OVERLAY_COLORS


def _paint_status(p: QPainter, d: LayoutData, ni: np.ndarray, overlay, lod: float, px: float, text: bool,
                  dark: bool) -> None:
    """Outlines of the visible compared layers by status, and the first divergence's halo."""
    from . import overlay as ov

    lay = d.lay
    nr = lay.node_rect
    st = overlay.status[lay.node_idx[ni]]
    p.setBrush(Qt.BrushStyle.NoBrush)
    oc = ov.outline_colors(dark)
    styles = ((ov.STATUS_CODES["source"], oc["source"], Qt.PenStyle.SolidLine, 3.0),
              (ov.STATUS_CODES["inherited"], oc["inherited"], Qt.PenStyle.DashLine, 2.0),
              (ov.STATUS_CODES["layout"], oc["layout"], Qt.PenStyle.DotLine, 2.5),
              (ov.STATUS_CODES["missing"], palette.EDGE, Qt.PenStyle.DotLine, 1.2))
    m = 1.5 * px
    for code, colour, style, width in styles:
        rows = nr[ni[st == code]]
        if not len(rows):
            continue
        pen = QPen(colour)
        pen.setCosmetic(True)
        pen.setWidthF(width if lod * 34 >= 3 else 1.0)
        pen.setStyle(style)
        p.setPen(pen)
        rows = rows.copy()
        rows[:, 0:2] -= m
        rows[:, 2:4] += 2 * m
        p.drawRects(_qrects(rows, px))
    f = overlay.first_node
    if 0 <= f < len(d.node_row) and d.node_row[f] >= 0:
        x, y, w, h = nr[int(d.node_row[f])]
        pen = QPen(oc["first"])
        pen.setCosmetic(True)
        pen.setWidthF(3.0)
        p.setPen(pen)
        g = 6.0 + 3 * px
        p.drawRoundedRect(QRectF(x - g, y - g, w + 2 * g, h + 2 * g), 6, 6)
        if text and lod >= LOD_GROUP_TITLE:
            font = QFont()
            font.setPixelSize(11)
            font.setBold(True)
            p.setFont(font)
            p.drawText(QRectF(x - g, y - g - 17, max(w + 2 * g, 140), 16),
                       Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignBottom, "first divergence")


BADGE_W, BADGE_H = 15.0, 13.0     # a method badge on a node's top-right corner (scene units)


def badge_rects(node_rows: np.ndarray) -> np.ndarray:
    """The method badges of nodes (x, y, w, h rows): astride each node's top-right corner, clear of the
    op's name written in the middle."""
    rows = np.array(node_rows, np.float64, copy=True).reshape(-1, 4)
    rows[:, 0] = rows[:, 0] + rows[:, 2] - BADGE_W * 0.6
    rows[:, 1] = rows[:, 1] - BADGE_H * 0.45
    rows[:, 2] = BADGE_W
    rows[:, 3] = BADGE_H
    return rows


def _paint_pairing(p: QPainter, d: LayoutData, ni: np.ndarray, pairing, lod: float, px: float, text: bool) -> None:
    """Unmatched nodes hatched; each paired node's method as a letter on the method's colour, top right."""
    from . import overlay as ov

    lay = d.lay
    nr = lay.node_rect
    nodes = lay.node_idx[ni]
    un = ni[pairing.unmatched[nodes]]
    if len(un):
        p.setPen(Qt.PenStyle.NoPen)
        brush = QBrush(ov.UNMATCHED_COLOR, Qt.BrushStyle.BDiagPattern)
        if lod >= 0.3:
            brush.setTransform(brush.transform().scale(px * 1.5, px * 1.5))  # a hatch of a fixed size on screen
        p.setBrush(brush)
        p.drawRects(_qrects(nr[un], px))
        pen = QPen(ov.UNMATCHED_COLOR)
        pen.setCosmetic(True)
        pen.setWidthF(1.5)
        pen.setStyle(Qt.PenStyle.DashLine)
        p.setPen(pen)
        p.setBrush(Qt.BrushStyle.NoBrush)
        p.drawRects(_qrects(nr[un], px))
    codes = pairing.method[nodes]
    if lod * BADGE_H < 2.5:
        return                       # a badge under ~2 px says nothing
    font = None
    if text and lod >= LOD_OP:
        font = QFont()
        font.setPixelSize(10)
        font.setBold(True)
    for c in np.flatnonzero(np.bincount(codes[codes >= 0].astype(np.int64), minlength=len(ov.PAIR_METHODS))).tolist():
        method = ov.PAIR_METHODS[c]
        rows = badge_rects(nr[ni[codes == c]])
        colour = ov.method_color(method)
        p.setPen(Qt.PenStyle.NoPen)
        p.setBrush(QBrush(colour))
        p.drawRects(_qrects(rows, px))
        if font is not None:
            p.setFont(font)
            p.setPen(Qt.GlobalColor.white)
            letter = ov.method_letter(method)
            for x, y, w, h in rows.tolist():
                p.drawText(QRectF(x, y, w, h), Qt.AlignmentFlag.AlignCenter, letter)


class GraphItem(QGraphicsItem):
    """Paints one :class:`LayoutData`; the view owns selection and dark-mode state."""

    def __init__(self):
        super().__init__()
        self.data_: LayoutData | None = None
        self.selected = -1
        self.dark = False
        self.overlay = None            # an ErrorOverlay, or None
        self.group_bins: np.ndarray | None = None
        self.pairing = None            # a Pairing, or None
        self.setFlag(QGraphicsItem.GraphicsItemFlag.ItemUsesExtendedStyleOption, True)

    def set_data(self, d: LayoutData | None) -> None:
        self.prepareGeometryChange()
        self.data_ = d
        self.update()

    def boundingRect(self) -> QRectF:
        return self.data_.bounds if self.data_ is not None else QRectF()

    def paint(self, p: QPainter, option: QStyleOptionGraphicsItem, widget=None) -> None:
        d = self.data_
        if d is None:
            return
        lod = QStyleOptionGraphicsItem.levelOfDetailFromTransform(p.worldTransform())
        r = option.exposedRect
        p.setRenderHint(QPainter.RenderHint.Antialiasing, lod >= 0.6)
        p.setRenderHint(QPainter.RenderHint.TextAntialiasing, True)
        paint_layout(p, d, r, lod, selected=self.selected, dark=self.dark, overlay=self.overlay,
                     group_bins=self.group_bins, pairing=self.pairing)


