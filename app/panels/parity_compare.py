"""The compare view ("A ⇄ B"): model A and model B side by side, in step through the correspondence of the
last per-layer result.

Two :class:`~app.graph_view.view.GraphView` panes draw the packs of the open tabs of A and B (the same
packs, so the layout work is shared). :class:`Correspondence` is the pairing the engine found, as node
arrays of both graphs (each paired layer's node in A and in B); this module only follows it:

* selecting a node in one pane selects (and centres) its partner in the other; a node with no partner
  clears the other's selection;
* panning and zooming the pane the user works in moves the other: same zoom, centred on the partner of
  the paired node nearest the viewport's centre, at the same offset from it;
* expanding or collapsing a group in one expands or collapses, in the other, the group that holds the
  partners of the layers inside it (their innermost common group; the top-level groups that hold them
  when they share none).

The error overlay and the pairing marks (:class:`~app.graph_view.overlay.Pairing`: a badge per method,
unmatched nodes hatched) are painted on both panes. The comparison's settings (devices, inputs,
tolerance, Run and Cancel) stay in the Compare dialog: "Compare again…" asks the window to open it.
"""
from __future__ import annotations

import os

import numpy as np
from PySide6.QtCore import QEvent, QObject, QPointF, Qt, Signal
from PySide6.QtWidgets import (QCheckBox, QHBoxLayout, QLabel, QProgressBar, QPushButton, QSplitter, QVBoxLayout,
                               QWidget)

from ..graph_view.view import GraphView
from ..jobs import show_fraction

__all__ = ["CompareView", "Correspondence", "SIDES"]

SIDES = ("a", "b")


def settings_text(p: dict) -> str:
    """``fp32 · cpu | cpu · seed 0 · 3 samples`` for a comparison's params (inputs file: its name)."""
    devs = f"{p.get('device_a') or 'cpu'} | {p.get('device_b') or 'cpu'}"
    inputs = p.get("inputs") or []
    src = f"inputs {os.path.basename(inputs[0])}" if inputs else f"seed {int(p.get('seed') or 0)}"
    n = int(p.get("samples") or 1)
    return " · ".join([str(p.get("preset") or "fp32"), devs, src] + ([f"{n} samples"] if n > 1 else []))


def _other(side: str) -> str:
    return "b" if side == "a" else "a"


class Correspondence:
    """The pairs of one per-layer result on two graphs: ``layer[side]`` (the layer index each node makes,
    -1 for none) and ``partner[side]`` (the node of the other graph each node is paired with, -1 for none).
    ``node_of_layer``: {side: {layer index: node}} (the error overlays' maps)."""

    def __init__(self, n_nodes: dict[str, int], node_of_layer: dict[str, dict[int, int]]):
        self.n_nodes = dict(n_nodes)
        self.node_of_layer = {s: dict(node_of_layer.get(s) or {}) for s in SIDES}
        self.layer: dict[str, np.ndarray] = {}
        self.partner: dict[str, np.ndarray] = {}
        for s in SIDES:
            lay = np.full(self.n_nodes[s], -1, np.int64)
            for k, i in self.node_of_layer[s].items():
                if 0 <= i < self.n_nodes[s]:
                    lay[i] = k
            self.layer[s] = lay
        for s in SIDES:
            other = self.node_of_layer[_other(s)]
            part = np.full(self.n_nodes[s], -1, np.int64)
            for i in np.flatnonzero(self.layer[s] >= 0).tolist():
                part[i] = other.get(int(self.layer[s][i]), -1)
            self.partner[s] = part

    def partner_of(self, side: str, node: int) -> int:
        p = self.partner.get(side)
        return int(p[node]) if p is not None and 0 <= node < len(p) else -1

    def layer_of(self, side: str, node: int) -> int:
        lay = self.layer.get(side)
        return int(lay[node]) if lay is not None and 0 <= node < len(lay) else -1


def _subtree(group_parent: np.ndarray, g: int) -> np.ndarray:
    """A mask over the groups: ``g`` and every group inside it."""
    par = np.asarray(group_parent, np.int64)
    under = np.zeros(len(par), bool)
    under[g] = True
    for _ in range(64):                      # as many rounds as the tree is deep
        nxt = under | np.where(par >= 0, under[np.maximum(par, 0)], False)
        if (nxt == under).all():
            break
        under = nxt
    return under


