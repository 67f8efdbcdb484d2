"""The error overlay of a graph: per-layer parity numbers painted on the nodes they belong to.

The numbers come from the engine's per-layer result (``CompareResult.layers``); this module only maps
them to colours. Everything is an array over the pack's node indices, made once per result and per
threshold, so painting looks colours up with numpy for the visible nodes and does no per-node Python.

Colour: ``level = log10(max abs error / atol)`` of the layer the node produces. Layers whose level is
under the threshold (in decades; 0 means "at the tolerance's atol") are green; above it one colour per
decade, light yellow to deep red. Outline: a layer that is wrong itself (``source``) solid, one that
inherits error from upstream dashed, a layout-only op dotted; the first divergence gets a halo.

:class:`Pairing` (the compare view's panes): a badge in a paired node's corner says which method paired
it (a letter on the method's colour), a hatch marks a node whose tensor the engine paired with nothing.
"""
from __future__ import annotations

import math

import numpy as np
from PySide6.QtGui import QColor

__all__ = ["ErrorOverlay", "Pairing", "worst_per_group", "PAIR_METHODS", "method_color", "method_letter", "outline_colors",
           "STATUS_CODES", "BIN_OK", "BIN_MISSING", "N_LEVEL_BINS", "level_colors",
           "OK_COLOR", "MISSING_COLOR", "SOURCE_COLOR", "INHERITED_COLOR", "LAYOUT_COLOR", "FIRST_COLOR"]

# status -> code in ErrorOverlay.status (-1: the node is no compared layer)
STATUS_CODES = {"ok": 0, "source": 1, "inherited": 2, "layout": 3, "missing": 4}
N_LEVEL_BINS = 6                  # decades above the threshold; the last bin takes everything beyond
BIN_OK = 0                        # bin codes: -1 not a layer, 0 under the threshold, 1..6 decades, 7 missing
BIN_MISSING = N_LEVEL_BINS + 1

# mid-light tones, as the op categories: the node's dark text stays readable on every one
_LEVELS = ["#fff2a8", "#ffd480", "#ffb066", "#ff8a5c", "#f4645f", "#e0457b"]
OK_COLOR = QColor("#a8e0a0")
MISSING_COLOR = QColor("#e3e3e3")
SOURCE_COLOR = QColor("#b3001b")
INHERITED_COLOR = QColor("#7a3b00")
LAYOUT_COLOR = QColor("#6a1b9a")
FIRST_COLOR = QColor("#d6007e")


# the outlines sit on the canvas around a node: dark tones on a light canvas, light ones on a dark canvas
_OUTLINES_DARK = {"source": "#ff6b7d", "inherited": "#ffb74d", "layout": "#d7a6f0", "first": "#ff5cbf"}


def outline_colors(dark: bool) -> dict[str, QColor]:
    """Outline colour of each status key ("source", "inherited", "layout", "first") on a light or dark
    canvas."""
    if dark:
        return {k: QColor(v) for k, v in _OUTLINES_DARK.items()}
    return {"source": QColor(SOURCE_COLOR), "inherited": QColor(INHERITED_COLOR), "layout": QColor(LAYOUT_COLOR),
            "first": QColor(FIRST_COLOR)}


def level_colors() -> list[QColor]:
    """Fill of each bin code 0 … BIN_MISSING (index = code)."""
    return [QColor(OK_COLOR)] + [QColor(c) for c in _LEVELS] + [QColor(MISSING_COLOR)]



def worst_per_group(rank: np.ndarray, group_parent: np.ndarray, node_group: np.ndarray) -> np.ndarray:
    """Per group, the highest ``rank`` (int16, -1: none) of any node inside it at any depth: each node's rank
    goes to its group, then up to the ancestors, as many rounds as the tree is deep (a few), each one
    vectorised. Collapsed group boxes are banded with it."""
    G = len(group_parent)
    gr = np.full(G, -1, np.int16)
    m = rank >= 0
    np.maximum.at(gr, np.asarray(node_group)[m], rank[m].astype(np.int16))
    par = np.asarray(group_parent, np.int64)
    cur = gr.copy()
    for _ in range(64):
        nxt = np.full(G, -1, np.int16)
        have = (cur >= 0) & (par >= 0) & (np.arange(G) > 0)
        if not have.any():
            break
        np.maximum.at(nxt, par[have], cur[have])
        gr = np.maximum(gr, nxt)
        cur = nxt
    return gr

