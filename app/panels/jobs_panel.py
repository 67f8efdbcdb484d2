"""Jobs panel: every job this window started, running or finished, with progress, Cancel, log and error.

A row's context menu keeps the job's files (Keep files: the window does not remove its folder, at exit
either), copies the folder's path and opens it."""
from __future__ import annotations

import os

from PySide6.QtCore import QSize, Qt, QUrl
from PySide6.QtGui import QDesktopServices, QFontDatabase, QGuiApplication
from PySide6.QtWidgets import (QDialog, QDialogButtonBox, QHBoxLayout, QHeaderView, QLabel, QMenu, QPlainTextEdit,
                               QProgressBar, QPushButton, QTreeWidget, QTreeWidgetItem, QVBoxLayout, QWidget)

from ..jobs import JobRegistry, QtJob, show_fraction

__all__ = ["JobsPanel", "LogDialog"]

STATE_TEXT = {"pending": "waiting", "running": "running", "done": "done", "failed": "failed",
              "cancelled": "cancelled"}


class LogDialog(QDialog):
    """The job's parameters, its error (if any) and its worker log (everything the task printed)."""

    def __init__(self, job: QtJob, parent: QWidget | None = None):
        super().__init__(parent)
        self.setWindowTitle(f"Job log: {job.title}")
        self.resize(820, 520)
        self.text = QPlainTextEdit(self)
        self.text.setReadOnly(True)
        self.text.setFont(QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont))
        head = [f"task: {job.task}", f"state: {STATE_TEXT.get(job.state, job.state)}"]
        if job.error:
            head.append(f"error ({job.error_kind}): {job.error}")
        if job.log_path:
            head.append(f"log file: {job.log_path}")
        body = job.log_text() or "(the worker printed nothing)"
        self.text.setPlainText("\n".join(head) + "\n\n" + body)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close, self)
        buttons.rejected.connect(self.reject)
        lay = QVBoxLayout(self)
        lay.addWidget(self.text)
        lay.addWidget(buttons)


class _Row:
    def __init__(self, panel: "JobsPanel", job: QtJob):
        self.job = job
        self.item = QTreeWidgetItem([job.title, "starting"])
        self.item.setToolTip(0, job.title)
        self.bar = QProgressBar()
        self.bar.setRange(0, 0)  # busy until the first fraction arrives
        self.bar.setTextVisible(False)
        self.bar.setMaximumHeight(14)
        self.cancel = QPushButton("Cancel")
        self.cancel.setToolTip("Stop this job's worker process")
        self.cancel.clicked.connect(job.cancel)
        self.log = QPushButton("Log")
        self.log.setToolTip("Show everything the worker printed")
        self.log.clicked.connect(lambda: panel.show_log(job))
        self.kept_in = ""   # the folder the user chose to keep
        job.progress.connect(self.on_progress)
        job.ended.connect(self.on_end)

    def on_progress(self, fraction, message: str) -> None:
        show_fraction(self.bar, fraction)
        if message:
            self.item.setText(1, message)
            self.item.setToolTip(1, message)

    def on_end(self) -> None:
        job = self.job
        self.bar.setRange(0, 1000)
        self.bar.setValue(1000 if job.state == "done" else self.bar.value())
        self.cancel.setEnabled(False)
        took = f" in {job.elapsed:.1f} s" if job.elapsed is not None else ""
        if job.state == "done":
            text = f"done{took}"
        elif job.state == "cancelled":
            text = "cancelled"
        else:
            text = f"failed: {job.error}"
        if self.kept_in:
            text += f" · files kept in {self.kept_in}"
        self.item.setText(1, text)
        self.item.setToolTip(1, text)


