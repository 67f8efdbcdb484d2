"""Parity in the window: the check after a conversion, Compare with…, the devices per side, the
first divergence shown in the graph, and the compare view (A ⇄ B, :mod:`app.panels.parity_compare`).

A mixin of :class:`app.main_window.MainWindow`: its methods use the window's widgets and job registry."""
from __future__ import annotations

import os

from PySide6.QtCore import QEvent, QObject, Qt


from ..panels.parity import node_for_value


class ParityFeature:
    @property
    def auto_parity(self) -> bool:
        """Whether a finished conversion starts a comparison of source and result (View menu; saved)."""
        v = self.settings.value("parity/auto", True)
        return v if isinstance(v, bool) else str(v).lower() in ("true", "1", "yes")

    def run_compare(self, params: dict, title: str = ""):
        """Run the ``compare`` task and show it in the Parity dock (raised). Returns the QtJob."""
        self.parity_dock.show()
        self.parity_dock.raise_()
        self._fit_parity_dock(bool(params.get("per_layer")))
        return self.parity.start(params, title)

    def _fit_parity_dock(self, per_layer: bool) -> None:
        """Room for the dock's table and plots; more for the Layers page (its controls and the pair's words
        take four lines), as long as the graph keeps most of the window."""
        want = min(440, int(self.height() * 0.45)) if per_layer else 300
        if self.parity_dock.height() < want - 30 and not self.parity_dock.isFloating():
            self.resizeDocks([self.parity_dock], [want], Qt.Orientation.Vertical)

    def start_parity_after_conversion(self, convert_params: dict, out: str):
        """Compare a conversion's source with its output: CPU, seeded random inputs, the fp16 preset
        when the conversion wrote float16 weights (else fp32), the converter's map when it wrote one."""
        from converters.compare.params import parity_after_conversion

        params = parity_after_conversion(convert_params["src"], out, convert_params.get("options"))
        return self.run_compare(params, f"{os.path.basename(convert_params['src'])} → "
                                        f"{os.path.basename(out.rstrip(os.sep))}")

    def request_devices(self, runtimes: list[str] | None = None):
        """Ask the ``devices`` task (once per window and runtime set); fills an open Compare dialog."""
        from converters.jobs.protocol import DevicesParams

        job = self.jobs.run("devices", DevicesParams(runtimes or None).to_dict(), title="list devices")

        def done(result: dict) -> None:
            devs = list(result.get("devices") or [])
            known = {(d.get("runtime"), d.get("device")) for d in devs}
            self._devices = devs + [d for d in (self._devices or []) if (d.get("runtime"), d.get("device")) not in known]
            if self.compare_dialog is not None:
                self.compare_dialog.set_devices(self._devices)

        def failed(message: str, _kind: str) -> None:
            if self.compare_dialog is not None:
                self.compare_dialog.set_devices_error(message)

        job.finished.connect(done)
        job.failed.connect(failed)
        return job

    def compare_with(self, b_path: str | None = None, a_path: str | None = None, per_layer: bool | None = None):
        """Open the Compare dialog with the current tab as A (``a_path`` when given; ``b_path`` as B when
        given; ``per_layer`` ticks or clears its checkbox); the comparison runs when it is accepted. Returns
        the (non-modal) dialog."""
        from ..panels.compare_dialog import CompareDialog

        tabs = [t for t in self.model_tabs() if t.state != "failed"]
        cur = self.current_tab()
        current_a = os.path.abspath(a_path) if a_path else (cur.path if cur is not None else None)
        if current_a is None:
            self.show_notice("Open a model first; it will be model A of the comparison.", "info")
            return None
        choices = [(f"{t.title} — {t.path}", t.path) for t in tabs]
        if current_a not in [c[1] for c in choices]:
            choices.insert(0, (f"{os.path.basename(current_a)} — {current_a}", current_a))
        dlg = CompareDialog(choices, current_a, parent=self,
                            start_dir=str(self.settings.value("last_dir", "") or os.getcwd()))
        dlg.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        if b_path:
            dlg.set_b(b_path)
        if per_layer is not None:
            dlg.per_layer.setChecked(bool(per_layer))
        self.compare_dialog = dlg
        dlg.destroyed.connect(lambda *_: setattr(self, "compare_dialog", None))
        have = {d.get("runtime") for d in (self._devices or [])}
        if self._devices is not None:
            dlg.set_devices(self._devices)
        need = [r for r in dlg.runtimes() if r not in have]
        if need:
            self.request_devices(need)

        def accepted() -> None:
            trust = any(t.trust for t in self.model_tabs() if t.path in (dlg.path_a(), dlg.path_b()))
            self.run_compare(dlg.params(trust=trust))

        dlg.accepted.connect(accepted)
        dlg.open()
        return dlg

    def show_divergence(self, path_a: str, name_a: str, path_b: str, name_b: str) -> int:
        """Select and centre the node that makes the first diverging tensor in an open tab of B (else
        A). Returns the node index, or -1 when no open graph has it."""
        for path, name in ((path_b, name_b), (path_a, name_a)):
            for tab in self.model_tabs():
                if tab.path != os.path.abspath(path) or tab.doc is None or tab.doc.pack is None:
                    continue
                i = node_for_value(tab.doc.pack, name)
                if i >= 0:
                    self.tabs.setCurrentWidget(tab)
                    tab.canvas_call("select", i)
                    self.statusBar().showMessage(f"First divergence: '{name}' in {tab.title}", 8000)
                    return i
        self.statusBar().showMessage("The first diverging tensor is in no open graph; open the converted "
                                     "model to see it", 8000)
        return -1

    # -- per-layer results on the graphs -----------------------------------------------------------
    def _setup_layer_views(self) -> None:
        """Wire the Parity dock's Layers page to the graphs (called once by the window)."""
        self._overlays: dict[tuple[str, int], object] = {}   # (side, id(pack)) -> ErrorOverlay
        self._overlay_result: dict | None = None
        self._following = False
        self.parity.started.connect(lambda job: (self.apply_overlays(),
                                                 self._fit_parity_dock(bool(job.params.get("per_layer"))),
                                                 self._compare_view_running(job)))
        self.parity.resultShown.connect(self._layer_result_shown)
        self.parity.layers.tensors.registry = self.jobs
        self.parity.layers.tensors.openRequested.connect(lambda p: self.open_path(p))
        self.parity.layerSelected.connect(self.select_layer)
        self.parity.layers.overlayChanged.connect(self.apply_overlays)
        self.parity.layers.openBRequested.connect(self.open_compared_b)
        self.parity.layers.sideBySideRequested.connect(self.open_compare_view)
        self.parity.compareRequested.connect(lambda path: self.compare_with(a_path=path or None))
        self.parity.noticeRequested.connect(lambda text, kind, actions: self.show_notice(text, kind, actions))
        self.tabs.currentChanged.connect(lambda _i: self._parity_follow_tab())
        self.compare_view = None          # the A ⇄ B tab, once opened
        self._compare_wanted = False      # opened once both graphs are drawn
        self._compare_opened: set[str] = set()  # paths opened for it (each once per request)
        self._compare_cache: tuple | None = None
        self.act_side_by_side = self._action("A ⇄ B &side by side", self.open_compare_view, "Ctrl+Shift+B",
                                             "Source and converted model side by side, in step through the layer "
                                             "pairs of the last per-layer comparison")

    def _parity_follow_tab(self) -> None:
        """The Parity dock shows the last comparison on the tabs of its models (and the A ⇄ B view) only."""
        tab = self.current_tab()
        self.parity.set_context(tab.path if tab is not None else None)

    def _layer_result_shown(self, res: dict) -> None:
        self.apply_overlays()
        self.parity.layers.set_result(res, self.parity.params)
        if res.get("layers"):
            # the Layers page holds the table and the pair's tensors: most of the dock's width
            w = max(self.parity.split.width(), 900)
            self.parity.split.setSizes([w - min(int(w * 0.3), 420), min(int(w * 0.3), 420)])
            lw = max(w - min(int(w * 0.3), 420), 600)
            self.parity.layers.split.setSizes([int(lw * 0.42), lw - int(lw * 0.42)])

    def layer_result(self) -> dict | None:
        """The Parity dock's result when it is a per-layer one, else None."""
        res = self.parity.result
        return res if res and res.get("layers") else None

    def _side_of(self, tab) -> str | None:
        res = self.layer_result()
        if res is None or tab is None:
            return None
        p = os.path.abspath(tab.path)
        if p == os.path.abspath(res["a"]["path"]):
            return "a"
        if p == os.path.abspath(res["b"]["path"]):
            return "b"
        return None

    def tab_for_side(self, side: str):
        """The open, drawn tab of model A or B of the per-layer result (None when not open)."""
        res = self.layer_result()
        if res is None:
            return None
        path = os.path.abspath(res[side]["path"])
        for tab in self.model_tabs():
            if (os.path.abspath(tab.path) == path and tab.doc is not None and tab.doc.pack is not None
                    and hasattr(tab.canvas, "set_overlay")):
                return tab
        return None

    def side_overlay(self, side: str):
        """The :class:`~app.graph_view.overlay.ErrorOverlay` of side ``"a"`` or ``"b"``: the result's
        layers mapped onto that open graph (made once per result and graph), or None."""
        res = self.layer_result()
        tab = self.tab_for_side(side) if res is not None else None
        if tab is None:
            return None
        if self._overlay_result is not res:
            self._overlays.clear()
            self._overlay_result = res
        pack = tab.doc.pack
        key = (side, id(pack))
        ov = self._overlays.get(key)
        if ov is None or ov.n_nodes != pack.n_nodes:
            from ..graph_view.overlay import ErrorOverlay
            from ..panels.parity import nodes_for_layers

            layers = res["layers"]
            node_key, value_key = ("node", "a") if side == "a" else ("node_b", "b")
            idx = nodes_for_layers(pack, [r.get(node_key) or "" for r in layers], [r.get(value_key) or "" for r in layers])
            first = res.get("layer_first")
            ov = ErrorOverlay(pack.n_nodes, idx, [float("nan") if r.get("max_abs") is None else float(r["max_abs"])
                                                  for r in layers],
                              [r.get("status", "missing") for r in layers], [int(r["index"]) for r in layers],
                              first=int(first["index"]) if first else None,
                              atol=float((res.get("tolerance") or {}).get("atol") or 1e-5),
                              threshold=self.parity.layers.threshold)
            self._overlays[key] = ov
        return ov

    def apply_overlays(self) -> None:
        """Paint (or remove) the error overlay on every open graph of A and B, at the dock's threshold."""
        res = self.layer_result()
        on = res is not None and self.parity.layers.overlay_on and not self.parity.running
        for tab in self.model_tabs():
            canvas = tab.canvas
            if not hasattr(canvas, "set_overlay"):
                continue
            if getattr(canvas, "_layer_menu", None) is None and hasattr(canvas, "hit"):
                canvas._layer_menu = _NodeMenu(self, tab, canvas)  # a right click on a node: its layer's actions
            side = self._side_of(tab) if on else None
            ov = self.side_overlay(side) if side is not None and self.tab_for_side(side) is tab else None
            if ov is not None:
                ov.set_threshold(self.parity.layers.threshold)
            if ov is not None or canvas.overlay is not None:
                canvas.set_overlay(ov)
        self.parity.layers.set_b_open(res is None or self.tab_for_side("b") is not None)
        self.parity.layers.side_button.setVisible(res is not None)
        self.act_side_by_side.setEnabled(res is not None)
        if hasattr(self, "act_first_divergence"):
            self.act_first_divergence.setEnabled(res is not None and res.get("layer_first") is not None)
        self.refresh_compare_view()

    def select_layer(self, index: int) -> dict[str, int]:
        """Select layer ``index`` of the per-layer result in the open graphs of A and B (centred there);
        the current tab becomes B's (else A's) unless it already shows one of them. Returns
        {side: node index} of the graphs that have it."""
        hits: dict[str, int] = {}
        if index < 0 or self.layer_result() is None:
            return hits
        tabs = {}
        self._following = True
        try:
            for side in ("a", "b"):
                ov = self.side_overlay(side)
                node = ov.node_of_layer.get(int(index), -1) if ov is not None else -1
                if node >= 0:
                    tab = self.tab_for_side(side)
                    tab.canvas_call("select", node)
                    hits[side], tabs[side] = node, tab
            cur = self.current_tab()
            view = self.compare_view
            if view is not None:
                view.select_layer(int(index))
            if tabs and cur not in tabs.values() and (view is None or self.tabs.currentWidget() is not view):
                self.tabs.setCurrentWidget(tabs.get("b") or tabs["a"])
            cur = self.current_tab()
            if cur is not None and cur.doc is not None and cur in tabs.values():
                self.inspector.show_node(cur.doc, hits["a" if tabs.get("a") is cur else "b"])
        finally:
            self._following = False
        r = next((x for x in self.layer_result()["layers"] if int(x["index"]) == int(index)), None)
        if r is not None:
            where = [f"{s.upper()} node {r.get('node' if s == 'a' else 'node_b')}" for s in hits]
            missing = [s.upper() for s in ("a", "b") if s not in hits]
            msg = f"Layer '{r['a']}': " + (", ".join(where) if where else "in no open graph")
            if missing:
                msg += f" ({' and '.join(missing)} not open or without this node)"
            self.statusBar().showMessage(msg, 8000)
        return hits

    def follow_node(self, tab, index: int) -> None:
        """A node picked in A's or B's graph: select its layer in the dock and its partner in the other
        graph (not centred there, so the graph the user looks at stays put)."""
        if self._following or index is None or index < 0:
            return
        side = self._side_of(tab)
        ov = self.side_overlay(side) if side is not None and self.tab_for_side(side) is tab else None
        if ov is None or not 0 <= index < ov.n_nodes or int(ov.layer[index]) < 0:
            return
        k = int(ov.layer[index])
        self._following = True
        try:
            self.parity.layers.select_layer(k, emit=False)
            self.parity._mark_depth(k)
            other = "b" if side == "a" else "a"
            ov2 = self.side_overlay(other)
            node = ov2.node_of_layer.get(k, -1) if ov2 is not None else -1
            if node >= 0:
                self.tab_for_side(other).canvas_call("select", node, True)
        finally:
            self._following = False

    def layer_menu(self, tab, node: int):
        """The context menu of node ``node`` of ``tab`` when the node is a layer of the per-layer result (A's
        or B's graph): show its tensors, copy its names in both models, reduce to a minimal repro. None
        when the node is no layer."""
        from PySide6.QtWidgets import QMenu

        side = self._side_of(tab)
        ov = self.side_overlay(side) if side is not None and self.tab_for_side(side) is tab else None
        if ov is None or not 0 <= node < ov.n_nodes or int(ov.layer[node]) < 0:
            return None
        k = int(ov.layer[node])
        lv = self.parity.layers
        r = lv._by_index.get(k) or {}
        menu = QMenu(self)
        menu.setObjectName("layerMenu")
        head = menu.addAction(f"Layer '{r.get('a', k)}'")
        head.setEnabled(False)
        menu.addAction("Show its &tensors", lambda: (self.parity_dock.show(), self.parity_dock.raise_(),
                                                     lv.select_layer(k)))
        menu.addAction("&Copy names in both models", lambda: lv.tensors.copy_names(k))
        red = menu.addAction("&Reduce to a minimal repro", lambda: (self.parity_dock.show(), lv.tensors.reduce(layer=k)))
        red.setEnabled(lv.tensors.can_reduce())
        return menu

    def open_compared_b(self):
        """Open model B of the per-layer result in a tab (the overlay follows once it is drawn)."""
        res = self.parity.result
        if not res:
            return None
        trust = bool((self.parity.params or {}).get("trust"))
        return self.open_path(res["b"]["path"], trust=trust)

    # -- the compare view: A and B side by side, in step ------------------------------------------------
    def open_compare_view(self):
        """Show the compare view (A ⇄ B) of the last per-layer result: opens A's and B's tabs where they are
        not open, and the view once both are drawn. Returns the view, or None while it waits for them (or
        when there is no per-layer result)."""
        res = self.layer_result()
        if res is None:
            self.show_notice("Run a per-layer comparison first (Model ▸ Compare with…, Per layer): the view "
                             "follows its layer pairs.", "info")
            return None
        self._compare_wanted = True
        self._compare_opened = set()
        return self.refresh_compare_view()

    def _compare_parts(self, res: dict) -> tuple | None:
        """(packs, Correspondence, pairings) of the result on the open graphs (made once per result and graphs)."""
        from ..graph_view.overlay import Pairing
        from ..panels.parity import nodes_for_layers
        from ..panels.parity_compare import Correspondence

        ovs = {s: self.side_overlay(s) for s in ("a", "b")}
        if any(ov is None for ov in ovs.values()):
            return None
        packs = {s: self.tab_for_side(s).doc.pack for s in ("a", "b")}
        key = (id(res), id(packs["a"]), id(packs["b"]))
        if self._compare_cache is not None and self._compare_cache[0] == key:
            return self._compare_cache[1]
        corr = Correspondence({s: packs[s].n_nodes for s in packs}, {s: ovs[s].node_of_layer for s in ovs})
        methods = {int(r["index"]): str(r.get("method") or "") for r in res["layers"]}
        un = res.get("unmatched") or {}
        pairings = {}
        for s in ("a", "b"):
            names = list(un.get(s) or [])
            nodes = nodes_for_layers(packs[s], [""] * len(names), names) if names else []
            pairings[s] = Pairing(packs[s].n_nodes, ovs[s].node_of_layer, methods, nodes)
        parts = (packs, corr, pairings)
        self._compare_cache = (key, parts)
        return parts

    def refresh_compare_view(self):
        """Bring the compare view up to date with the per-layer result, its overlay and the open graphs (made
        when it was asked for and both graphs are drawn)."""
        view = self.compare_view
        res = self.layer_result()
        if res is None or (view is None and not self._compare_wanted):
            return view
        missing = [s for s in ("a", "b") if self.tab_for_side(s) is None]
        if missing:
            if self._compare_wanted and not self.parity.running:
                trust = bool((self.parity.params or {}).get("trust"))
                for s in missing:
                    path = os.path.abspath(res[s]["path"])
                    if path not in self._compare_opened:
                        self._compare_opened.add(path)
                        self.open_path(path, trust=trust)
            return view
        parts = self._compare_parts(res)
        if parts is None:
            return view
        packs, corr, pairings = parts
        if view is None:
            from ..panels.parity_compare import CompareView

            view = self.compare_view = CompareView(self.tabs)
            view.compareAgainRequested.connect(self.compare_again)
            view.runRequested.connect(self._compare_view_rerun)
            view.cancelRequested.connect(self.parity.cancel)
            view.layerPicked.connect(self._compare_layer_picked)
            view.nodePicked.connect(self._compare_node_picked)
            view.destroyed.connect(lambda *_: setattr(self, "compare_view", None))
            i = self.tabs.addTab(view, "A ⇄ B")
            self.tabs.setTabToolTip(i, "Model A and model B side by side, in step through the layer pairs")
        on = self.parity.layers.overlay_on and not self.parity.running
        ovs = {s: self.side_overlay(s) if on else None for s in ("a", "b")}
        for ov in ovs.values():
            if ov is not None:
                ov.set_threshold(self.parity.layers.threshold)
        view.set_models(packs, corr, res, overlays=ovs, pairings=pairings)
        view.set_settings(self.parity.params)
        if self._compare_wanted:
            self._compare_wanted = False
            self.pages.setCurrentWidget(self.tabs)
            self.tabs.setCurrentWidget(view)
            k = self.parity.layers.selected_layer()
            if k >= 0:                    # the pair the dock shows, in both panes (centred once drawn)
                view.select_layer(k)
        return view

    def compare_again(self):
        """The Compare dialog for the compare view's two models with every setting of the last run (devices,
        inputs, tolerance, seed, samples), per layer; the comparison runs when it is accepted."""
        res = self.layer_result() or self.parity.result
        if not res:
            return self.compare_with(per_layer=True)
        dlg = self.compare_with(res["b"]["path"], a_path=res["a"]["path"], per_layer=True)
        if dlg is not None and self.parity.params:
            dlg.set_params(dict(self.parity.params, per_layer=True))
        return dlg

    def _compare_view_rerun(self):
        """Run again from the compare view: the same settings, per layer."""
        if not self.parity.params:
            return None
        return self.parity.rerun() if self.parity.params.get("per_layer") else self.parity.find_divergence()

    def _compare_view_running(self, job) -> None:
        """While a comparison of the compare view's models runs, the view shows its progress and Cancel."""
        view = self.compare_view
        if view is None:
            return
        res = self.layer_result()
        mine = res is None or {os.path.abspath(job.params.get("a", "")), os.path.abspath(job.params.get("b", ""))} == \
            {os.path.abspath(res["a"]["path"]), os.path.abspath(res["b"]["path"])}
        if not mine:
            return
        view.set_running(True, None, "starting…")
        job.progress.connect(lambda f, m: view.set_running(True, f, m) if self.compare_view is view else None)
        job.ended.connect(lambda: view.set_running(False) if self.compare_view is view else None)

    def _compare_layer_picked(self, k: int) -> None:
        self._following = True
        try:
            self.parity.layers.select_layer(k, emit=False)
            self.parity._mark_depth(k)
        finally:
            self._following = False

    def _compare_node_picked(self, side: str, node: int) -> None:
        tab = self.tab_for_side(side)
        if tab is not None and tab.doc is not None and node >= 0:
            self.inspector.show_node(tab.doc, node)

    def go_to_first_divergence(self) -> bool:
        self.parity_dock.show()
        self.parity_dock.raise_()
        return self.parity.layers.go_to_first()


class _NodeMenu(QObject):
    """Opens a graph's node context menu (the window's :meth:`ParityFeature.layer_menu`) on a right click."""

    def __init__(self, window, tab, canvas):
        super().__init__(canvas)
        self.window, self.tab, self.canvas = window, tab, canvas
        canvas.canvas.viewport().installEventFilter(self)

    def eventFilter(self, obj, ev) -> bool:
        if ev.type() != QEvent.Type.ContextMenu:
            return False
        kind, i = self.canvas.hit(self.canvas.canvas.mapToScene(ev.pos()))
        menu = self.window.layer_menu(self.tab, i) if kind == "node" else None
        if menu is None:
            return False
        self.canvas.select(i, False)  # the node's layer becomes the selected pair (the dock follows)
        menu.popup(ev.globalPos())
        return True
