"""Convert targets: drop a model file (or drag an open model's tab) onto ONNX / TensorFlow / Keras /
TFLite / PyTorch to plan and run a conversion.

The route is planned with :func:`converters.routes.plan`, which is pure Python (no framework import),
so the dialog opens instantly; the conversion itself is the worker task ``convert``.
"""
from __future__ import annotations

import html
import os
import re
import time
from typing import Any

from PySide6.QtCore import QMimeData, Qt, QTimer, QUrl, Signal
from PySide6.QtWidgets import (QCheckBox, QDialog, QDialogButtonBox, QFormLayout, QFrame, QHBoxLayout,
                               QLabel, QLineEdit, QProgressBar, QPushButton, QSpinBox, QVBoxLayout, QWidget)

__all__ = ["TARGETS", "ConvertStrip", "ConvertTarget", "ConvertDialog", "plan_route",
           "local_paths", "file_mime"]

# target id (the convert task's ``to``) -> label shown on the strip
TARGETS: list[tuple[str, str]] = [("onnx", "ONNX"), ("tf", "TensorFlow"), ("keras", "Keras"),
                                  ("tflite", "TFLite"), ("torch", "PyTorch")]
TARGET_LABELS = dict(TARGETS)


# the kinds the planner's hops consume and produce, as a user calls them
KIND_LABELS = {"onnx": "ONNX", "savedmodel": "TensorFlow SavedModel", "tflite": "TFLite", "tf_keras": "Keras (.h5)",
               "keras": "Keras", "torch": "PyTorch (.pt2)", "torchscript": "TorchScript", "torch.pickle": "PyTorch"}


def step_text(hop) -> str:
    """A hop as the user reads it: what it does, with which library (never the module's name)."""
    d = hop.description
    return d[:1].upper() + d[1:]


def plan_route(src: str, to: str) -> list[str]:
    """The steps from ``src`` (a path) to ``to``, one user-facing line each; raises TensorbridgeError
    when unreachable."""
    from converters.routes import plan

    return [step_text(h) for h in plan(src, to).hops]


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


# option field -> (what the dialog says, a tooltip); only those the planned route reads are shown
OPTION_TEXT = {
    "dynamic_batch": ("Make the batch dimension dynamic", "Dim 0 of every input accepts any size"),
    "fp16": ("Float16 weights (half the size)", "The TFLite file stores float16 weights; compute stays float32"),
    "keep_nchw": ("Keep NCHW input layout", "onnx2tf otherwise makes image inputs channels-last (NHWC)"),
    "keep_intermediates": ("Keep the intermediate files", "Keep each step's output beside the result"),
}


