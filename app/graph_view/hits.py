"""What is under a point of a graph view's scene, the tooltip text for it, and where the graph's inputs
are (numpy, no widgets)."""
from __future__ import annotations

import numpy as np
from PySide6.QtCore import QPointF

from .item import LayoutData

__all__ = ["hit", "tooltip", "top_row_span"]


def hit(d: LayoutData | None, pos: QPointF) -> tuple[str, int]:
    """("node", i), ("io", k) (graph input or output k), ("box", g), ("frame", g), ("frame-marker", g),
    ("box-marker", g) or ("", -1)."""
    if d is None:
        return "", -1
    x, y = pos.x(), pos.y()
    x0, y0, x1, y1 = d.n
    k = np.flatnonzero((x0 <= x) & (x <= x1) & (y0 <= y) & (y <= y1))
    if len(k):
        return "node", int(d.lay.node_idx[k[0]])
    io = getattr(d.lay, "io_rect", None)
    if io is not None and len(io):
        k = np.flatnonzero((io[:, 0] <= x) & (x <= io[:, 0] + io[:, 2]) & (io[:, 1] <= y) & (y <= io[:, 1] + io[:, 3]))
        if len(k):
            return "io", int(d.lay.io_idx[k[0]])
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


def tooltip(pack, d: LayoutData | None, pos: QPointF, ov=None, pr=None) -> str:
    """A node's op, name and output shapes (and its error, its pairing); a graph input's or output's
    name and shape; a group's full path."""
    kind, idx = hit(d, pos)
    if kind == "node":
        out = [pack.edge_text(int(e)) for e in np.flatnonzero(pack.edge_src == idx)[:1]]
        lines = [f"{pack.op_type(idx)}  {pack.names[idx]}"] + [f"→ {t}" for t in out if t]
        if ov is not None and ov.status[idx] >= 0:
            lv = float(ov.level[idx])
            err = "not compared" if lv != lv else \
                ("exact" if lv == float("-inf") else f"max |A − B| {ov.atol * 10 ** lv:.3g}")
            lines.append(f"{err} · {ov.status_of(idx)}")
        if pr is not None and pr.method_of(idx):
            lines.append(f"paired by {pr.method_of(idx)}")
        elif pr is not None and pr.unmatched[idx]:
            lines.append("no partner in the other model")
        return "\n".join(lines)
    if kind == "io":
        info = pack.io_details(idx)
        return f"graph {info['io']}  {info['name']}" + (f"\n{info['shape_text']}" if info["shape_text"] else "")
    if kind.startswith(("box", "frame")) and idx > 0:
        what = "double-click to expand" if kind.startswith("box") else "double-click the title to collapse"
        return f"{pack.group_paths[idx]}  ({int(pack.group_count[idx]):,} nodes; {what})"
    return ""


def top_row_span(d: LayoutData) -> tuple[float, float]:
    """Horizontal extent of the graph's inputs (its input nodes; else the topmost row of drawn items)."""
    io = getattr(d.lay, "io_rect", None)
    kinds = getattr(d.pack, "io_kind", None)
    rows = []
    if io is not None and len(io) and kinds is not None and len(kinds):
        rows = [io[np.asarray(kinds)[d.lay.io_idx] == 1]]
    if not rows or not len(rows[0]):
        rows = [r for r in (d.lay.node_rect, d.lay.box_rect) if len(r)]
    if not rows:
        return 0.0, d.lay.width
    allr = np.concatenate(rows)
    top = allr[:, 1].min()
    first = allr[allr[:, 1] <= top + 1.0]
    return float(first[:, 0].min()), float((first[:, 0] + first[:, 2]).max())