class ErrorOverlay:
    """Per-node error figures of one graph (a view pack of ``n_nodes`` nodes).

    ``node_index``: the pack node of each layer (-1 where it has none); ``max_abs`` (absolute error in
    the tensor's units, NaN where not compared), ``status`` (names of :data:`STATUS_CODES`) and
    ``layer`` (the engine's layer index) per layer; ``first``: the engine's first divergence (a layer
    index) or None; ``atol``: the tolerance's absolute part, the unit of the colour scale.
    ``threshold``: decades over ``atol`` below which a layer is drawn green.
    """

    def __init__(self, n_nodes: int, node_index, max_abs, status: list[str], layer, *, first: int | None,
                 atol: float, threshold: float = 0.0):
        self.n_nodes = int(n_nodes)
        node_index = np.asarray(node_index, np.int64)
        max_abs = np.asarray(max_abs, np.float64)
        layer = np.asarray(layer, np.int64)
        self.atol = float(atol) if atol and atol > 0 else 1e-12
        codes = np.array([STATUS_CODES.get(s, 4) for s in status], np.int8)
        ok = (node_index >= 0) & (node_index < self.n_nodes)
        # a node that several layers map to keeps the worst of them (the last write wins: sort by level)
        with np.errstate(divide="ignore", invalid="ignore"):
            lvl = np.log10(np.maximum(max_abs, 0.0) / self.atol)
        order = np.argsort(np.where(np.isnan(lvl), -np.inf, lvl), kind="stable")
        order = order[ok[order]]
        self.level = np.full(self.n_nodes, np.nan)          # log10(max_abs / atol); -inf for exact
        self.status = np.full(self.n_nodes, -1, np.int8)
        self.layer = np.full(self.n_nodes, -1, np.int64)
        self.level[node_index[order]] = lvl[order]
        self.status[node_index[order]] = codes[order]
        self.layer[node_index[order]] = layer[order]
        self.first_node = -1
        if first is not None:
            hit = np.flatnonzero((layer == first) & ok)
            if len(hit):
                self.first_node = int(node_index[hit[0]])
        self.node_of_layer = {int(k): int(i) for k, i in zip(layer.tolist(), node_index.tolist()) if i >= 0}
        self.bin = np.full(self.n_nodes, -1, np.int8)
        self.threshold = 0.0
        self.set_threshold(threshold)

    def set_threshold(self, decades: float) -> None:
        """Recolour: layers ``decades`` or less over ``atol`` green, each decade above one colour darker."""
        self.threshold = float(decades)
        b = np.full(self.n_nodes, -1, np.int8)
        paired = self.status >= 0
        b[paired] = BIN_MISSING
        lv = self.level
        have = paired & ~np.isnan(lv)
        with np.errstate(invalid="ignore"):
            above = lv - self.threshold
            k = np.clip(np.ceil(np.where(np.isfinite(above), above, -1.0)), 0, N_LEVEL_BINS)
        b[have] = k[have].astype(np.int8)
        self.bin = b

    # -- queries ------------------------------------------------------------------------------------
    def colored_nodes(self) -> np.ndarray:
        """Nodes drawn in an error colour (above the threshold)."""
        return np.flatnonzero((self.bin >= 1) & (self.bin <= N_LEVEL_BINS))

    def nodes_with_status(self, status: str) -> np.ndarray:
        return np.flatnonzero(self.status == STATUS_CODES[status])

    def status_of(self, node: int) -> str | None:
        c = int(self.status[node]) if 0 <= node < self.n_nodes else -1
        return next((s for s, v in STATUS_CODES.items() if v == c), None)

    def color_of(self, node: int) -> QColor | None:
        """The fill the overlay gives ``node`` (None when it is no compared layer)."""
        b = int(self.bin[node]) if 0 <= node < self.n_nodes else -1
        return level_colors()[b] if b >= 0 else None

    def legend(self) -> list[tuple[QColor, str]]:
        """(fill, label) per bin, labels in absolute error (the tensor's units)."""
        t = self.threshold
        cols = level_colors()

        def e(x: float) -> str:
            return f"{self.atol * 10 ** x:.0e}".replace("e-0", "e-").replace("e+0", "e")

        rows = [(cols[BIN_OK], f"≤ {e(t)}  within")]
        for k in range(1, N_LEVEL_BINS):
            rows.append((cols[k], f"{e(t + k - 1)} – {e(t + k)}"))
        rows.append((cols[N_LEVEL_BINS], f"> {e(t + N_LEVEL_BINS - 1)}"))
        rows.append((cols[BIN_MISSING], "not compared"))
        return rows

    def group_bins(self, group_parent: np.ndarray, node_group: np.ndarray) -> np.ndarray:
        """The worst bin of any node inside each group (all levels; -1 where none is a layer), for
        collapsed group boxes: the highest error colour wins over green, green over missing."""
        G = len(group_parent)
        rank = np.full(self.n_nodes, -1, np.int16)
        b = self.bin.astype(np.int16)
        rank[b == BIN_MISSING] = 0
        rank[(b >= 0) & (b <= N_LEVEL_BINS)] = b[(b >= 0) & (b <= N_LEVEL_BINS)] + 1
        if G == 0 or not (rank >= 0).any():
            return np.full(G, -1, np.int8)
        gr = worst_per_group(rank, group_parent, node_group)
        out = np.where(gr == 0, BIN_MISSING, gr - 1).astype(np.int8)
        out[gr < 0] = -1
        return out


