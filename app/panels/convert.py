"""Convert targets: drop a model file (or drag an open model's tab) onto ONNX / TensorFlow / Keras /
TFLite / PyTorch to plan and run a conversion.

The route is planned with :func:`converters.routes.plan`, which is pure Python (no framework import),
so the dialog opens instantly; the conversion itself is the worker task ``convert``.
"""
from __future__ import annotations

from typing import Any

from PySide6.QtCore import QMimeData, Qt, QUrl, Signal
from PySide6.QtWidgets import (QCheckBox, QDialog, QDialogButtonBox, QFormLayout, QFrame, QHBoxLayout,
                               QLabel, QLineEdit, QSpinBox, QVBoxLayout, QWidget)

__all__ = ["TARGETS", "ConvertStrip", "ConvertTarget", "ConvertDialog", "plan_route",
           "local_paths", "file_mime"]

# target id (the convert task's ``to``) -> label shown on the strip
TARGETS: list[tuple[str, str]] = [("onnx", "ONNX"), ("tf", "TensorFlow"), ("keras", "Keras"),
                                  ("tflite", "TFLite"), ("torch", "PyTorch")]
TARGET_LABELS = dict(TARGETS)


def plan_route(src: str, to: str) -> list[str]:
    """Human-readable hops from ``src`` (a path) to ``to``; raises TensorbridgeError when unreachable."""
    from converters.routes import plan

    route = plan(src, to)
    hops = getattr(route, "hops", route)
    out = []
    for h in hops:
        if isinstance(h, str):
            out.append(h)
        else:
            name = getattr(h, "name", None) or (h.get("name") if isinstance(h, dict) else str(h))
            desc = getattr(h, "description", None) or (h.get("description") if isinstance(h, dict) else None)
            out.append(f"{name}: {desc}" if desc else str(name))
    return out


def local_paths(mime: QMimeData) -> list[str]:
    """Local file or folder paths carried by a drag (file URLs)."""
    if not mime.hasUrls():
        return []
    return [u.toLocalFile() for u in mime.urls() if u.isLocalFile() and u.toLocalFile()]


def file_mime(path: str) -> QMimeData:
    """Drag data for a model file: a file URL (file managers copy it; our targets convert it)."""
    m = QMimeData()
    m.setUrls([QUrl.fromLocalFile(path)])
    return m


class ConvertTarget(QFrame):
    """One drop target. ``dropped(path, target)`` when a local file is dropped on it."""

    dropped = Signal(str, str)
    clicked = Signal(str)

    def __init__(self, target: str, label: str, parent: QWidget | None = None):
        super().__init__(parent)
        self.target = target
        self.setObjectName("convertTarget")
        self.setAcceptDrops(True)
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.setProperty("hover", False)
        self.label = QLabel(f"→ {label}", self)
        self.label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        lay = QHBoxLayout(self)
        lay.setContentsMargins(10, 4, 10, 4)
        lay.addWidget(self.label)
        self.setToolTip(f"Drop a model file or drag a tab here to convert it to {label}")
        self.setCursor(Qt.CursorShape.PointingHandCursor)

    def _set_hover(self, on: bool) -> None:
        self.setProperty("hover", on)
        self.style().unpolish(self)
        self.style().polish(self)

    def dragEnterEvent(self, e) -> None:
        if local_paths(e.mimeData()):
            self._set_hover(True)
            _accept_as_copy(e)
        else:
            e.ignore()

    def dragMoveEvent(self, e) -> None:
        if local_paths(e.mimeData()):
            _accept_as_copy(e)

    def dragLeaveEvent(self, e) -> None:
        self._set_hover(False)

    def dropEvent(self, e) -> None:
        self._set_hover(False)
        paths = local_paths(e.mimeData())
        if not paths:
            e.ignore()
            return
        e.setDropAction(Qt.DropAction.CopyAction)
        e.accept()
        for p in paths:
            self.dropped.emit(p, self.target)

    def mouseReleaseEvent(self, e) -> None:
        if e.button() == Qt.MouseButton.LeftButton and self.rect().contains(e.position().toPoint()):
            self.clicked.emit(self.target)
        super().mouseReleaseEvent(e)


class ConvertStrip(QWidget):
    """The row of targets. ``convertRequested(path, target)`` on a drop; ``targetClicked(target)`` on a
    click (the window converts the current tab's model)."""

    convertRequested = Signal(str, str)
    targetClicked = Signal(str)

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        lay = QHBoxLayout(self)
        lay.setContentsMargins(6, 2, 6, 4)
        title = QLabel("Convert:", self)
        lay.addWidget(title)
        self.targets: dict[str, ConvertTarget] = {}
        for key, label in TARGETS:
            t = ConvertTarget(key, label, self)
            t.dropped.connect(self.convertRequested.emit)
            t.clicked.connect(self.targetClicked.emit)
            self.targets[key] = t
            lay.addWidget(t, 1)