class JobsPanel(QWidget):
    """Lists the jobs of a :class:`JobRegistry`, newest first."""

    def __init__(self, registry: JobRegistry, parent: QWidget | None = None):
        super().__init__(parent)
        self.registry = registry
        self.tree = QTreeWidget(self)
        self.tree.setColumnCount(4)
        self.tree.setHeaderLabels(["Job", "Status", "Progress", ""])
        self.tree.setRootIsDecorated(False)
        h = self.tree.header()
        h.setSectionResizeMode(0, QHeaderView.ResizeMode.Interactive)
        h.setSectionResizeMode(1, QHeaderView.ResizeMode.Stretch)
        h.setSectionResizeMode(2, QHeaderView.ResizeMode.Fixed)
        h.setSectionResizeMode(3, QHeaderView.ResizeMode.ResizeToContents)
        h.setStretchLastSection(False)
        self.tree.setColumnWidth(0, 260)
        self.tree.setColumnWidth(2, 120)
        self.tree.itemDoubleClicked.connect(lambda it, _c: self.show_log(self.rows[id(it)].job))
        self.tree.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.tree.customContextMenuRequested.connect(self._context_menu)
        self.empty = QLabel("No jobs yet. Opening or converting a model runs a job in a worker process.", self)
        self.empty.setWordWrap(True)
        self.empty.setAlignment(Qt.AlignmentFlag.AlignCenter)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(self.empty)
        lay.addWidget(self.tree)
        self.tree.hide()
        self.rows: dict[int, _Row] = {}
        self.by_job: dict[int, _Row] = {}
        self.log_dialogs: list[LogDialog] = []
        registry.added.connect(self.add_job)
        for j in registry.jobs:
            self.add_job(j)

    def add_job(self, job: QtJob) -> None:
        row = _Row(self, job)
        self.tree.insertTopLevelItem(0, row.item)
        cell = QWidget()
        cl = QVBoxLayout(cell)
        cl.setContentsMargins(2, 0, 2, 0)
        cl.addWidget(row.bar, 0, Qt.AlignmentFlag.AlignVCenter)
        self.tree.setItemWidget(row.item, 2, cell)
        box = QWidget()
        bl = QHBoxLayout(box)
        bl.setContentsMargins(0, 0, 0, 0)
        bl.addWidget(row.cancel)
        bl.addWidget(row.log)
        self.tree.setItemWidget(row.item, 3, box)
        # rows must be as tall as their buttons, or the widgets overlap the next row
        row.item.setSizeHint(0, QSize(0, max(box.sizeHint().height(), 22) + 2))
        self.rows[id(row.item)] = row
        self.by_job[job.id] = row
        self.empty.hide()
        self.tree.show()

    def status_text(self, job: QtJob) -> str:
        """What the Status column shows for ``job``."""
        return self.by_job[job.id].item.text(1)

    def show_log(self, job: QtJob) -> LogDialog:
        dlg = LogDialog(job, self)
        dlg.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        self.log_dialogs = [d for d in self.log_dialogs if d.isVisible()] + [dlg]
        dlg.show()
        return dlg

    # -- a row's menu ------------------------------------------------------------------------------
    def menu_for(self, job: QtJob) -> QMenu:
        """The context menu of ``job``'s row: Keep files, Copy folder path, Open folder, Show log."""
        menu = QMenu(self)
        folder = self.registry.folder_of(job)
        there = bool(folder) and os.path.isdir(folder or "")
        keep = menu.addAction("Keep files" if not job.kept else "Files kept")
        keep.setToolTip("Leave this job's folder on disk when the window closes")
        keep.setEnabled(there and not job.kept)
        keep.triggered.connect(lambda: self.keep(job))
        copy = menu.addAction("Copy folder path")
        copy.setEnabled(there)
        copy.triggered.connect(lambda: QGuiApplication.clipboard().setText(folder or ""))
        show = menu.addAction("Open folder")
        show.setEnabled(there)
        show.triggered.connect(lambda: QDesktopServices.openUrl(QUrl.fromLocalFile(folder or "")))
        menu.addSeparator()
        menu.addAction("Show log").triggered.connect(lambda: self.show_log(job))
        return menu

    def keep(self, job: QtJob) -> str | None:
        """Keep ``job``'s files (the user's choice); its row says where they are."""
        folder = self.registry.keep(job)
        row = self.by_job.get(job.id)
        if row is not None and folder:
            row.kept_in = folder
            row.item.setToolTip(0, f"{job.title}\nfiles kept in {folder}")
            if not job.running:
                row.on_end()
        return folder

    def _context_menu(self, pos) -> None:
        item = self.tree.itemAt(pos)
        row = self.rows.get(id(item)) if item is not None else None
        if row is not None:
            self.menu_for(row.job).popup(self.tree.viewport().mapToGlobal(pos))
