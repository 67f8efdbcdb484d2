"""Structural diff in the window: Model ▸ Structural diff…, the job, the list in its dock, and the marks on
the open graphs of A and B (selection follows between the list and both graphs).

A mixin of :class:`app.main_window.MainWindow`, placed before :class:`~app.features.parity.ParityFeature`:
it extends ``apply_overlays`` and ``follow_node`` (the parity error overlay keeps a graph it is painted on;
the diff's marks go on the others) without changing them."""
from __future__ import annotations

import os

from PySide6.QtCore import Qt


class StructDiffFeature:
    def _setup_struct_diff(self) -> None:
        """The dock, its panel and the action (called once by the window, before its menus are built)."""
        from ..panels.struct_diff import StructDiffPanel

        self.struct_diff = StructDiffPanel(self)
        self.struct_diff_dock = self._dock("Structural diff", "struct_diff", self.struct_diff,
                                           Qt.DockWidgetArea.BottomDockWidgetArea)
        # beside Jobs and Parity, as a tab (the window tabifies Parity with Jobs after this)
        self.tabifyDockWidget(self.jobs_dock, self.struct_diff_dock)
        self.struct_diff_dialog = None
        self._diff_overlays: dict[tuple[str, int], object] = {}
        self._diff_overlay_result: dict | None = None
        self._diff_following = False
        self.struct_diff.entrySelected.connect(self.select_diff_entry)
        self.struct_diff.marksChanged.connect(self.apply_overlays)
        self.act_struct_diff = self._action("Structural d&iff…", self.struct_diff_with, "Ctrl+Shift+I",
                                            "List the nodes added, removed or changed between two models, "
                                            "without running them")

    # -- starting --------------------------------------------------------------------------------------
    def struct_diff_with(self, b_path: str | None = None):
        """Open the dialog with the current tab as A (``b_path`` as B when given); the diff runs when it is
        accepted. Returns the (non-modal) dialog, or None with no model open."""
        from ..panels.struct_diff import StructDiffDialog

        cur = self.current_tab()
        if cur is None:
            self.show_notice("Open a model first; it will be model A of the diff.", "info")
            return None
        tabs = [t for t in self.model_tabs() if t.state != "failed"]
        dlg = StructDiffDialog([(f"{t.title} — {t.path}", t.path) for t in tabs], cur.path, parent=self,
                               start_dir=str(self.settings.value("last_dir", "") or os.getcwd()))
        dlg.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        if b_path:
            dlg.set_b(b_path)
        self.struct_diff_dialog = dlg
        dlg.destroyed.connect(lambda *_: setattr(self, "struct_diff_dialog", None))

        def accepted() -> None:
            a, b = dlg.path_a(), dlg.path_b()
            trust = any(t.trust for t in self.model_tabs() if t.path in (a, b))
            self.run_struct_diff(a, b, trust=trust)

        dlg.accepted.connect(accepted)
        dlg.open()
        return dlg

    def run_struct_diff(self, a: str, b: str, *, trust: bool = False):
        """Run the ``struct_diff`` task on ``a`` and ``b`` and show it in the dock (raised). Returns the QtJob."""
        from converters.jobs.protocol import StructDiffParams

        params = StructDiffParams(os.path.abspath(a), os.path.abspath(b), trust=trust).to_dict()
        job = self.jobs.run("struct_diff", params, title=f"structural diff {os.path.basename(a.rstrip(os.sep))} ↔ "
                                                         f"{os.path.basename(b.rstrip(os.sep))}")
        self.struct_diff_dock.show()
        self.struct_diff_dock.raise_()
        if self.struct_diff_dock.height() < 240 and not self.struct_diff_dock.isFloating():
            self.resizeDocks([self.struct_diff_dock], [min(320, int(self.height() * 0.4))], Qt.Orientation.Vertical)
        self.struct_diff.watch(job)
        return job

    # -- the graphs ------------------------------------------------------------------------------------
    def diff_result(self) -> dict | None:
        return self.struct_diff.result

    def diff_tab(self, side: str):
        """The open, drawn tab of model A or B of the diff (None when not open)."""
        res = self.diff_result()
        if res is None:
            return None
        path = os.path.abspath(res[side])
        for tab in self.model_tabs():
            if (os.path.abspath(tab.path) == path and tab.doc is not None and tab.doc.pack is not None
                    and hasattr(tab.canvas, "set_overlay")):
                return tab
        return None

    def diff_overlay(self, side: str):
        """The :class:`~app.panels.struct_diff.DiffOverlay` of side ``"a"`` or ``"b"`` on its open graph
        (made once per result and graph), or None."""
        res = self.diff_result()
        tab = self.diff_tab(side) if res is not None else None
        if tab is None:
            return None
        if self._diff_overlay_result is not res:
            self._diff_overlays.clear()
            self._diff_overlay_result = res
        pack = tab.doc.pack
        key = (side, id(pack))
        ov = self._diff_overlays.get(key)
        if ov is None or ov.n_nodes != pack.n_nodes:
            from ..panels.parity import nodes_for_layers
            from ..panels.struct_diff import DiffOverlay

            entries = res.get("entries") or []
            if res.get("entries") and entries[0].get("kind") == "weight":
                return None  # weights-only files: nothing to mark on a graph
            names = [e.get(side) or "" for e in entries]
            values = [e.get(f"value_{side}") or "" for e in entries]
            idx = nodes_for_layers(pack, names, values)
            for k, (n, v) in enumerate(zip(names, values)):
                if not n and not v:
                    idx[k] = -1  # the entry has no node on this side (added or removed)
            ov = DiffOverlay(pack.n_nodes, idx, [e.get("status", "same") for e in entries], side=side)
            self._diff_overlays[key] = ov
        return ov

    def apply_overlays(self) -> None:
        """The parity overlay first (its own rules), then the diff's marks on A's and B's graphs where no
        error overlay is painted."""
        super().apply_overlays()  # type: ignore[misc]
        if not hasattr(self, "struct_diff"):
            return
        from ..panels.struct_diff import DiffOverlay, show_diff_legend

        on = self.struct_diff.mark.isChecked() and self.diff_result() is not None
        mine = {}
        if on:
            for side in ("a", "b"):
                tab = self.diff_tab(side)
                if tab is not None:
                    mine[id(tab)] = self.diff_overlay(side)
        for tab in self.model_tabs():
            canvas = tab.canvas
            if not hasattr(canvas, "set_overlay"):
                continue
            current = canvas.overlay
            if current is not None and not isinstance(current, DiffOverlay):
                show_diff_legend(canvas, None)
                continue  # the per-layer error overlay is shown there
            want = mine.get(id(tab))
            if want is not current:
                canvas.set_overlay(want)
            show_diff_legend(canvas, want)

    def select_diff_entry(self, k: int) -> dict[str, int]:
        """Select entry ``k`` of the diff in the open graphs of A and B (centred); the current tab becomes
        B's (else A's) unless it already shows one of them. Returns {side: node index}."""
        hits: dict[str, int] = {}
        res = self.diff_result()
        if res is None or not 0 <= k < len(res.get("entries") or []):
            return hits
        tabs = {}
        self._diff_following = True
        try:
            for side in ("a", "b"):
                ov = self.diff_overlay(side)
                node = ov.node_of_layer.get(int(k), -1) if ov is not None else -1
                tab = self.diff_tab(side)
                if tab is None:
                    continue
                if node >= 0:
                    tab.canvas_call("select", node)
                    hits[side], tabs[side] = node, tab
                else:
                    tab.canvas_call("select", -1, False)
            cur = self.current_tab()
            if tabs and cur not in tabs.values():
                self.tabs.setCurrentWidget(tabs.get("b") or tabs["a"])
            cur = self.current_tab()
            if cur is not None and cur.doc is not None and cur in tabs.values():
                self.inspector.show_node(cur.doc, hits["a" if tabs.get("a") is cur else "b"])
        finally:
            self._diff_following = False
        e = res["entries"][k]
        where = ", ".join(f"{s.upper()} node {e.get(s)}" for s in hits) or "in no open graph"
        self.statusBar().showMessage(f"{e.get('status')}: {where}", 8000)
        return hits

    def follow_node(self, tab, index: int) -> None:
        """A node picked in a graph: the parity dock follows (its own rules); when the graph is A's or B's of
        the diff, the list selects its entry and the other graph its partner (not centred)."""
        super().follow_node(tab, index)  # type: ignore[misc]
        if getattr(self, "_diff_following", True) or index is None or index < 0 or self.diff_result() is None:
            return
        side = next((s for s in ("a", "b") if self.diff_tab(s) is tab), None)
        ov = self.diff_overlay(side) if side is not None else None
        if ov is None or not 0 <= index < ov.n_nodes or int(ov.layer[index]) < 0:
            return
        k = int(ov.layer[index])
        self._diff_following = True
        try:
            self.struct_diff.select_entry(k, emit=False)
            other = "b" if side == "a" else "a"
            ov2 = self.diff_overlay(other)
            node = ov2.node_of_layer.get(k, -1) if ov2 is not None else -1
            if node >= 0:
                self.diff_tab(other).canvas_call("select", node, False)
        finally:
            self._diff_following = False