def _chain(group_parent: np.ndarray, g: int) -> list[int]:
    """``g`` and its ancestors, innermost first (the root, 0, last)."""
    out = [int(g)]
    while out[-1] > 0:
        out.append(int(group_parent[out[-1]]))
    return out


class _Lead(QObject):
    """Marks the pane the user works in (a press, the wheel or a key on it) as the one the other follows."""

    def __init__(self, view: "CompareView", side: str):
        super().__init__(view)
        self.view, self.side = view, side

    def eventFilter(self, obj, ev) -> bool:
        if ev.type() in (QEvent.Type.MouseButtonPress, QEvent.Type.Wheel, QEvent.Type.KeyPress,
                         QEvent.Type.Gesture, QEvent.Type.NativeGesture):
            self.view.lead = self.side
        return False


class CompareView(QWidget):
    """Signals: ``layerPicked(int)`` (a paired node was selected in either pane: its layer index),
    ``nodePicked(str, int)`` (side and node of any selection), ``compareAgainRequested()``."""

    layerPicked = Signal(int)
    nodePicked = Signal(str, int)
    compareAgainRequested = Signal()
    runRequested = Signal()      # the same comparison again
    cancelRequested = Signal()   # cancel the running one
    inspector_text = "A ⇄ B: pick a node in either graph to see it here."

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("compareView")
        self.corr: Correspondence | None = None
        self.result: dict | None = None
        self.lead = "a"                  # the pane the other follows
        self._sync = False
        self.panes: dict[str, GraphView] = {}
        self.titles: dict[str, QLabel] = {}

        self.summary = QLabel("", self)
        self.summary.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.in_step = QCheckBox("In step", self)
        self.in_step.setChecked(True)
        self.in_step.setToolTip("Selecting, panning, zooming and expanding in one graph follows in the other")
        self.legend_box = QCheckBox("Legend", self)
        self.legend_box.setChecked(True)
        self.legend_box.setToolTip("Show the key of the colours, outlines and pairing badges in both graphs")
        self.legend_box.toggled.connect(self._legend_toggled)
        self.fit_button = QPushButton("Fit both", self)
        self.fit_button.clicked.connect(self.fit_both)
        self.again_button = QPushButton("Settings…", self)
        self.again_button.setToolTip("Compare these two models again with other settings: devices, inputs, samples, "
                                     "tolerance (the Compare dialog, filled with this run's)")
        self.again_button.clicked.connect(self.compareAgainRequested.emit)
        self.settings = QLabel("", self)
        self.settings.setObjectName("compareSettings")
        self.run_button = QPushButton("Run again", self)
        self.run_button.setToolTip("Compare the two models again with the same settings")
        self.run_button.clicked.connect(self.runRequested.emit)
        self.bar = QProgressBar(self)
        self.bar.setMaximumWidth(160)
        self.bar.setMaximumHeight(16)
        self.bar.setTextVisible(False)
        self.progress_text = QLabel("", self)
        self.cancel_button = QPushButton("Cancel", self)
        self.cancel_button.clicked.connect(self.cancelRequested.emit)
        self.set_running(False)
        bar = QHBoxLayout()
        bar.setContentsMargins(6, 4, 6, 2)
        bar.addWidget(self.summary, 1)
        bar.addWidget(self.in_step)
        bar.addWidget(self.legend_box)
        bar.addWidget(self.fit_button)
        bar.addSpacing(10)
        bar.addWidget(self.settings)
        bar.addWidget(self.progress_text)
        bar.addWidget(self.bar)
        bar.addWidget(self.cancel_button)
        bar.addWidget(self.run_button)
        bar.addWidget(self.again_button)

        self.split = QSplitter(Qt.Orientation.Horizontal, self)
        self.split.setChildrenCollapsible(False)
        for side in SIDES:
            box = QWidget(self.split)
            lay = QVBoxLayout(box)
            lay.setContentsMargins(0, 0, 0, 0)
            lay.setSpacing(0)
            title = QLabel("", box)
            title.setObjectName(f"compareTitle_{side}")
            title.setContentsMargins(8, 3, 8, 3)
            title.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
            f = title.font()
            f.setBold(True)
            title.setFont(f)
            pane = GraphView(box)
            pane.setObjectName(f"comparePane_{side}")
            lay.addWidget(title)
            lay.addWidget(pane, 1)
            self.panes[side], self.titles[side] = pane, title
            lead = _Lead(self, side)
            pane.canvas.viewport().installEventFilter(lead)
            pane.canvas.installEventFilter(lead)
            pane.nodeSelected.connect(lambda i, s=side: self._selected(s, i))
            pane.viewChanged.connect(lambda s=side: self._view_changed(s))
            pane.groupToggled.connect(lambda g, on, s=side: self._group_toggled(s, g, on))
            self.split.addWidget(box)
        self.split.setSizes([1, 1])

        root = QVBoxLayout(self)
        root.setContentsMargins(0, 0, 0, 0)
        root.setSpacing(0)
        root.addLayout(bar)
        root.addWidget(self.split, 1)

    # -- running -------------------------------------------------------------------------------------
    def set_running(self, on: bool, fraction: float | None = None, message: str = "") -> None:
        """Show a comparison of these models running (progress and Cancel) or not (Run again, Settings…)."""
        self.bar.setVisible(on)
        self.cancel_button.setVisible(on)
        self.progress_text.setVisible(on)
        self.run_button.setEnabled(not on)
        self.again_button.setEnabled(not on)
        if on:
            show_fraction(self.bar, fraction)
            self.progress_text.setText(message[:60])

    def set_settings(self, params: dict | None) -> None:
        """The settings of the shown comparison, in a few words (preset · devices · inputs · samples)."""
        self.settings.setText(settings_text(params) if params else "")
        self.settings.setToolTip("The settings of the comparison shown; Settings… changes them")

    # -- the models and the pairing -------------------------------------------------------------------
    def set_models(self, packs: dict, corr: Correspondence, result: dict, *, overlays: dict | None = None,
                   pairings: dict | None = None) -> None:
        """Show pack ``packs[side]`` in each pane with the pairs of ``corr``; ``overlays`` / ``pairings``:
        {side: ErrorOverlay or Pairing or None} painted on each (None: none)."""
        self.corr, self.result = corr, result
        for side in SIDES:
            pane = self.panes[side]
            if pane.pack is not packs[side]:
                pane.set_pack(packs[side])
            info = result.get(side) or {}
            where = f"{info.get('runtime') or '?'} on {info.get('device') or 'cpu'}"
            self.titles[side].setText(f"{side.upper()} · {os.path.basename(str(info.get('path', '')))}  ({where})")
            self.titles[side].setToolTip(str(info.get("path", "")))
        self.set_overlays(overlays or {}, pairings or {})
        layers = result.get("layers") or []
        c = {}
        for r in layers:
            c[r.get("status")] = c.get(r.get("status"), 0) + 1
        un = result.get("unmatched") or {}
        first = result.get("layer_first")
        self.summary.setText(
            f"{len(layers)} layer pairs, {c.get('source', 0)} wrong itself, {c.get('inherited', 0)} inherited"
            + (f"; first divergence '{first['a']}'" if first else "")
            + f"; unmatched: {len(un.get('a') or [])} in A, {len(un.get('b') or [])} in B")

    def set_overlays(self, overlays: dict, pairings: dict) -> None:
        for side in SIDES:
            pane = self.panes[side]
            pane.set_overlay(overlays.get(side))
            pane.set_pairing(pairings.get(side))

    def _legend_toggled(self, on: bool) -> None:
        for pane in self.panes.values():
            pane.show_legend = on

    def stop(self) -> None:
        """Before the tab goes: end the panes' layout threads."""
        for pane in self.panes.values():
            pane.close()

    def fit_both(self) -> None:
        self._sync = True
        try:
            for pane in self.panes.values():
                pane.fit()
        finally:
            self._sync = False

    # -- selection --------------------------------------------------------------------------------------
    def select_layer(self, index: int) -> dict[str, int]:
        """Select layer ``index``'s node in both panes (centred). Returns {side: node} of those that have it."""
        hits: dict[str, int] = {}
        if self.corr is None:
            return hits
        self._sync = True
        try:
            for side in SIDES:
                node = self.corr.node_of_layer[side].get(int(index), -1)
                if node >= 0 and self.panes[side].pack is not None:
                    self.panes[side].select(node, center=True)
                    hits[side] = node
        finally:
            self._sync = False
        return hits

    def _selected(self, side: str, node: int) -> None:
        if self._sync:
            return
        self.lead = side
        self.nodePicked.emit(side, int(node))
        if self.corr is None or not self.in_step.isChecked():
            return
        other = self.panes[_other(side)]
        if other.pack is None:
            return
        partner = self.corr.partner_of(side, node) if node >= 0 else -1
        self._sync = True
        try:
            if partner >= 0:
                other.select(partner, center=True)   # expands the groups that hide it, if any
                self._align(side, node, partner)
            elif other.selected != -1:
                other.select(-1, center=False)
        finally:
            self._sync = False
        k = self.corr.layer_of(side, node) if node >= 0 else -1
        if k >= 0:
            self.layerPicked.emit(k)

    # -- panning and zooming -----------------------------------------------------------------------------
    def nearest_paired(self, side: str) -> int:
        """The node of pane ``side``, drawn and paired with a node of the other graph, nearest the centre
        of its viewport (-1 when none is drawn)."""
        pane = self.panes[side]
        d = pane._data
        if d is None or self.corr is None or not len(d.lay.node_idx):
            return -1
        nodes = d.lay.node_idx
        ok = self.corr.partner[side][nodes] >= 0
        if not ok.any():
            return -1
        c = pane.view_center()
        r = d.lay.node_rect
        cx, cy = r[:, 0] + r[:, 2] / 2, r[:, 1] + r[:, 3] / 2
        dist = np.where(ok, (cx - c.x()) ** 2 + (cy - c.y()) ** 2, np.inf)
        return int(nodes[int(np.argmin(dist))])

    def _view_changed(self, side: str) -> None:
        if self._sync or side != self.lead or not self.in_step.isChecked():
            return
        self._sync = True
        try:
            self._follow(side)
        finally:
            self._sync = False

    def _follow(self, side: str) -> None:
        """Move the other pane to where pane ``side`` is: the same zoom, centred on the partner of the
        paired node nearest ``side``'s centre, at the same offset from it."""
        lead, other = self.panes[side], self.panes[_other(side)]
        if lead._data is None or other._data is None or self.corr is None:
            return
        c = lead.view_center()
        n = self.nearest_paired(side)
        target = None
        if n >= 0:
            here = lead.drawn_anchor(n)
            there = other.drawn_anchor(self.corr.partner_of(side, n))
            if here is not None and there is not None:
                target = there.center() + (c - here.center())
        if target is None:
            target = QPointF(other.view_center())
        other.set_view(lead.zoom, target)

    def _align(self, side: str, node: int, partner: int) -> None:
        """The other pane at pane ``side``'s zoom, its ``partner`` where ``node`` is on ``side``'s screen
        (centred when that place is off the other's screen or either is not drawn yet)."""
        lead, other = self.panes[side], self.panes[_other(side)]
        here, there = lead.drawn_anchor(node), other.drawn_anchor(partner)
        if here is None or there is None:
            return
        off = lead.view_center() - here.center()
        half = lead.canvas.viewport().rect()
        if abs(off.x()) * lead.zoom > half.width() / 2 or abs(off.y()) * lead.zoom > half.height() / 2:
            off = QPointF(0, 0)
        other.set_view(lead.zoom, there.center() + off)

    # -- expanding and collapsing ------------------------------------------------------------------------
    def partner_groups(self, side: str, group: int) -> list[int]:
        """The groups of the other graph that hold the partners of the layers inside ``group`` of pane
        ``side``: their innermost common group, or the top-level groups holding them when that is the root."""
        pa, pb = self.panes[side].pack, self.panes[_other(side)].pack
        if self.corr is None or pa is None or pb is None or not 0 < group < pa.n_groups:
            return []
        under = _subtree(pa.group_parent, group)
        nodes = np.flatnonzero(under[np.asarray(pa.node_group, np.int64)])
        partners = self.corr.partner[side][nodes]
        partners = partners[partners >= 0]
        if not len(partners):
            return []
        par_b = np.asarray(pb.group_parent, np.int64)
        groups = sorted(set(np.asarray(pb.node_group, np.int64)[partners].tolist()))
        chains = [_chain(par_b, g) for g in groups]
        common = set(chains[0]).intersection(*map(set, chains[1:]))
        inner = next((g for g in chains[0] if g in common), 0)
        if inner > 0:
            return [inner]
        return sorted({ch[-2] for ch in chains if len(ch) >= 2})   # the child of the root on each chain

    def _group_toggled(self, side: str, group: int, expanded: bool) -> None:
        if self._sync or not self.in_step.isChecked() or self.corr is None:
            return
        other = self.panes[_other(side)]
        if other.pack is None:
            return
        self._sync = True
        try:
            if group < 0:
                (other.expand_all if expanded else other.collapse_all)()
                return
            for g in self.partner_groups(side, group):
                if expanded:
                    other.expand(g)
                elif g in other.expanded_groups:
                    other.collapse(g)
        finally:
            self._sync = False