class ConvertDialog(QDialog):
    """The planned steps from ``src`` to ``target``, the options that apply to them, the output file
    (named, changeable); then the conversion's progress: the step running, a busy bar and the seconds
    elapsed (they move while a step reports nothing), Cancel and Hide (the status bar keeps showing it).

    ``convertRequested(params)`` when the user presses Convert; the window runs the job and hands it to
    :meth:`follow`. The dialog closes itself when the job ends."""

    convertRequested = Signal(dict)

    def __init__(self, src: str, target: str, parent: QWidget | None = None):
        super().__init__(parent)
        self.src, self.target = os.path.abspath(src), target
        label = TARGET_LABELS.get(target, target)
        self.setWindowTitle(f"Convert to {label}")
        self.setMinimumWidth(560)
        lay = QVBoxLayout(self)
        head = QLabel(f"<b>{html.escape(os.path.basename(src.rstrip(os.sep)))}</b> → {label}", self)
        head.setToolTip(self.src)
        lay.addWidget(head)
        self.route_label = QLabel(self)
        self.route_label.setWordWrap(True)
        self.route_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        lay.addWidget(self.route_label)
        self.route: list[str] | None = None
        self.hops: list = []
        self.applies: list[str] = []
        self.error: str | None = None
        try:
            from converters.routes import plan

            r = plan(src, target)
            self.hops, self.applies = list(r.hops), list(r.options)
            self.route = [step_text(h) for h in self.hops]
        except Exception as exc:  # TensorbridgeError: an unreachable pair; anything else: say it plainly
            from converters.errors import one_line

            self.error = one_line(exc)
            self.route_label.setText(f"Cannot convert: {self.error}")
        self.step = -1   # the step running (index), -1 before the conversion
        self._show_steps()

        form = QFormLayout()
        self.form = form
        self.opset = QSpinBox(self)
        self.opset.setRange(0, 25)
        self.opset.setSpecialValueText("default")
        self.opset.setValue(0)
        self.dynamic_batch = QCheckBox(OPTION_TEXT["dynamic_batch"][0], self)
        self.fp16 = QCheckBox(OPTION_TEXT["fp16"][0], self)
        self.keep_nchw = QCheckBox(OPTION_TEXT["keep_nchw"][0], self)
        self.keep_intermediates = QCheckBox(OPTION_TEXT["keep_intermediates"][0], self)
        self.input_shapes = QLineEdit(self)
        self.input_shapes.setPlaceholderText("e.g. input:1,3,224,224; mask:1,128 (only when the model has no fixed shapes)")
        self.option_widgets: dict[str, QWidget] = {"opset": self.opset, "dynamic_batch": self.dynamic_batch,
                                                   "fp16": self.fp16, "keep_nchw": self.keep_nchw,
                                                   "keep_intermediates": self.keep_intermediates,
                                                   "input_shapes": self.input_shapes}
        for key, w in self.option_widgets.items():
            if key in OPTION_TEXT:
                w.setToolTip(OPTION_TEXT[key][1])
            if key not in self.applies:
                w.hide()  # an option no step of this route reads is not offered
                continue
            if key == "opset":
                form.addRow("ONNX opset", w)
            elif key == "input_shapes":
                form.addRow("Input shapes", w)
            else:
                form.addRow("", w)
        self.output = QLineEdit(self)
        self.output.setToolTip("The file (a folder for a SavedModel) the conversion writes; nothing is overwritten")
        self.choose = QPushButton("Choose…", self)
        self.choose.clicked.connect(self.choose_output)
        out_row = QHBoxLayout()
        out_row.addWidget(self.output, 1)
        out_row.addWidget(self.choose)
        form.addRow("Output", out_row)
        self.output_note = QLabel(self)
        self.output_note.setWordWrap(True)
        self.output_note.hide()
        form.addRow("", self.output_note)
        self._default_out = ""
        self._suggest_output()
        self.fp16.toggled.connect(lambda _on: self._suggest_output())
        self.output.textChanged.connect(lambda _t: self._check_output())
        lay.addLayout(form)

        # progress, once the conversion runs
        self.progress_box = QWidget(self)
        pl = QVBoxLayout(self.progress_box)
        pl.setContentsMargins(0, 6, 0, 0)
        self.status = QLabel(self.progress_box)
        self.status.setWordWrap(True)
        self.bar = QProgressBar(self.progress_box)
        self.bar.setTextVisible(False)
        self.elapsed_label = QLabel(self.progress_box)
        row = QHBoxLayout()
        row.addWidget(self.bar, 1)
        row.addWidget(self.elapsed_label)
        pl.addWidget(self.status)
        pl.addLayout(row)
        self.progress_box.hide()
        lay.addWidget(self.progress_box)
        self.job = None
        self._started = 0.0
        self._tick = QTimer(self)
        self._tick.setInterval(250)
        self._tick.timeout.connect(self._show_elapsed)

        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel, self)
        self.convert_button = self.buttons.button(QDialogButtonBox.StandardButton.Ok)
        self.convert_button.setText("Convert")
        self.cancel_button = self.buttons.button(QDialogButtonBox.StandardButton.Cancel)
        self.hide_button = self.buttons.addButton("Hide", QDialogButtonBox.ButtonRole.ActionRole)
        self.hide_button.setToolTip("Keep converting; the status bar shows the progress")
        self.hide_button.clicked.connect(self.hide)
        self.hide_button.hide()
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        lay.addWidget(self.buttons)
        self._check_output()

    # -- the steps ---------------------------------------------------------------------------------
    def _show_steps(self) -> None:
        if self.route is None:
            return
        items = []
        for i, (h, text) in enumerate(zip(self.hops, self.route)):
            kinds = f"{KIND_LABELS.get(h.src, h.src)} → {KIND_LABELS.get(h.dst, h.dst)}"
            line = f"<b>{kinds}</b>: {html.escape(text)}"
            if i == self.step:
                line = f"▶ {line} <i>(running)</i>"
            elif 0 <= self.step and i < self.step:
                line = f"✓ {line}"
            items.append(f"<li>{line}</li>")
        n = len(self.route)
        self.route_label.setText(f"Planned route ({n} step{'s' * (n != 1)}):<ol>{''.join(items)}</ol>")

    # -- the output file ---------------------------------------------------------------------------
    def _suggest_output(self) -> None:
        """The default output beside the source (a new name), unless the user typed their own."""
        if self.route is None:
            return
        from converters.routes.common import default_output

        mine = self.output.text().strip()
        if mine and mine != self._default_out:
            return
        self._default_out = default_output(self.src, self.target, fp16=self.fp16.isChecked() and "fp16" in self.applies)
        self.output.setText(self._default_out)

    def output_path(self) -> str:
        text = os.path.expanduser(self.output.text().strip())
        return os.path.abspath(text) if text else self._default_out

    def _check_output(self) -> None:
        """A path that exists, is the source, or sits in no folder cannot be written: say so, no Convert."""
        p = self.output_path()
        problem = ""
        if not p:
            problem = "Name the output file."
        elif p == self.src:
            problem = "That is the source file; choose another name."
        elif os.path.lexists(p):
            problem = f"{os.path.basename(p)} already exists; choose another name."
        elif not os.path.isdir(os.path.dirname(p)):
            problem = f"The folder {os.path.dirname(p)} does not exist."
        self.output_note.setText(problem)
        self.output_note.setVisible(bool(problem))
        self.convert_button.setEnabled(self.route is not None and not problem and self.job is None)

    def choose_output(self) -> str:
        """Pick the output with a file dialog (a folder name for a SavedModel)."""
        from PySide6.QtWidgets import QFileDialog

        suffix = os.path.splitext(self._default_out)[1]
        path, _ = QFileDialog.getSaveFileName(self, "Convert to", self.output_path(),
                                              f"{TARGET_LABELS.get(self.target, self.target)} (*{suffix})")
        if path:
            self.output.setText(path)
        return path

    # -- options and params ----------------------------------------------------------------------
    def options(self) -> dict[str, Any]:
        """The convert task's ``options``: what the user set among the options that apply."""
        o: dict[str, Any] = {}
        a = self.applies
        if "opset" in a and self.opset.value():
            o["opset"] = self.opset.value()
        for key in ("dynamic_batch", "fp16", "keep_nchw", "keep_intermediates"):
            box = self.option_widgets[key]
            if key in a and isinstance(box, QCheckBox) and box.isChecked():
                o[key] = True
        shapes = parse_input_shapes(self.input_shapes.text()) if "input_shapes" in a else {}
        if shapes:
            o["input_shapes"] = shapes
        return o

    def params(self) -> dict[str, Any]:
        """The ``convert`` task's params (:class:`converters.jobs.protocol.ConvertParams`) as the wire dict."""
        from converters.jobs.protocol import ConvertParams

        return ConvertParams(self.src, self.target, out=self.output_path() or None,
                             options=self.options()).to_dict()

    def accept(self) -> None:
        """Convert: checks the settings, then asks the window to run the conversion (the dialog stays)."""
        if self.job is not None:
            return
        try:
            self.options()
        except ValueError as exc:
            from PySide6.QtWidgets import QMessageBox

            QMessageBox.warning(self, "Convert", f"Input shapes: {exc}")
            return
        self._check_output()
        if not self.convert_button.isEnabled():
            return
        self.convertRequested.emit(self.params())

    def reject(self) -> None:
        """Cancel: before the conversion, close; while it runs, stop it (the dialog closes when it ends)."""
        if self.job is not None and self.job.running:
            self.job.cancel()
            self.status.setText("Cancelling…")
            self.cancel_button.setEnabled(False)
            return
        super().reject()

    # -- progress ---------------------------------------------------------------------------------
    def follow(self, job) -> None:
        """Show ``job``'s progress (a :class:`app.jobs.QtJob` of the ``convert`` task) until it ends."""
        self.job = job
        for w in list(self.option_widgets.values()) + [self.output, self.choose]:
            w.setEnabled(False)
        self.convert_button.setEnabled(False)
        self.hide_button.show()
        self.progress_box.show()
        self.bar.setRange(0, 0)  # busy: a step says nothing while it works
        self.step = 0
        self._show_steps()
        self._set_status("")
        self._started = time.monotonic()
        self._show_elapsed()
        self._tick.start()
        self.adjustSize()  # room for the progress rows (a wrapped step line is not cut)
        job.progress.connect(self._on_progress)
        job.ended.connect(self._on_ended)

    def _set_status(self, message: str) -> None:
        n = len(self.route or [])
        text = f"Step {self.step + 1} of {n}: {self.route[self.step]}" if self.route and 0 <= self.step < n else ""
        self.status.setText(text if not message or message[:1].isdigit() else f"{text} — {message}")

    def _on_progress(self, fraction, message: str) -> None:
        m = re.match(r"\s*(\d+)/(\d+)\b", message or "")
        if m and self.route and 1 <= int(m.group(1)) <= len(self.route):
            self.step = int(m.group(1)) - 1   # the convert task says "i/n <step>" as each step starts
            self._show_steps()
        self._set_status(message or "")
        if self.height() < self.sizeHint().height():
            self.adjustSize()

    def elapsed(self) -> float:
        return time.monotonic() - self._started if self._started else 0.0

    def _show_elapsed(self) -> None:
        s = int(self.elapsed())
        self.elapsed_label.setText(f"{s // 60}:{s % 60:02d}" if s >= 60 else f"{s} s")

    def _on_ended(self) -> None:
        self._tick.stop()
        self.close()


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
