"""The main window: model tabs, inspector and jobs docks, convert targets, drag and drop.

Every file is opened by a worker job (:mod:`app.jobs`); the GUI thread only draws what jobs return.
The window is composition: it builds the widgets and docks and opens files into tabs; its menus and
actions (:mod:`app.window_actions`), settings and recent files (:mod:`app.window_settings`), tab bar
(:mod:`app.window_tabs`) and the features with their own actions, dialogs and jobs
(:mod:`app.features`: convert, parity, structural diff, attach, find, context menus) are mixed into :class:`MainWindow`.
"""
from __future__ import annotations

import os

from PySide6.QtCore import QSettings, Qt, Signal
from PySide6.QtWidgets import (QDockWidget, QFileDialog, QLabel, QListWidget, QMainWindow, QProgressBar,
                               QPushButton, QStackedWidget, QTabWidget, QVBoxLayout, QWidget)

from converters.formats.registry import file_filter

from .features import (AttachFeature, ContextMenuFeature, ConvertFeature, FindFeature, ParityFeature,
                       StructDiffFeature)
from .jobs import JobRegistry, QtJob
from .panels.convert import ConvertDialog, ConvertStrip, file_mime, local_paths
from .panels.inspector import Inspector
from .panels.jobs_panel import JobsPanel
from .panels.model_tab import Banner, ModelTab
from .panels.parity import ParityPanel
from .window_actions import WindowActions
from .window_settings import MAX_RECENT, WindowSettings
from .window_tabs import TabsFeature

__all__ = ["MainWindow", "MAX_RECENT", "FILE_FILTER"]

FILE_FILTER = file_filter()  # every registered format's extensions (converters.formats.registry)
INSPECTOR_WIDTH = 260     # the default layout leaves the graph at least 65 % of a 1280×800 window


class MainWindow(WindowActions, WindowSettings, TabsFeature, FindFeature, ContextMenuFeature, ConvertFeature,
                 StructDiffFeature, ParityFeature, AttachFeature, QMainWindow):
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
        self._setup_tabs()          # before the settings below: they go to the tab bar it sets
        self.tabs.setTabsClosable(True)
        self.tabs.setDocumentMode(True)
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
        self._setup_find()
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
        self._find_tab_changed()
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

    # -- view actions ------------------------------------------------------------------------------------
    def _canvas(self, name: str, *args):
        tab = self.current_tab()
        return tab.canvas_call(name, *args) if tab is not None else None

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
