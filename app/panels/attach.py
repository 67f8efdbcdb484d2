""""Attach architecture…": build a graph from a weights-only checkpoint with the user's model class."""
from __future__ import annotations

import json
from typing import Any

from PySide6.QtWidgets import (QDialog, QDialogButtonBox, QFormLayout, QLabel, QLineEdit, QMessageBox,
                               QPlainTextEdit, QVBoxLayout, QWidget)

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
        self.spec.setPlaceholderText("package.module:ClassName")
        self.kwargs = QPlainTextEdit(self)
        self.kwargs.setPlaceholderText('{"num_classes": 10}')
        self.kwargs.setMaximumHeight(90)
        self.shapes = QLineEdit(self)
        self.shapes.setPlaceholderText("1,3,224,224  (several inputs: separate with ;)")
        if settings is not None:
            self.spec.setText(str(settings.value("attach/spec", "") or ""))
            self.kwargs.setPlainText(str(settings.value("attach/kwargs", "") or ""))
            self.shapes.setText(str(settings.value("attach/shapes", "") or ""))
        form.addRow("Model class", self.spec)
        form.addRow("Keyword arguments", self.kwargs)
        form.addRow("Input shapes", self.shapes)
        lay.addLayout(form)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel, self)
        buttons.button(QDialogButtonBox.StandardButton.Ok).setText("Attach and open")
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        lay.addWidget(buttons)

    def params(self) -> dict[str, Any]:
        """The ``attach_architecture`` task's params; raises ValueError with a one-line reason."""
        spec = self.spec.text().strip()
        if ":" not in spec or not spec.split(":", 1)[1]:
            raise ValueError("the model class must be written package.module:ClassName")
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
        return {"path": self.path, "spec": spec, "kwargs": kwargs, "input_shapes": shapes}

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
