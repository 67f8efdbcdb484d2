"""The main window: model tabs, inspector and jobs docks, convert targets, menus, drag and drop.

Every file is opened by a worker job (:mod:`app.jobs`); the GUI thread only draws what jobs return.
Settings (geometry, dock layout, recent files, last folder, theme) live in QSettings under the
organisation "Tensorbridge".

The features with their own actions, dialogs and jobs are controllers in :mod:`app.features` (convert,
parity, attach), mixed into :class:`MainWindow`. Why this module is still over 600 lines: what remains is
the window's own composition (the docks, menus and toolbar it builds, about 230 lines), opening files
into tabs, drag and drop, and the view actions that forward to the current tab's canvas; each of these
reads and sets the same widgets, so a split would only move the widgets' names into another file.
"""
from __future__ import annotations

import os

from PySide6.QtCore import QByteArray, QPoint, QSettings, Qt, Signal
from PySide6.QtGui import QAction, QActionGroup, QDrag, QKeySequence
from PySide6.QtWidgets import (QApplication, QDockWidget, QFileDialog, QLabel, QLineEdit, QListWidget,
                               QListWidgetItem, QMainWindow, QMessageBox, QProgressBar, QPushButton,
                               QStackedWidget, QTabBar, QTabWidget, QToolBar, QVBoxLayout, QWidget)

from converters.formats.registry import file_filter

from .features import AttachFeature, ConvertFeature, ParityFeature, StructDiffFeature
from .jobs import JobRegistry, QtJob
from .panels.convert import TARGET_LABELS, ConvertDialog, ConvertStrip, file_mime, local_paths
from .panels.inspector import Inspector
from .panels.jobs_panel import JobsPanel
from .panels.model_tab import Banner, ModelTab
from .panels.parity import ParityPanel

__all__ = ["MainWindow", "MAX_RECENT", "FILE_FILTER"]

MAX_RECENT = 10
FILE_FILTER = file_filter()  # every registered format's extensions (converters.formats.registry)


DOCK_LAYOUT_VERSION = 4  # inspector, jobs, parity, structural diff; 4: bottom docks hidden, strip in the toolbar
INSPECTOR_WIDTH = 260     # the default layout leaves the graph at least 65 % of a 1280×800 window


class DragTabBar(QTabBar):
    """Tab bar whose tabs can be dragged out as files (to a file manager or onto a convert target)."""

    def __init__(self, window: "MainWindow"):
        super().__init__()
        self._window = window
        self._press: QPoint | None = None
        self._press_index = -1

    def mousePressEvent(self, e) -> None:
        if e.button() == Qt.MouseButton.LeftButton:
            self._press = e.position().toPoint()
            self._press_index = self.tabAt(self._press)
        super().mousePressEvent(e)

    def mouseMoveEvent(self, e) -> None:
        if (self._press is not None and self._press_index >= 0 and e.buttons() & Qt.MouseButton.LeftButton
                and (e.position().toPoint() - self._press).manhattanLength() >= QApplication.startDragDistance()):
            mime = self._window.tab_mime_data(self._press_index)
            self._press = None
            if mime is not None:
                drag = QDrag(self)
                drag.setMimeData(mime)
                drag.exec(Qt.DropAction.CopyAction)
                return
        super().mouseMoveEvent(e)

    def mouseReleaseEvent(self, e) -> None:
        self._press = None
        super().mouseReleaseEvent(e)


