"""View ▸ Export graph…: a file (PNG or SVG) and an extent (the whole graph or the visible part); the
picture is rendered in a background thread (see :mod:`.export`), the result reported on the GUI thread."""
from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (QDialog, QDialogButtonBox, QFileDialog, QFormLayout, QHBoxLayout, QLineEdit,
                               QMainWindow, QMessageBox, QPushButton, QRadioButton, QVBoxLayout, QWidget)

if TYPE_CHECKING:
    from .view import GraphView

__all__ = ["ExportDialog", "ask_export", "start_export"]

_FILTER = "PNG image (*.png);;SVG drawing (*.svg)"


class ExportDialog(QDialog):
    """The file and the extent of an export."""

    def __init__(self, parent: QWidget | None, start: str):
        super().__init__(parent)
        self.setWindowTitle("Export graph")
        lay = QVBoxLayout(self)
        form = QFormLayout()
        row = QHBoxLayout()
        self.path = QLineEdit(start, self)
        self.path.setMinimumWidth(360)
        browse = QPushButton("Browse…", self)
        browse.clicked.connect(self._browse)
        row.addWidget(self.path, 1)
        row.addWidget(browse)
        form.addRow("File (.png or .svg)", row)
        self.whole = QRadioButton("The whole graph, at a readable scale", self)
        self.visible = QRadioButton("The visible part, as on screen", self)
        self.whole.setChecked(True)
        ext = QVBoxLayout()
        ext.addWidget(self.whole)
        ext.addWidget(self.visible)
        form.addRow("Extent", ext)
        lay.addLayout(form)
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Save | QDialogButtonBox.StandardButton.Cancel,
                                        self)
        self.buttons.accepted.connect(self._accept)
        self.buttons.rejected.connect(self.reject)
        lay.addWidget(self.buttons)

    def _browse(self) -> None:
        path, _f = QFileDialog.getSaveFileName(self, "Export graph", self.path.text(), _FILTER)
        if path:
            self.path.setText(path)

    def _accept(self) -> None:
        path = self.path.text().strip()
        if os.path.splitext(path)[1].lower() not in (".png", ".svg"):
            QMessageBox.warning(self, "Export graph", "Choose a file name ending in .png or .svg.")
            return
        self.accept()


def _default_name(view: GraphView) -> str:
    """``<model>-graph.png`` beside the model's file (the home folder when it has none)."""
    path = str((getattr(view.pack, "summary", None) or {}).get("path") or "")
    if not path:
        return os.path.join(os.path.expanduser("~"), "graph.png")
    return os.path.join(os.path.dirname(path), os.path.splitext(os.path.basename(path))[0] + "-graph.png")


def ask_export(view: GraphView) -> None:
    """Ask for the file and the extent, then :func:`start_export`."""
    if view.export_snapshot(True) is None:
        QMessageBox.information(view, "Export graph", "Open a model first: there is no graph to export.")
        return
    dlg = ExportDialog(view.window(), _default_name(view))
    if dlg.exec() != QDialog.DialogCode.Accepted:
        return
    start_export(view, dlg.path.text().strip(), whole=dlg.whole.isChecked())


def start_export(view: GraphView, path: str, whole: bool = True) -> None:
    """Render in the background; ``view.exported(path, error)`` follows on the GUI thread, and the
    window's status bar (or a message box, for an error) says how it went."""
    from .export import render

    snap = view.export_snapshot(whole)
    if snap is None:
        return
    if view._export_pool is None:
        view._export_pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="graph-export")
        view.exported.connect(lambda p, err: _report(view, p, err))

    def work() -> None:
        try:
            render(snap, path)
            err = ""
        except (OSError, ValueError, MemoryError) as exc:
            err = str(exc) or f"cannot write {path}; choose another folder"
        try:
            view.exported.emit(path, err)
        except RuntimeError:          # the view closed meanwhile
            pass

    view._export_pool.submit(work)


def _report(view: GraphView, path: str, err: str) -> None:
    win = view.window()
    if err:
        # not exec(): the render ran in the background, nothing waits on this answer
        box = QMessageBox(QMessageBox.Icon.Warning, "Export graph", f"The graph was not exported: {err}.",
                          QMessageBox.StandardButton.Ok, win)
        box.setObjectName("exportError")
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose, True)
        box.open()
    elif isinstance(win, QMainWindow):
        win.statusBar().showMessage(f"Graph exported to {path}", 8000)
