"""One open model: its loading job (progress, Cancel), its error banner, then its graph or weights tree."""
from __future__ import annotations

import os
from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (QFrame, QHBoxLayout, QLabel, QProgressBar, QPushButton, QStackedWidget,
                               QStyle, QVBoxLayout, QWidget)

from converters.errors import ErrorKind
from ..jobs import JobRegistry, QtJob, show_fraction
from .doc import ModelDoc
from .weights_tree import WeightsTree

__all__ = ["ModelTab", "Banner"]


def graph_view_class():
    """The graph canvas class (imported on first use: it brings pyqtgraph's scene machinery)."""
    from ..graph_view import GraphView

    return GraphView


def _pass_drops_up(widget: QWidget) -> None:
    """Let file drops over ``widget`` reach the window: a graphics view accepts drags for its scene and
    would swallow them otherwise."""
    from PySide6.QtWidgets import QAbstractScrollArea

    for w in [widget] + widget.findChildren(QAbstractScrollArea):
        w.setAcceptDrops(False)
        if isinstance(w, QAbstractScrollArea):
            w.viewport().setAcceptDrops(False)


class Banner(QFrame):
    """A one-line message across the top of a tab with optional action buttons. Colours come from the
    palette (works in light and dark themes)."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("banner")
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.setAutoFillBackground(True)
        self.icon = QLabel(self)
        self.text = QLabel(self)
        self.text.setWordWrap(True)
        self.text.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.buttons = QHBoxLayout()
        lay = QHBoxLayout(self)
        lay.setContentsMargins(8, 6, 8, 6)
        lay.addWidget(self.icon, 0, Qt.AlignmentFlag.AlignTop)
        lay.addWidget(self.text, 1)
        lay.addLayout(self.buttons)
        self.hide()

    def show_message(self, text: str, kind: str = "error", actions: list[tuple[str, Any]] = ()) -> None:
        icon = {"error": QStyle.StandardPixmap.SP_MessageBoxCritical,
                "warning": QStyle.StandardPixmap.SP_MessageBoxWarning,
                "info": QStyle.StandardPixmap.SP_MessageBoxInformation}[kind]
        self.icon.setPixmap(self.style().standardIcon(icon).pixmap(20, 20))
        self.text.setText(text)
        self.setProperty("kind", kind)
        self.style().unpolish(self)
        self.style().polish(self)
        while self.buttons.count():
            w = self.buttons.takeAt(0).widget()
            if w is not None:
                w.deleteLater()
        for label, slot in actions:
            b = QPushButton(label, self)
            b.clicked.connect(slot)
            self.buttons.addWidget(b)
        self.show()

    def button(self, label: str) -> QPushButton | None:
        for i in range(self.buttons.count()):
            w = self.buttons.itemAt(i).widget()
            if isinstance(w, QPushButton) and w.text() == label and not w.isHidden():
                return w
        return None


class FileHandle(QLabel):
    """The model's file as something to drag: onto a convert target, or out to a file manager."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.path = ""
        self._press = None
        self.setCursor(Qt.CursorShape.OpenHandCursor)
        self.setToolTip("Drag this file onto a convert target, or out of the window to copy it")

    def set_path(self, path: str, detail: str = "") -> None:
        self.path = path
        name = os.path.basename(path.rstrip(os.sep)) or path
        self.setText(f"⠿ {name}  ·  {detail}" if detail else f"⠿ {name}")

    def mousePressEvent(self, e) -> None:
        if e.button() == Qt.MouseButton.LeftButton:
            self._press = e.position().toPoint()

    def mouseMoveEvent(self, e) -> None:
        from PySide6.QtGui import QDrag
        from PySide6.QtWidgets import QApplication

        if (self._press is not None and self.path and os.path.exists(self.path)
                and (e.position().toPoint() - self._press).manhattanLength() >= QApplication.startDragDistance()):
            from .convert import file_mime

            self._press = None
            drag = QDrag(self)
            drag.setMimeData(file_mime(self.path))
            drag.exec(Qt.DropAction.CopyAction)

    def mouseReleaseEvent(self, e) -> None:
        self._press = None