class MainWindow(ConvertFeature, StructDiffFeature, ParityFeature, AttachFeature, QMainWindow):
    """``open_path(path)`` is what File ▸ Open, recent files, the command line and drops all call."""

    tabOpened = Signal(object)

    def __init__(self, settings: QSettings | None = None, parent: QWidget | None = None):
        super().__init__(parent)
        self.settings = settings if settings is not None else QSettings("Tensorbridge", "Tensorbridge")
        self.jobs = JobRegistry(self)
        self.setWindowTitle("Tensorbridge")
        self.setAcceptDrops(True)
        self.setDockNestingEnabled(True)
        self._icon()

        # central area: notice banner, welcome page or tabs (the convert strip sits in the toolbar)
        self.tabs = QTabWidget(self)
        self.tabs.setTabBar(DragTabBar(self))
        self.tabs.setTabsClosable(True)
        self.tabs.setDocumentMode(True)
        self.tabs.setElideMode(Qt.TextElideMode.ElideMiddle)
        self.tabs.tabCloseRequested.connect(self.close_tab)
        self.tabs.currentChanged.connect(self._current_changed)
        self.welcome = self._make_welcome()
        self.pages = QStackedWidget(self)
        self.pages.addWidget(self.welcome)
        self.pages.addWidget(self.tabs)
        self.notice = Banner(self)
        self.convert_strip = ConvertStrip(self)
        self.convert_strip.convertRequested.connect(self.convert_path)
        self.convert_strip.targetClicked.connect(self.convert_current)
        central = QWidget(self)
        cl = QVBoxLayout(central)
        cl.setContentsMargins(0, 0, 0, 0)
        cl.setSpacing(0)
        cl.addWidget(self.notice)
        cl.addWidget(self.pages, 1)
        self.setCentralWidget(central)

        # docks
        self.inspector = Inspector(self)
        self.inspector.clear()
        self.inspector.statsRequested.connect(self._request_stats)
        self.inspector_dock = self._dock("Inspector", "inspector", self.inspector, Qt.DockWidgetArea.RightDockWidgetArea)
        self.jobs_panel = JobsPanel(self.jobs, self)
        self.jobs_dock = self._dock("Jobs", "jobs", self.jobs_panel, Qt.DockWidgetArea.BottomDockWidgetArea)
        # parity: how two models' outputs differ (after a conversion, or Model ▸ Compare with…)
        self.parity = ParityPanel(self.jobs, self)
        self.parity.divergenceRequested.connect(self.show_divergence)
        self.parity_dock = self._dock("Parity", "parity", self.parity, Qt.DockWidgetArea.BottomDockWidgetArea)
        self._setup_layer_views()
        self._setup_struct_diff()
        self.tabifyDockWidget(self.jobs_dock, self.parity_dock)
        self.jobs_dock.raise_()
        # the bottom docks stay closed until there is something to show (a comparison raises Parity, a
        # structural diff its own dock; View ▸ Jobs lists the jobs, the status bar shows a conversion's
        # progress), so the graph gets the room by default
        for d in (self.jobs_dock, self.parity_dock, self.struct_diff_dock):
            d.hide()
        self._devices: list[dict] | None = None  # the devices task's answer, asked once per window
        self.compare_dialog = None
        self.resizeDocks([self.inspector_dock], [INSPECTOR_WIDTH], Qt.Orientation.Horizontal)
        self.resizeDocks([self.jobs_dock], [120], Qt.Orientation.Vertical)

        # status bar: the latest conversion's progress and Cancel
        self.job_bar = QProgressBar(self)
        self.job_bar.setMaximumWidth(200)
        self.job_bar.setMaximumHeight(16)
        self.job_cancel = QPushButton("Cancel", self)
        self.job_label = QLabel(self)
        for w in (self.job_label, self.job_bar, self.job_cancel):
            self.statusBar().addPermanentWidget(w)
            w.hide()
        self._status_job: QtJob | None = None
        self.job_cancel.clicked.connect(lambda: self._status_job and self._status_job.cancel())

        self._stats_cache: dict[tuple[str, str], dict] = {}
        self.netron_tabs: list = []
        self.convert_dialog: ConvertDialog | None = None
        self.attach_dialog = None
        self._make_actions()
        self._restore()
        self._update_actions()

    # -- construction ------------------------------------------------------------------------------------
    def _icon(self) -> None:
        from .launch import resource_path
        from PySide6.QtGui import QIcon

        icon = resource_path("icons", "tensorbridge.svg")
        if os.path.exists(icon):
            self.setWindowIcon(QIcon(icon))

    def _dock(self, title: str, name: str, widget: QWidget, area) -> QDockWidget:
        d = QDockWidget(title, self)
        d.setObjectName(f"dock_{name}")
        d.setWidget(widget)
        self.addDockWidget(area, d)
        return d

    def _make_welcome(self) -> QWidget:
        w = QWidget(self)
        w.setObjectName("welcome")
        lay = QVBoxLayout(w)
        lay.addStretch(1)
        title = QLabel("Tensorbridge", w)
        f = title.font()
        f.setPointSizeF(f.pointSizeF() * 1.8)
        f.setBold(True)
        title.setFont(f)
        title.setAlignment(Qt.AlignmentFlag.AlignCenter)
        hint = QLabel("Open a model with File ▸ Open (Ctrl+O), or drop a model file or a SavedModel folder "
                      "anywhere on this window.\nONNX, PyTorch (.pt2, .pt, .pth, .ckpt, .safetensors), "
                      "Keras (.keras, .h5), SavedModel and TFLite.", w)
        hint.setAlignment(Qt.AlignmentFlag.AlignCenter)
        hint.setWordWrap(True)
        self.recent_list = QListWidget(w)
        self.recent_list.setMaximumWidth(640)
        self.recent_list.setMaximumHeight(200)
        self.recent_list.itemActivated.connect(lambda it: self.open_path(it.data(Qt.ItemDataRole.UserRole)))
        self.recent_title = QLabel("Recent files", w)
        lay.addWidget(title)
        lay.addWidget(hint)
        lay.addSpacing(12)
        lay.addWidget(self.recent_title, 0, Qt.AlignmentFlag.AlignHCenter)
        lay.addWidget(self.recent_list, 0, Qt.AlignmentFlag.AlignHCenter)
        lay.addStretch(2)
        return w

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
        self.act_find = self._action("&Find…", self.focus_find, "Ctrl+F", "Find a node by name or op type")
        self.act_find_next = self._action("Find &next", self.find_next, ["F3", "Ctrl+G"], "Go to the next match")
        self.act_find_prev = self._action("Find pre&vious", self.find_previous, ["Shift+F3", "Ctrl+Shift+G"],
                                          "Go to the previous match")
        self.act_zoom_in = self._action("Zoom &in", lambda: self._canvas("zoom_in"), ["Ctrl+=", "Ctrl++"])
        self.act_zoom_out = self._action("Zoom &out", lambda: self._canvas("zoom_out"), "Ctrl+-")
        self.act_fit = self._action("&Fit to window", lambda: self._canvas("fit"), "Ctrl+0")
        self.act_expand = self._action("&Expand all groups", lambda: self._canvas("expand_all"))
        self.act_collapse = self._action("&Collapse all groups", lambda: self._canvas("collapse_all"))
        self.act_netron = self._action("View in &Netron", self.view_in_netron,
                                       tip="Show the same file in Netron's viewer")
        self.act_attach = self._action("&Attach architecture…", self.attach_architecture,
                                       tip="Build a graph from a weights-only checkpoint with your model class")
        self.act_about = self._action("&About Tensorbridge", self.about)
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

        vm = mb.addMenu("&View")
        for a in (self.act_find, self.act_find_next, self.act_find_prev, None, self.act_zoom_in, self.act_zoom_out,
                  self.act_fit, None,
                  self.act_expand, self.act_collapse, None, self.act_netron, None):
            vm.addSeparator() if a is None else vm.addAction(a)
        vm.addAction(self.inspector_dock.toggleViewAction())
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
        hm.addAction(self.act_about)

        tb = QToolBar("Main", self)
        tb.setObjectName("toolbar_main")
        tb.setMovable(False)
        tb.addAction(self.act_open)
        tb.addSeparator()
        self.find_edit = QLineEdit(self)
        self.find_edit.setPlaceholderText("Find node (Ctrl+F)")
        self.find_edit.setClearButtonEnabled(True)
        self.find_edit.setMaximumWidth(260)
        # Enter: the first match of new text, the next match of the same text (Shift+Enter: the previous)
        self.find_edit.returnPressed.connect(self._find_entered)
        tb.addWidget(self.find_edit)
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

    # -- settings ----------------------------------------------------------------------------------------
    def _restore(self) -> None:
        geo = self.settings.value("window/geometry")
        if isinstance(geo, (QByteArray, bytes)) and geo:
            self.restoreGeometry(geo)
        else:
            self.resize(1280, 800)
        state = self.settings.value("window/state")
        if isinstance(state, (QByteArray, bytes)) and state:
            # a layout saved before the current set of docks existed is ignored (Qt would place the new
            # docks oddly); bump DOCK_LAYOUT_VERSION whenever docks are added or removed
            self.restoreState(state, DOCK_LAYOUT_VERSION)

    def save_settings(self) -> None:
        self.settings.setValue("window/geometry", self.saveGeometry())
        self.settings.setValue("window/state", self.saveState(DOCK_LAYOUT_VERSION))
        self.settings.sync()

    def recent_files(self) -> list[str]:
        v = self.settings.value("recent", [])
        if isinstance(v, str):
            v = [v]
        return [str(p) for p in (v or [])]

    def _add_recent(self, path: str) -> None:
        items = [p for p in self.recent_files() if p != path]
        items.insert(0, path)
        self.settings.setValue("recent", items[:MAX_RECENT])
        self._rebuild_recent()

    def _rebuild_recent(self) -> None:
        self.recent_menu.clear()
        files = self.recent_files()
        self.recent_list.clear()
        for p in files:
            a = self.recent_menu.addAction(p)
            a.triggered.connect(lambda _c=False, path=p: self.open_path(path))
            it = QListWidgetItem(p, self.recent_list)
            it.setData(Qt.ItemDataRole.UserRole, p)
        self.recent_menu.setEnabled(bool(files))
        if files:
            self.recent_menu.addSeparator()
            self.recent_menu.addAction("Clear list", self._clear_recent)
        self.recent_list.setVisible(bool(files))
        self.recent_title.setVisible(bool(files))

    def _clear_recent(self) -> None:
        self.settings.setValue("recent", [])
        self._rebuild_recent()

    def set_theme(self, key: str) -> None:
        from .launch import apply_theme

        self.settings.setValue("theme", key)
        if key in self.theme_actions:
            self.theme_actions[key].setChecked(True)
        apply_theme(QApplication.instance(), key)

    # -- opening -----------------------------------------------------------------------------------------
    def open_dialog(self) -> None:
        start = str(self.settings.value("last_dir", "") or os.getcwd())
        paths, _ = QFileDialog.getOpenFileNames(self, "Open model", start, FILE_FILTER)
        for p in paths:
            if os.path.basename(p) in ("saved_model.pb", "saved_model.pbtxt"):
                p = os.path.dirname(p)
            self.open_path(p)

    def open_folder_dialog(self) -> None:
        start = str(self.settings.value("last_dir", "") or os.getcwd())
        d = QFileDialog.getExistingDirectory(self, "Open SavedModel folder", start)
        if d:
            self.open_path(d)

    def open_path(self, path: str, *, trust: bool = False, origin: str = "") -> ModelTab:
        """Open a model file or SavedModel folder in a new tab (or focus the tab that has it)."""
        path = os.path.abspath(os.path.expanduser(str(path)))
        for i in range(self.tabs.count()):
            t = self.tabs.widget(i)
            if isinstance(t, ModelTab) and t.path == path and t.state in ("loading", "ready"):
                self.tabs.setCurrentIndex(i)
                return t
        tab = ModelTab(path, self.jobs, trust=trust, origin=origin, parent=self.tabs)
        tab.nodeSelected.connect(lambda i, t=tab: self._node_selected(t, i))
        tab.weightSelected.connect(lambda n, t=tab: self._weight_selected(t, n))
        tab.loaded.connect(lambda t=tab: self._tab_loaded(t))
        tab.failed.connect(lambda m, k, t=tab: self._tab_failed(t, m, k))
        tab.attachRequested.connect(lambda t=tab: self.attach_architecture(t))
        idx = self.tabs.addTab(tab, tab.title)
        tip = path + (f"\n{origin}" if origin else "") + "\nDrag this tab to a convert target or a file manager"
        self.tabs.setTabToolTip(idx, tip)
        self.tabs.setCurrentIndex(idx)
        self.pages.setCurrentWidget(self.tabs)
        self.settings.setValue("last_dir", os.path.dirname(path))
        tab.open()
        self.tabOpened.emit(tab)
        self._update_actions()
        return tab

    def model_tabs(self) -> list[ModelTab]:
        return [self.tabs.widget(i) for i in range(self.tabs.count()) if isinstance(self.tabs.widget(i), ModelTab)]

    def current_tab(self) -> ModelTab | None:
        w = self.tabs.currentWidget()
        return w if isinstance(w, ModelTab) else None

    def close_current(self) -> None:
        if self.tabs.count():
            self.close_tab(self.tabs.currentIndex())

    def close_tab(self, index: int) -> None:
        w = self.tabs.widget(index)
        if w is None:
            return
        self.tabs.removeTab(index)
        if isinstance(w, ModelTab):
            w.shutdown()
        elif hasattr(w, "stop"):
            w.stop()
            if w in self.netron_tabs:
                self.netron_tabs.remove(w)
        w.deleteLater()
        if not self.tabs.count():
            self.pages.setCurrentWidget(self.welcome)
            self.inspector.clear()
        self._update_actions()

    def tab_mime_data(self, index: int):
        """Drag data for tab ``index``: its file as a file URL (None while it has no file)."""
        w = self.tabs.widget(index)
        path = getattr(w, "path", None)
        if not path or not os.path.exists(path):
            return None
        return file_mime(path)

    # -- drag and drop -----------------------------------------------------------------------------------
    def dragEnterEvent(self, e) -> None:
        if local_paths(e.mimeData()) and not self._own_drag(e):
            _accept_as_copy(e)
        else:
            e.ignore()

    def dragMoveEvent(self, e) -> None:
        if local_paths(e.mimeData()) and not self._own_drag(e):
            _accept_as_copy(e)
        else:
            e.ignore()

    def _own_drag(self, e) -> bool:
        # a tab dragged inside the window is meant for a convert target, not for re-opening
        src = e.source()
        return src is not None and (src is self.tabs.tabBar())

    def dropEvent(self, e) -> None:
        paths = local_paths(e.mimeData())
        if not paths or self._own_drag(e):
            e.ignore()
            return
        e.setDropAction(Qt.DropAction.CopyAction)
        e.accept()
        for p in paths:
            self.open_path(p)

    # -- tabs and inspector ------------------------------------------------------------------------------
    def _current_changed(self, _index: int) -> None:
        tab = self.current_tab()
        if tab is None:
            w = self.tabs.currentWidget()
            self.inspector.clear(getattr(w, "inspector_text", "Netron view.") if w is not None else "No model open.")
        elif tab.doc is not None:
            self.inspector.show_summary(tab.doc)
        elif tab.state == "failed" and tab.error:
            self.inspector.clear(f"Could not open {tab.title}.")
        else:
            self.inspector.clear(f"Opening {tab.title}…")
        self._update_actions()

    def _tab_loaded(self, tab: ModelTab) -> None:
        self._add_recent(tab.path)  # only files that opened: a refused or damaged one stays out of Recent
        self.apply_overlays()       # a per-layer result shown in the dock colours this graph too
        if tab is self.current_tab():
            self.inspector.show_summary(tab.doc)
        self.statusBar().showMessage(f"Opened {tab.path} ({tab.doc.format})", 5000)
        self._update_actions()

    def _tab_failed(self, tab: ModelTab, message: str, kind: str) -> None:
        if tab is self.current_tab():
            self.inspector.clear(f"Could not open {tab.title}.")
        self._update_actions()

    def _node_selected(self, tab: ModelTab, index: int) -> None:
        self.follow_node(tab, index)
        if tab is not self.current_tab() or tab.doc is None:
            return
        if index is None or index < 0:
            self.inspector.show_summary(tab.doc)
        else:
            self.inspector.show_node(tab.doc, index)

    def _weight_selected(self, tab: ModelTab, name: str) -> None:
        if tab is self.current_tab() and tab.doc is not None:
            self.inspector.show_weight(tab.doc, name)

    def _request_stats(self, name: str) -> None:
        tab = self.current_tab()
        if tab is None:
            return
        key = (tab.path, name)
        if key in self._stats_cache:
            self.inspector.set_stats(name, self._stats_cache[key])
            return
        from converters.jobs.protocol import TensorParams

        job = self.jobs.run("tensor", TensorParams(tab.path, name, trust=tab.trust).to_dict(),
                            title=f"statistics of {name}")

        def done(result: dict, key=key, name=name) -> None:
            self._stats_cache[key] = result
            self.inspector.set_stats(name, result)

        job.finished.connect(done)
        job.failed.connect(lambda m, _k, name=name: self.inspector.set_stats_error(name, m))

    def _update_actions(self) -> None:
        tab = self.current_tab()
        ready = tab is not None and tab.state == "ready"
        has_graph = ready and tab.doc is not None and not tab.doc.weights_only
        for a in (self.act_zoom_in, self.act_zoom_out, self.act_fit, self.act_expand, self.act_collapse):
            a.setEnabled(has_graph)
        self.find_edit.setEnabled(has_graph)
        for a in (self.act_find, self.act_find_next, self.act_find_prev):
            a.setEnabled(has_graph)
        self.act_netron.setEnabled(tab is not None)
        self.act_attach.setEnabled(ready and tab.doc is not None and tab.doc.weights_only)
        self.act_close.setEnabled(self.tabs.count() > 0)
        for a in self.convert_actions.values():
            a.setEnabled(tab is not None)
        self.act_compare.setEnabled(tab is not None)
        self.act_struct_diff.setEnabled(tab is not None)

    # -- view actions ------------------------------------------------------------------------------------
    def _canvas(self, name: str, *args):
        tab = self.current_tab()
        return tab.canvas_call(name, *args) if tab is not None else None

    def focus_find(self) -> None:
        self.find_edit.setFocus()
        self.find_edit.selectAll()

    def find(self, text: str) -> list[int]:
        """Find nodes in the current graph by name or op type; selects the first. Returns indices."""
        hits = list(self._canvas("find", text) or [])
        self._find_state = (self.current_tab(), text, hits, 0)
        if text:
            self._find_message()
        return hits

    def find_next(self, step: int = 1) -> int | None:
        """Select the next match of the last search (wrapping); returns its node index."""
        tab, text, hits, pos = getattr(self, "_find_state", (None, "", [], 0))
        if tab is not self.current_tab() or not hits:
            text = self.find_edit.text()
            if not text:
                return None
            hits = self.find(text)
            return hits[0] if hits else None
        pos = (pos + step) % len(hits)
        self._find_state = (tab, text, hits, pos)
        self._canvas("select", hits[pos])
        self._find_message()
        return hits[pos]

    def find_previous(self) -> int | None:
        return self.find_next(-1)

    def _find_entered(self) -> None:
        from PySide6.QtWidgets import QApplication

        text = self.find_edit.text()
        _tab, last, hits, _pos = getattr(self, "_find_state", (None, "", [], 0))
        if text and text == last and hits:
            back = QApplication.keyboardModifiers() & Qt.KeyboardModifier.ShiftModifier
            self.find_next(-1 if back else 1)
        else:
            self.find(text)

    def _find_message(self) -> None:
        _tab, text, hits, pos = self._find_state
        if hits:
            msg = f"match {pos + 1:,} of {len(hits):,} for “{text}” (F3: next, Shift+F3: previous)"
        else:
            msg = f"no match for “{text}”"
        self.statusBar().showMessage(msg, 8000)

    def view_in_netron(self):
        """Open the current model's file in Netron's viewer in a new tab; returns the tab (or None)."""
        tab = self.current_tab()
        if tab is None:
            return None
        from .netron_tab import NetronTab, webengine_available

        if not webengine_available():
            self.show_notice("Netron view needs QtWebEngine (PySide6-Addons), which is not installed.", "warning")
            return None
        try:
            nt = NetronTab(tab.path, self.tabs)
        except Exception as exc:
            from converters.errors import one_line

            self.show_notice(f"Netron could not start: {one_line(exc)}", "error")
            return None
        self.netron_tabs.append(nt)
        i = self.tabs.addTab(nt, f"Netron: {tab.title}")
        self.tabs.setTabToolTip(i, tab.path)
        self.tabs.setCurrentIndex(i)
        return nt

    def show_notice(self, text: str, kind: str = "error", actions=()) -> None:
        """A one-line message above the tabs (errors that belong to no tab)."""
        self.notice.show_message(text, kind, list(actions) + [("Dismiss", self.notice.hide)])












    # -- misc --------------------------------------------------------------------------------------------
    def about(self) -> None:
        QMessageBox.about(self, "About Tensorbridge",
                          "Tensorbridge: open, convert, run and compare PyTorch, TensorFlow/Keras, TFLite "
                          "and ONNX models.\nModels are opened and converted in separate worker processes.")

    def closeEvent(self, e) -> None:
        self.save_settings()
        self.jobs.close()
        for nt in list(self.netron_tabs):
            nt.stop()
        super().closeEvent(e)


def _accept_as_copy(e) -> None:
    """Accept a drag as a copy: answering the proposed action (often a move) lets a file manager delete
    the source after the drop."""
    e.setDropAction(Qt.DropAction.CopyAction)
    e.accept()
