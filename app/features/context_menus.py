"""Context menus of the graph and Ctrl+C: a right click on a node offers copying its name, op type, output
shapes and module path, collapsing its group, selecting its partner in the other model of a comparison or
structural diff, and the layer actions of a per-layer result; on a group: expand or collapse, copy its path;
on the background: fit, expand or collapse all. Ctrl+C in a graph copies the selected node's name.

A mixin of :class:`app.main_window.MainWindow`, placed before the parity and structural diff features: it
wraps their ``apply_overlays`` to keep its right-click handler ahead of the parity one on every canvas.
"""
from __future__ import annotations

from PySide6.QtCore import QEvent, QObject, Qt
from PySide6.QtWidgets import QApplication, QMenu

__all__ = ["ContextMenuFeature", "shape_text"]


def shape_text(v: dict) -> str:
    """``[1, 4] float32`` for a value ``{name, dtype, shape}`` (``?`` for what is not known)."""
    shape = v.get("shape")
    dims = "?" if shape is None else "[" + ", ".join("?" if d is None else str(d) for d in shape) + "]"
    return f"{dims} {v.get('dtype') or ''}".strip()


class _CanvasMenu(QObject):
    """Opens the window's context menu for whatever is under a right click on a graph view."""

    def __init__(self, window, tab, canvas):
        super().__init__(canvas)
        self.window, self.tab, self.canvas = window, tab, canvas

    def eventFilter(self, obj, ev) -> bool:
        if ev.type() != QEvent.Type.ContextMenu:
            return False
        menu = self.window.canvas_menu(self.tab, self.canvas.canvas.mapToScene(ev.pos()))
        if menu is None:
            return False
        menu.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        menu.popup(ev.globalPos())
        return True