class ModelTab(QWidget):
    """A model file opened in a worker job.

    Signals: ``loaded()`` (``doc`` is set), ``failed(message, kind)``, ``nodeSelected(int)`` (-1 for
    none), ``weightSelected(name)``, ``drawn()`` (the graph, weights tree or error is on screen),
    ``attachRequested()``.
    """

    loaded = Signal()
    failed = Signal(str, str)
    nodeSelected = Signal(int)
    weightSelected = Signal(str)
    drawn = Signal()
    attachRequested = Signal()

    def __init__(self, path: str, registry: JobRegistry, *, trust: bool = False, origin: str = "",
                 parent: QWidget | None = None):
        super().__init__(parent)
        self.path = os.path.abspath(path)
        self.registry = registry
        self.trust = trust
        self.origin = origin          # e.g. "converted from model.pt2": shown in the tooltip
        self.doc: ModelDoc | None = None
        self.job: QtJob | None = None
        self._replaced: list[QtJob] = []   # earlier jobs of this tab whose folders the shown model may still read
        self.state = "new"            # new | loading | ready | failed
        self.error: tuple[str, str] | None = None
        self.canvas = None
        self.weights: WeightsTree | None = None
        self._last_task: tuple[str, dict] | None = None
        self._then_open: str | None = None

        self.banner = Banner(self)
        self.progress_row = QWidget(self)
        self.bar = QProgressBar(self.progress_row)
        self.bar.setRange(0, 0)
        self.bar.setMaximumWidth(360)
        self.progress_text = QLabel("", self.progress_row)
        self.cancel_button = QPushButton("Cancel", self.progress_row)
        self.cancel_button.clicked.connect(self.cancel)
        pl = QHBoxLayout(self.progress_row)
        pl.setContentsMargins(12, 12, 12, 12)
        pl.addWidget(self.bar, 1)
        pl.addWidget(self.progress_text, 2)
        pl.addWidget(self.cancel_button)

        self.handle = FileHandle(self)
        self.handle_row = QWidget(self)
        hl = QHBoxLayout(self.handle_row)
        hl.setContentsMargins(8, 2, 8, 2)
        hl.addWidget(self.handle)
        hl.addStretch(1)
        self.handle_row.hide()

        self.stack = QStackedWidget(self)
        self.placeholder = QLabel("", self.stack)
        self.placeholder.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.stack.addWidget(self.placeholder)

        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.setSpacing(0)
        lay.addWidget(self.banner)
        lay.addWidget(self.progress_row)
        lay.addWidget(self.handle_row)
        lay.addWidget(self.stack, 1)
        self.progress_row.hide()

    # -- title -------------------------------------------------------------------------------------------
    @property
    def title(self) -> str:
        return os.path.basename(self.path.rstrip(os.sep)) or self.path

    # -- loading -----------------------------------------------------------------------------------------
    def open(self, trust: bool | None = None) -> QtJob:
        """Start (or restart) loading the file in a worker."""
        if trust is not None:
            self.trust = trust
        from converters.jobs.protocol import OpenParams

        return self.run_task("open", OpenParams(self.path, trust=self.trust).to_dict(),
                             title=f"open {self.title}" + (" (trusted)" if self.trust else ""))

    def run_task(self, task: str, params: dict, *, title: str, then_open: str | None = None) -> QtJob:
        """Run a task whose result is an opened model (open, load, attach_architecture).

        ``then_open``: a file the task writes (e.g. the .pt2 that attach_architecture saves); once the
        task succeeds the tab opens that file with the open task instead, so it gets the full graph view
        and can be dragged out or converted.
        """
        if self.job is not None and self.job.running:
            self.job.cancel()
        if self.job is not None:  # the shown model's folder goes once the new one is shown (or at close)
            self._replaced.append(self.job)
        self._last_task = (task, params)
        self._then_open = then_open
        self.state = "loading"
        self.error = None
        self.banner.hide()
        self.bar.setRange(0, 0)
        self.progress_text.setText(f"Opening {self.path}…")
        self.cancel_button.setEnabled(True)
        self.progress_row.show()
        self.placeholder.setText("")
        self.stack.setCurrentWidget(self.placeholder)
        job = self.registry.run(task, params, title=title)
        self.job = job
        job.progress.connect(lambda f, m, j=job: self._on_progress(j, f, m))
        job.finished.connect(lambda r, j=job: self._on_finished(j, r))
        job.overview.connect(lambda d, j=job: self._on_overview(j, d))
        job.failed.connect(lambda m, k, j=job: self._on_failed(j, m, k))
        return job

    def retry(self, trust: bool | None = None) -> None:
        """Run the last task again (with ``trust`` changed when given)."""
        if self._last_task is not None:
            task, params = self._last_task
            params = dict(params)
            if trust is not None:
                self.trust = trust
                params["trust"] = trust
            self.run_task(task, params, title=f"{task} {self.title}" + (" (trusted)" if params.get("trust") else ""),
                          then_open=self._then_open)

    def cancel(self) -> None:
        if self.job is not None:
            self.cancel_button.setEnabled(False)
            self.progress_text.setText("Cancelling…")
            self.job.cancel()

    def _on_progress(self, job: QtJob, fraction, message: str) -> None:
        if job is not self.job:
            return
        show_fraction(self.bar, fraction)
        if message:
            self.progress_text.setText(message)

    def _on_failed(self, job: QtJob, message: str, kind: str) -> None:
        if job is not self.job:
            return
        self.progress_row.hide()
        self.state = "failed"
        self.error = (message, kind)
        if kind == ErrorKind.TRUST_REQUIRED:
            self.banner.show_message(message, "warning", [("Trust and open…", lambda: self.ask_trust(message))])
            self.placeholder.setText("This file can only be opened by running code stored in it.\n"
                                     "Open it only if you trust where it came from.")
        elif kind == ErrorKind.CANCELLED:
            self.banner.show_message(f"Opening {self.title} was cancelled.", "info", [("Open again", self.retry)])
        else:
            actions = [("Show log", self._show_log)] if kind == ErrorKind.WORKER_CRASHED else []
            self.banner.show_message(message, "error", actions + [("Retry", self.retry)])
        self.failed.emit(message, kind)
        self.drawn.emit()

    def ask_trust(self, reason: str):
        """Ask (window-modal, Cancel by default) before opening the file with its code allowed to run."""
        from .trust import TrustDialog

        dlg = TrustDialog(self.path, reason, lambda: self.retry(trust=True), self)
        self.trust_dialog = dlg
        dlg.open()
        return dlg

    def _show_log(self) -> None:
        from .jobs_panel import LogDialog

        if self.job is not None:
            dlg = LogDialog(self.job, self)
            dlg.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
            dlg.show()

    def _on_overview(self, job: QtJob, pack_dir: str) -> None:
        """Draw the structure-only pack of a big model while the worker finishes shapes and details."""
        if job is not self.job or self.doc is not None:
            return
        try:
            doc = ModelDoc(self.path, self.trust, {"pack_dir": pack_dir, "weights_only": False})
        except Exception:  # the full result follows anyway
            return
        if doc.weights_only or doc.pack is None:
            return
        self._show_graph(doc)
        self.progress_text.setText("Drawn the structure; reading shapes and details…")

    def _on_finished(self, job: QtJob, result: dict) -> None:
        if job is not self.job:
            return
        if self._then_open and os.path.exists(self._then_open):
            self.path, self._then_open = self._then_open, None
            self.open()
            return
        try:
            doc = ModelDoc(self.path, self.trust, result)
        except Exception as exc:  # a pack the window cannot read is an error for this tab, not a crash
            from converters.errors import one_line

            self._on_failed(job, f"{self.path}: the opened model could not be shown ({one_line(exc)})", "Error")
            return
        self.doc = doc
        self._release_replaced()
        self.progress_row.hide()
        self.state = "ready"
        self.handle.set_path(self.path, self._detail(doc))
        self.handle_row.setToolTip(self.path + (f"\n{self.origin}" if self.origin else ""))
        self.handle_row.show()
        warnings = doc.summary.get("warnings") or []
        if warnings:
            self.banner.show_message("; ".join(warnings[:3]), "warning")
        if doc.weights_only:
            self._show_weights(doc)
        else:
            self._show_graph(doc)
        self.loaded.emit()

    @staticmethod
    def _detail(doc: ModelDoc) -> str:
        s = doc.summary
        parts = [doc.format]
        if "node_count" in s and not doc.weights_only:
            parts.append(f"{int(s['node_count']):,} nodes")
        if "weight_count" in s:
            parts.append(f"{int(s['weight_count']):,} tensors")
        parts.append(f"{int(s.get('param_count') or 0):,} parameters")
        return "  ·  ".join(parts)

    # -- views -------------------------------------------------------------------------------------------
    def _show_weights(self, doc: ModelDoc) -> None:
        if self.weights is None:
            self.weights = WeightsTree(self.stack)
            self.weights.weightSelected.connect(self.weightSelected.emit)
            self.weights.attachRequested.connect(self.attachRequested.emit)
            self.stack.addWidget(self.weights)
        self.weights.set_weights(doc.weights or [])
        self.stack.setCurrentWidget(self.weights)
        self.drawn.emit()

    def _show_graph(self, doc: ModelDoc) -> None:
        cls = graph_view_class() if doc.pack is not None else None
        if cls is not None and isinstance(self.canvas, cls):
            # the full pack after the early overview: same graph, so the view keeps expansion and selection
            try:
                self.canvas.set_pack(doc.pack)
                return
            except Exception:  # the view is rebuilt below; the bug is logged, not dropped
                import logging

                logging.getLogger("tensorbridge.window").exception("updating the graph view with the full pack failed")
        if self.canvas is not None:
            self.stack.removeWidget(self.canvas)
            self.canvas.deleteLater()
        cls = graph_view_class() if doc.pack is not None else None
        if cls is not None:
            try:
                self.canvas = cls(self.stack)
                self.canvas.nodeSelected.connect(self.nodeSelected.emit)
                self.canvas.drawn.connect(self.drawn.emit)
                if hasattr(self.canvas, "layoutFailed"):
                    self.canvas.layoutFailed.connect(
                        lambda line: self.banner.show_message(f"The graph could not be laid out ({line}); the "
                                                              "window's log has the details.", "warning"))
                self.stack.addWidget(self.canvas)
                self.stack.setCurrentWidget(self.canvas)
                self.canvas.set_pack(doc.pack)
                _pass_drops_up(self.canvas)
                return
            except Exception as exc:  # a canvas bug must not lose the model: fall back to the node list
                from converters.errors import one_line

                if self.canvas is not None:
                    self.stack.removeWidget(self.canvas)
                    self.canvas.deleteLater()
                self.banner.show_message(f"The graph view failed ({one_line(exc)}); showing the node list.",
                                         "warning")
        from .node_list import NodeList

        self.canvas = NodeList(self.stack)
        self.canvas.nodeSelected.connect(self.nodeSelected.emit)
        self.canvas.drawn.connect(self.drawn.emit)
        self.stack.addWidget(self.canvas)
        self.stack.setCurrentWidget(self.canvas)
        self.canvas.set_doc(doc)

    # -- actions forwarded to the canvas -----------------------------------------------------------------
    def canvas_call(self, name: str, *args):
        fn = getattr(self.canvas, name, None) if self.canvas is not None else None
        return fn(*args) if fn is not None else None

    def shutdown(self) -> None:
        """Called when the tab closes: stop a running load, and remove the job folders that held its view pack
        (a job the user chose to keep stays)."""
        if self.job is not None and self.job.running:
            self.job.cancel()
        self._release_replaced()
        if self.job is not None:
            self.job.release()

    def _release_replaced(self) -> None:
        for job in self._replaced:
            job.release()
        self._replaced.clear()
