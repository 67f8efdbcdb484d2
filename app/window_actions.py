"""The window's actions, menus and toolbar, and which of them are enabled for the current tab.

A mixin of :class:`app.main_window.MainWindow`: the actions call the window's and its features' methods.
"""
from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction, QActionGroup, QKeySequence
from PySide6.QtWidgets import QMessageBox, QToolBar

from .panels.convert import TARGET_LABELS

__all__ = ["WindowActions"]


class WindowActions:
    def _action(self, text: str, slot, shortcut=None, tip: str = "") -> QAction:
        a = QAction(text, self)
        if shortcut is not None:
            if isinstance(shortcut, (list, tuple)):
                a.setShortcuts([QKeySequence(s) for s in shortcut])
            else:
                a.setShortcut(QKeySequence(shortcut))
        if tip:
            a.setStatusTip(tip)
        a.triggered.connect(lambda _checked=False: slot())
        self.addAction(a)  # shortcuts work even with the menu bar hidden
        return a

    def _make_actions(self) -> None:
        mb = self.menuBar()
        self.act_open = self._action("&Open…", self.open_dialog, QKeySequence.StandardKey.Open,
                                     "Open a model file")
        self.act_open_dir = self._action("Open &SavedModel folder…", self.open_folder_dialog)
        self.act_close = self._action("&Close tab", self.close_current, "Ctrl+W")
        self.act_quit = self._action("&Quit", self.close, "Ctrl+Q")
        self.act_find = self._action("&Find…", self.focus_find, "Ctrl+F", "Find a node by name, op type or module path")
        self.act_find_all = self._action("Find &all (list of matches)", self.find_all, "Ctrl+Shift+F",
                                         "List every match in the Find results dock")
        self.act_find_next = self._action("Find &next", self.find_next, ["F3", "Ctrl+G"], "Go to the next match")
        self.act_find_prev = self._action("Find pre&vious", self.find_previous, ["Shift+F3", "Ctrl+Shift+G"],
                                          "Go to the previous match")
        self.act_zoom_in = self._action("Zoom &in", lambda: self._canvas("zoom_in"), ["Ctrl+=", "Ctrl++"])
        self.act_zoom_out = self._action("Zoom &out", lambda: self._canvas("zoom_out"), "Ctrl+-")
        self.act_fit = self._action("&Fit to window", lambda: self._canvas("fit"), "Ctrl+0")
        self.act_export_graph = self._action("E&xport graph…", lambda: self._canvas("export_dialog"), None,
                                             "Save the graph as a PNG or SVG picture")
        self.act_expand = self._action("&Expand all groups", lambda: self._canvas("expand_all"))
        self.act_collapse = self._action("&Collapse all groups", lambda: self._canvas("collapse_all"))
        self.act_netron = self._action("View in &Netron", self.view_in_netron,
                                       tip="Show the same file in Netron's viewer")
        self.act_attach = self._action("&Attach architecture…", self.attach_architecture,
                                       tip="Build a graph from a weights-only checkpoint with your model class")
        self.act_about = self._action("&About Tensorbridge", self.about)
        self.act_shortcuts = self._action("&Keyboard shortcuts", self.show_shortcuts, "F1",
                                          "Every shortcut of the window")
        # Ctrl+C in a graph (a tab): other widgets (the find box, the inspector) keep their own copy
        self.act_copy = QAction("&Copy name", self)
        self.act_copy.setShortcut(QKeySequence.StandardKey.Copy)
        self.act_copy.setShortcutContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
        self.act_copy.setStatusTip("Copy the full name of the node selected in the graph, or of the weight selected")
        self.act_copy.triggered.connect(lambda _c=False: self.copy_selection())
        self.tabs.addAction(self.act_copy)
        self.act_compare = self._action("Compare &with…", self.compare_with, "Ctrl+Shift+K",
                                        "Run two models on the same inputs and compare their outputs")
        self.act_first_divergence = self._action("Go to first &divergence", self.go_to_first_divergence, "Ctrl+Shift+D",
                                                 "Select the first layer that is wrong itself in both graphs")
        self.act_first_divergence.setEnabled(False)
        self.act_overlay = self.parity.layers.overlay_action
        self.act_auto_parity = QAction("Check &parity after conversion", self, checkable=True)
        self.act_auto_parity.setChecked(self.auto_parity)
        self.act_auto_parity.setStatusTip("Compare each converted model with its source as soon as it opens")
        self.act_auto_parity.toggled.connect(lambda on: self.settings.setValue("parity/auto", bool(on)))

        fm = mb.addMenu("&File")
        fm.addAction(self.act_open)
        fm.addAction(self.act_open_dir)
        self.recent_menu = fm.addMenu("Open &Recent")
        fm.addSeparator()
        fm.addAction(self.act_close)
        fm.addSeparator()
        fm.addAction(self.act_quit)

        em = mb.addMenu("&Edit")
        em.addAction(self.act_copy)

        vm = mb.addMenu("&View")
        for a in (self.act_find, self.act_find_next, self.act_find_prev, self.act_find_all, None,
                  self.act_zoom_in, self.act_zoom_out, self.act_fit, self.act_export_graph, None,
                  self.act_expand, self.act_collapse, None, self.act_netron, None):
            vm.addSeparator() if a is None else vm.addAction(a)
        vm.addAction(self.inspector_dock.toggleViewAction())
        vm.addAction(self.find_dock.toggleViewAction())
        vm.addAction(self.jobs_dock.toggleViewAction())
        vm.addAction(self.parity_dock.toggleViewAction())
        vm.addAction(self.struct_diff_dock.toggleViewAction())
        vm.addAction(self.act_overlay)
        vm.addAction(self.act_first_divergence)
        vm.addAction(self.act_side_by_side)
        vm.addAction(self.act_auto_parity)
        theme = vm.addMenu("&Theme")
        group = QActionGroup(self)
        current = str(self.settings.value("theme", "system"))
        self.theme_actions: dict[str, QAction] = {}
        for key, label in (("system", "Follow the system"), ("light", "Light"), ("dark", "Dark")):
            a = QAction(label, self, checkable=True)
            a.setChecked(key == current)
            a.triggered.connect(lambda _c=False, k=key: self.set_theme(k))
            group.addAction(a)
            theme.addAction(a)
            self.theme_actions[key] = a

        mm = mb.addMenu("&Model")
        conv = mm.addMenu("&Convert to")
        self.convert_actions: dict[str, QAction] = {}
        for key, label in TARGET_LABELS.items():
            a = QAction(label, self)
            a.triggered.connect(lambda _c=False, k=key: self.convert_current(k))
            conv.addAction(a)
            self.convert_actions[key] = a
        mm.addAction(self.act_compare)
        mm.addAction(self.act_struct_diff)
        mm.addAction(self.act_attach)

        hm = mb.addMenu("&Help")
        hm.addAction(self.act_shortcuts)
        hm.addAction(self.act_about)

        tb = QToolBar("Main", self)
        tb.setObjectName("toolbar_main")
        tb.setMovable(False)
        tb.addAction(self.act_open)
        tb.addSeparator()
        tb.addWidget(self.find_edit)
        tb.addWidget(self.find_count)
        tb.addSeparator()
        for a in (self.act_zoom_out, self.act_fit, self.act_zoom_in):
            tb.addAction(a)
        tb.addSeparator()
        tb.addAction(self.act_netron)
        tb.addAction(self.act_compare)
        tb.addSeparator()
        self.convert_strip.layout().setContentsMargins(4, 0, 4, 0)  # no taller than the toolbar's buttons
        tb.addWidget(self.convert_strip)  # the drop targets, on the toolbar's row rather than under the graph
        self.addToolBar(tb)
        self._rebuild_recent()

    def _update_actions(self) -> None:
        tab = self.current_tab()
        ready = tab is not None and tab.state == "ready"
        has_graph = ready and tab.doc is not None and not tab.doc.weights_only
        for a in (self.act_zoom_in, self.act_zoom_out, self.act_fit, self.act_expand, self.act_collapse):
            a.setEnabled(has_graph)
        self.find_edit.setEnabled(has_graph)
        for a in (self.act_find, self.act_find_next, self.act_find_prev, self.act_find_all):
            a.setEnabled(has_graph)
        self.act_netron.setEnabled(tab is not None)
        self.act_attach.setEnabled(ready and tab.doc is not None and tab.doc.weights_only)
        self.act_close.setEnabled(self.tabs.count() > 0)
        for a in self.convert_actions.values():
            a.setEnabled(tab is not None)
        self.act_compare.setEnabled(tab is not None)
        self.act_struct_diff.setEnabled(tab is not None)

    def show_shortcuts(self):
        """Help ▸ Keyboard shortcuts: the list made from the window's actions."""
        from .features.shortcuts import ShortcutsDialog

        dlg = ShortcutsDialog(self)
        dlg.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dlg.show()
        return dlg

    def about(self) -> None:
        QMessageBox.about(self, "About Tensorbridge",
                          "Tensorbridge: open, convert, run and compare PyTorch, TensorFlow/Keras, TFLite "
                          "and ONNX models.\nModels are opened and converted in separate worker processes.")