class ConvertDialog(QDialog):
    """Shows the planned route from ``src`` to ``target`` and the options; ``options()`` once accepted."""

    def __init__(self, src: str, target: str, parent: QWidget | None = None):
        super().__init__(parent)
        self.src, self.target = src, target
        label = TARGET_LABELS.get(target, target)
        self.setWindowTitle(f"Convert to {label}")
        lay = QVBoxLayout(self)
        lay.addWidget(QLabel(f"<b>{src}</b> → {label}", self))
        self.route_label = QLabel(self)
        self.route_label.setWordWrap(True)
        self.route_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        lay.addWidget(self.route_label)
        self.route: list[str] | None = None
        self.error: str | None = None
        try:
            self.route = plan_route(src, target)
            steps = "".join(f"<li>{h}</li>" for h in self.route)
            self.route_label.setText(f"Planned route ({len(self.route)} step{'s' * (len(self.route) != 1)}):"
                                     f"<ol>{steps}</ol>")
        except Exception as exc:  # TensorbridgeError: an unreachable pair; anything else: say it plainly
            from converters.errors import one_line

            self.error = one_line(exc)
            self.route_label.setText(f"Cannot convert: {self.error}")

        form = QFormLayout()
        self.opset = QSpinBox(self)
        self.opset.setRange(0, 25)
        self.opset.setSpecialValueText("default")
        self.opset.setValue(0)
        self.dynamic_batch = QCheckBox("make the batch dimension dynamic", self)
        self.fp16 = QCheckBox("also write float16 weights (TFLite)", self)
        self.keep_nchw = QCheckBox("keep NCHW input layout (TensorFlow targets)", self)
        self.input_shapes = QLineEdit(self)
        self.input_shapes.setPlaceholderText("e.g. input:1,3,224,224; mask:1,128 (only when the model has no fixed shapes)")
        self.output = QLineEdit(self)
        self.output.setPlaceholderText("next to the source, never overwriting anything")
        form.addRow("ONNX opset", self.opset)
        form.addRow("", self.dynamic_batch)
        form.addRow("", self.fp16)
        form.addRow("", self.keep_nchw)
        form.addRow("Input shapes", self.input_shapes)
        form.addRow("Output", self.output)
        self.fp16.setEnabled(target == "tflite")
        self.keep_nchw.setEnabled(target in ("tf", "keras", "tflite"))
        lay.addLayout(form)
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel, self)
        self.buttons.button(QDialogButtonBox.StandardButton.Ok).setText("Convert")
        self.buttons.button(QDialogButtonBox.StandardButton.Ok).setEnabled(self.route is not None)
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        lay.addWidget(self.buttons)

    def options(self) -> dict[str, Any]:
        """The convert task's ``options`` (only what the user set)."""
        o: dict[str, Any] = {}
        if self.opset.value():
            o["opset"] = self.opset.value()
        if self.dynamic_batch.isChecked():
            o["dynamic_batch"] = True
        if self.fp16.isChecked() and self.fp16.isEnabled():
            o["fp16"] = True
        if self.keep_nchw.isChecked() and self.keep_nchw.isEnabled():
            o["keep_nchw"] = True
        shapes = parse_input_shapes(self.input_shapes.text())
        if shapes:
            o["input_shapes"] = shapes
        return o

    def accept(self) -> None:
        try:
            self.options()
        except ValueError as exc:
            from PySide6.QtWidgets import QMessageBox

            QMessageBox.warning(self, "Convert", f"Input shapes: {exc}")
            return
        super().accept()

    def params(self) -> dict[str, Any]:
        """The ``convert`` task's params (:class:`converters.jobs.protocol.ConvertParams`) as the wire dict."""
        from converters.jobs.protocol import ConvertParams

        return ConvertParams(self.src, self.target, out=self.output.text().strip() or None,
                             options=self.options()).to_dict()


def parse_input_shapes(text: str) -> dict[str, list[int]]:
    """``"x:1,3,224,224; y:1,8"`` -> ``{"x": [1,3,224,224], "y": [1,8]}``; raises ValueError on junk."""
    out: dict[str, list[int]] = {}
    for part in text.replace("\n", ";").split(";"):
        part = part.strip()
        if not part:
            continue
        name, _, dims = part.rpartition(":")
        if not name:
            raise ValueError(f"input shape '{part}' needs NAME:d1,d2,…")
        out[name.strip()] = [int(d) for d in dims.replace("x", ",").split(",") if d.strip()]
    return out


def _accept_as_copy(e) -> None:
    """Accept a drag as a copy: answering the proposed action (often a move) lets a file manager delete
    the source after the drop."""
    e.setDropAction(Qt.DropAction.CopyAction)
    e.accept()
