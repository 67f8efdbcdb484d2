""""Attach architecture…": build a graph from a weights-only checkpoint with the user's model class."""
from __future__ import annotations

import json
import os
from typing import Any

from PySide6.QtWidgets import (QDialog, QDialogButtonBox, QFormLayout, QHBoxLayout, QLabel, QLineEdit,
                               QMessageBox, QPlainTextEdit, QPushButton, QVBoxLayout, QWidget)

__all__ = ["AttachDialog", "parse_shapes"]


def parse_shapes(text: str) -> list[list[int]]:
    """``"1,3,224,224; 1,10"`` -> ``[[1,3,224,224],[1,10]]`` (one shape per model input, in order)."""
    shapes = []
    for part in text.replace("\n", ";").split(";"):
        part = part.strip().strip("()[]")
        if part:
            shapes.append([int(d) for d in part.replace("x", ",").replace("×", ",").split(",") if d.strip()])
    return shapes


class AttachDialog(QDialog):
    """Asks for ``package.module:Class``, keyword arguments (JSON) and input shapes."""

    def __init__(self, path: str, parent: QWidget | None = None, *, settings=None):
        super().__init__(parent)
        self.path = path
        self.settings = settings
        self.setWindowTitle("Attach architecture")
        self.resize(560, 320)
        lay = QVBoxLayout(self)
        note = QLabel("Builds the model class with these arguments, loads the checkpoint's weights into it "
                      "and exports its graph. <b>This imports and runs the class's code.</b>", self)
        note.setWordWrap(True)
        lay.addWidget(note)
        form = QFormLayout()
        self.spec = QLineEdit(self)
        self.spec.setPlaceholderText("package.module:ClassName  or  /path/to/model.py:ClassName")
        self.spec.setToolTip("A module importable from the checkpoint's folder or the folder Tensorbridge was "
                             "started in (package.module:ClassName), or a Python file (path/to/model.py:ClassName)")
        self.browse = QPushButton("Python file…", self)
        self.browse.clicked.connect(self._browse)
        spec_row = QHBoxLayout()
        spec_row.addWidget(self.spec, 1)
        spec_row.addWidget(self.browse)
        hint = QLabel("package.module:ClassName (found beside the checkpoint or where Tensorbridge was started), "
                      "or path/to/model.py:ClassName", self)
        hint.setWordWrap(True)
        hint.setEnabled(False)
        self.kwargs = QPlainTextEdit(self)
        self.kwargs.setPlaceholderText('{"num_classes": 10}')
        self.kwargs.setMaximumHeight(90)
        self.shapes = QLineEdit(self)
        self.shapes.setPlaceholderText("1,3,224,224  (several inputs: separate with ;)")
        if settings is not None:
            self.spec.setText(str(settings.value("attach/spec", "") or ""))
            self.kwargs.setPlainText(str(settings.value("attach/kwargs", "") or ""))
            self.shapes.setText(str(settings.value("attach/shapes", "") or ""))
        form.addRow("Model class", spec_row)
        form.addRow("", hint)
        self.hint = hint
        form.addRow("Keyword arguments", self.kwargs)
        form.addRow("Input shapes", self.shapes)
        lay.addLayout(form)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel, self)
        buttons.button(QDialogButtonBox.StandardButton.Ok).setText("Attach and open")
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        lay.addWidget(buttons)

    def _browse(self) -> None:
        from PySide6.QtWidgets import QFileDialog

        file, _ = QFileDialog.getOpenFileName(self, "Python file with the model class",
                                              os.path.dirname(os.path.abspath(self.path)), "Python (*.py)")
        if file:
            cls = self.spec.text().rpartition(":")[2]
            self.spec.setText(f"{file}:{cls}")
            self.spec.setFocus()
            self.spec.setCursorPosition(len(self.spec.text()))

    def params(self) -> dict[str, Any]:
        """The ``attach_architecture`` task's params (:class:`converters.jobs.protocol.AttachParams`) as the
        wire dict; raises ValueError with a one-line reason."""
        spec = self.spec.text().strip()
        if ":" not in spec or not spec.split(":", 1)[1]:
            raise ValueError("the model class must be written package.module:ClassName or path/to/model.py:ClassName")
        file, _, cls = spec.rpartition(":")
        if file.endswith(".py") and not os.path.isabs(file):  # relative to the checkpoint, as shown
            spec = f"{os.path.join(os.path.dirname(os.path.abspath(self.path)), file)}:{cls}"
        text = self.kwargs.toPlainText().strip()
        try:
            kwargs = json.loads(text) if text else {}
        except ValueError as exc:
            raise ValueError(f"keyword arguments are not valid JSON ({exc})") from None
        if not isinstance(kwargs, dict):
            raise ValueError("keyword arguments must be a JSON object, e.g. {\"num_classes\": 10}")
        try:
            shapes = parse_shapes(self.shapes.text())
        except ValueError:
            raise ValueError("input shapes must be integers like 1,3,224,224") from None
        if not shapes:
            raise ValueError("give at least one input shape, e.g. 1,3,224,224")
        from converters.jobs.protocol import AttachParams

        return AttachParams(self.path, spec, kwargs=kwargs, input_shapes=shapes).to_dict()

    def accept(self) -> None:
        try:
            self.params()
        except ValueError as exc:
            QMessageBox.warning(self, "Attach architecture", str(exc))
            return
        if self.settings is not None:
            self.settings.setValue("attach/spec", self.spec.text())
            self.settings.setValue("attach/kwargs", self.kwargs.toPlainText())
            self.settings.setValue("attach/shapes", self.shapes.text())
        super().accept()