class ContextMenuFeature:
    def _install_canvas_menu(self, tab) -> None:
        canvas = tab.canvas
        if canvas is None or not hasattr(canvas, "hit"):
            return
        handler = getattr(canvas, "_context_menu", None)
        if handler is None:
            handler = canvas._context_menu = _CanvasMenu(self, tab, canvas)
        # (re)installing puts it first: it runs before the parity handler a comparison installs
        canvas.canvas.viewport().installEventFilter(handler)

    def apply_overlays(self) -> None:
        super().apply_overlays()  # type: ignore[misc]
        for tab in self.model_tabs():
            self._install_canvas_menu(tab)

    # -- menus -----------------------------------------------------------------------------------------
    def canvas_menu(self, tab, scene_pos) -> QMenu | None:
        """The menu for a right click at ``scene_pos`` on ``tab``'s graph (a node, a group or the background)."""
        kind, idx = tab.canvas.hit(scene_pos)
        if kind == "node":
            tab.canvas.select(idx, False)
            return self.node_menu(tab, idx)
        if kind.startswith(("box", "frame")):
            return self.group_menu(tab, idx, expanded=kind.startswith("frame"))
        return self.background_menu(tab)

    def node_menu(self, tab, i: int) -> QMenu:
        doc = tab.doc
        d = doc.details(i)
        op, name = doc.node_label(i)
        menu = QMenu(self)
        menu.setObjectName("nodeMenu")
        head = menu.addAction(f"{op}: {name}" if name else op)
        head.setEnabled(False)
        scope = str(d.get("scope") or d.get("group") or "")
        shapes = "\n".join(shape_text(v) for v in d.get("outputs") or [])
        for label, text in (("Copy &name", name), ("Copy &op type", op), ("Copy output &shapes", shapes),
                            ("Copy &module path", scope)):
            a = menu.addAction(label, lambda t=text: QApplication.clipboard().setText(t))
            a.setEnabled(bool(text))
        pack = doc.pack
        g = int(pack.node_group[i]) if pack is not None else 0
        if g > 0:
            path = pack.group_paths[g]
            menu.addSeparator()
            menu.addAction(f"&Collapse group “{path}”", lambda: tab.canvas.collapse(g))
        partner = self.partner_of(tab, i)
        if partner is not None:
            other, node, what = partner
            menu.addSeparator()
            menu.addAction(f"Select in the &other model ({what})", lambda: self.select_in_tab(other, node))
        layer = self.layer_menu(tab, i)  # type: ignore[attr-defined]
        if layer is not None:
            layer.setParent(menu, layer.windowFlags())  # kept alive with this menu
            menu.addSeparator()
            for a in layer.actions():
                menu.addAction(a)
        return menu

    def group_menu(self, tab, g: int, *, expanded: bool) -> QMenu:
        path = tab.doc.pack.group_paths[g] if tab.doc.pack is not None else ""
        menu = QMenu(self)
        menu.setObjectName("groupMenu")
        if expanded:
            menu.addAction(f"&Collapse “{path}”", lambda: tab.canvas.collapse(g))
        else:
            menu.addAction(f"&Expand “{path}”", lambda: tab.canvas.expand(g))
        menu.addAction("Copy &module path", lambda: QApplication.clipboard().setText(path))
        self._background_actions(menu)
        return menu

    def background_menu(self, tab) -> QMenu:
        menu = QMenu(self)
        menu.setObjectName("canvasMenu")
        self._background_actions(menu)
        return menu

    def _background_actions(self, menu: QMenu) -> None:
        if menu.actions():
            menu.addSeparator()
        for a in (self.act_fit, self.act_expand, self.act_collapse):  # type: ignore[attr-defined]
            menu.addAction(a)
        menu.addSeparator()
        menu.addAction(self.act_export_graph)  # type: ignore[attr-defined]

    # -- the other model ---------------------------------------------------------------------------------
    def partner_of(self, tab, i: int):
        """(other tab, node, "comparison" | "structural diff") for node ``i`` of ``tab`` when a per-layer
        comparison or a structural diff pairs it with a node of another open graph; else None."""
        lookups = (("comparison", getattr(self, "_side_of", None), getattr(self, "side_overlay", None),
                    getattr(self, "tab_for_side", None)),
                   ("structural diff", self._diff_side, getattr(self, "diff_overlay", None),
                    getattr(self, "diff_tab", None)))
        for what, side_of, overlay, tab_for in lookups:
            if side_of is None or overlay is None or tab_for is None:
                continue
            side = side_of(tab)
            if side is None or tab_for(side) is not tab:
                continue
            ov = overlay(side)
            if ov is None or not 0 <= i < ov.n_nodes or int(ov.layer[i]) < 0:
                continue
            other = "b" if side == "a" else "a"
            ov2 = overlay(other)
            node = ov2.node_of_layer.get(int(ov.layer[i]), -1) if ov2 is not None else -1
            other_tab = tab_for(other)
            if node >= 0 and other_tab is not None and other_tab is not tab:
                return other_tab, int(node), what
        return None

    def _diff_side(self, tab) -> str | None:
        diff_tab = getattr(self, "diff_tab", None)
        if diff_tab is None or self.diff_result() is None:  # type: ignore[attr-defined]
            return None
        return next((s for s in ("a", "b") if diff_tab(s) is tab), None)

    def select_in_tab(self, tab, node: int) -> None:
        """Show ``tab`` and select and centre ``node`` in it."""
        self.tabs.setCurrentWidget(tab)  # type: ignore[attr-defined]
        tab.canvas_call("select", node, True)

    # -- Ctrl+C ------------------------------------------------------------------------------------------
    def copy_selection(self) -> str:
        """Copy the full name of the node selected in the current graph (or of the weight selected in a
        weights-only tab); returns what was copied ("" for nothing)."""
        tab = self.current_tab()  # type: ignore[attr-defined]
        name = ""
        if tab is not None and tab.weights is not None and tab.stack.currentWidget() is tab.weights:
            from ..panels.weights_tree import NAME_ROLE

            cur = tab.weights.view.currentIndex()
            item = tab.weights.model.itemFromIndex(cur.siblingAtColumn(0)) if cur.isValid() else None
            name = str(item.data(NAME_ROLE) or "") if item is not None else ""
        elif tab is not None and tab.doc is not None and tab.canvas is not None:
            sel = getattr(tab.canvas, "selected", -1)
            if isinstance(sel, int) and sel >= 0:
                name = tab.doc.node_label(sel)[1]
        if not name:
            self.statusBar().showMessage("Select a node in the graph (or a weight) to copy its name.", 5000)  # type: ignore
            return ""
        QApplication.clipboard().setText(name)
        self.statusBar().showMessage(f"Copied “{name}”", 3000)  # type: ignore[attr-defined]
        return name