def decades(max_abs: float | None, atol: float) -> float:
    """log10(max_abs / atol), -inf for an exact match, NaN when not compared."""
    if max_abs is None or not math.isfinite(float(max_abs)):
        return float("nan")
    if max_abs <= 0:
        return float("-inf")
    return math.log10(float(max_abs) / (atol if atol > 0 else 1e-12))


# ---- how each pair was found, and what has no partner ---------------------------------------------------

# the engine's pairing methods (converters.parity.plan), in order of trust: code = index
PAIR_METHODS = ("user", "map", "name", "weights", "structure")
_METHOD_LETTER = {"user": "U", "map": "M", "name": "N", "weights": "W", "structure": "S"}
_METHOD_TEXT = {"user": "given by you", "map": "converter's map", "name": "same name",
                "weights": "same weights", "structure": "graph structure"}
# saturated tones apart from the error scale's yellows and reds, each with white letters
_METHOD_COLOR = {"user": "#1565c0", "map": "#00838f", "name": "#6a4fb3", "weights": "#8d6e00", "structure": "#37474f"}
UNMATCHED_COLOR = QColor("#8d949e")


def method_color(method: str) -> QColor:
    return QColor(_METHOD_COLOR.get(method, "#616161"))


def method_letter(method: str) -> str:
    return _METHOD_LETTER.get(method, "?")


class Pairing:
    """How each node of one graph is paired with the other model: ``method`` (a code of
    :data:`PAIR_METHODS` per node, -1 where the node is no paired layer) and ``unmatched`` (True where the
    node makes a tensor the engine paired with nothing: the result's ``unmatched`` list of this side).

    ``node_of_layer``: {layer index: node} of this graph (the overlay's); ``methods``: {layer index:
    method name} from the result's layers; ``unmatched_nodes``: node indices (-1 entries are ignored)."""

    def __init__(self, n_nodes: int, node_of_layer: dict[int, int], methods: dict[int, str], unmatched_nodes):
        self.n_nodes = int(n_nodes)
        self.method = np.full(self.n_nodes, -1, np.int8)
        for k, i in node_of_layer.items():
            m = methods.get(int(k))
            if m in PAIR_METHODS and 0 <= i < self.n_nodes:
                self.method[i] = PAIR_METHODS.index(m)
        self.unmatched = np.zeros(self.n_nodes, bool)
        u = np.asarray(list(unmatched_nodes), np.int64)
        u = u[(u >= 0) & (u < self.n_nodes)]
        self.unmatched[u] = True
        self.unmatched[self.method >= 0] = False     # a node that makes a paired tensor too is paired

    def method_of(self, node: int) -> str | None:
        c = int(self.method[node]) if 0 <= node < self.n_nodes else -1
        return PAIR_METHODS[c] if c >= 0 else None

    def nodes_by(self, method: str) -> np.ndarray:
        return np.flatnonzero(self.method == PAIR_METHODS.index(method))

    def counts(self) -> dict[str, int]:
        c = np.bincount(self.method[self.method >= 0].astype(np.int64), minlength=len(PAIR_METHODS))
        return {m: int(c[k]) for k, m in enumerate(PAIR_METHODS) if c[k]}

    def legend(self) -> list[tuple[str, str, QColor, str]]:
        """(kind, letter, colour, label) rows: one per method present, then the unmatched nodes' hatch."""
        rows = [("method", method_letter(m), method_color(m), f"{_METHOD_TEXT[m]} ({n})")
                for m, n in self.counts().items()]
        n_un = int(self.unmatched.sum())
        if n_un:
            rows.append(("unmatched", "", UNMATCHED_COLOR, f"no partner in the other model ({n_un})"))
        return rows
