"""The "Compare with…" dialog: model A (an open tab), model B (another tab or a file), a device per side,
the tolerance preset, the random inputs' seed and batch, or an inputs file, and whether to compare layer
by layer (to find the first layer where the two part ways).

The devices come from the worker task ``devices`` (asking a framework costs seconds, so it runs in a
worker); devices that are missing are listed disabled, their reason in the tooltip. Until the answer
arrives each side offers ``cpu`` only.
"""
from __future__ import annotations

import os
from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QStandardItem, QStandardItemModel
from PySide6.QtWidgets import (QCheckBox, QComboBox, QDialog, QDialogButtonBox, QFileDialog, QFormLayout, QHBoxLayout,
                               QLabel, QLineEdit, QPushButton, QSpinBox, QVBoxLayout, QWidget)

from .parity import compare_params

__all__ = ["CompareDialog", "ModelPairChoice", "runtime_of", "PRESET_NAMES", "MODEL_FILTER", "INPUTS_FILTER"]

PRESET_NAMES = ["fp32", "fp16", "bf16", "int8"]
MODEL_FILTER = ("Models (*.onnx *.pt2 *.pt *.pth *.keras *.h5 *.hdf5 *.tflite saved_model.pb);;All files (*)")
INPUTS_FILTER = "Inputs (*.npz *.npy *.png *.jpg *.jpeg *.bmp *.webp);;All files (*)"


def runtime_of(path: str) -> str | None:
    """The runtime that runs ``path`` (torch, tensorflow, tflite, onnxruntime), from the file's content;
    None when it cannot be run (weights only, unknown)."""
    try:
        from converters.runners import runtime_for

        return runtime_for(path)[1]
    except Exception:  # unreadable or weights-only: the comparison itself will say why
        return None


class ModelPairChoice:
    """Models A and B picked in a dialog: two combo boxes of open models (B defaults to another one than A)
    and a "File…" button for a B that is not open. Shared by the Compare and Structural diff dialogs."""

    start_dir: str

    def _model_pair(self, a_choices: list[tuple[str, str]], b_choices: list[tuple[str, str]],
                    current_a: str | None) -> QHBoxLayout:
        """Make ``a_combo`` and ``b_combo``; returns B's row (its combo box and the File… button)."""
        self.a_combo = QComboBox(self)  # type: ignore[arg-type]
        self.b_combo = QComboBox(self)  # type: ignore[arg-type]
        for label, path in a_choices:
            self.a_combo.addItem(label, path)
        for label, path in b_choices:
            self.b_combo.addItem(label, path)
        if current_a:
            i = self.a_combo.findData(current_a)
            if i >= 0:
                self.a_combo.setCurrentIndex(i)
        # B defaults to another model than A
        for i in range(self.b_combo.count()):
            if self.b_combo.itemData(i) != self.a_combo.currentData():
                self.b_combo.setCurrentIndex(i)
                break
        self.b_browse = QPushButton("File…", self)  # type: ignore[arg-type]
        self.b_browse.clicked.connect(self._browse_b)
        brow = QHBoxLayout()
        brow.addWidget(self.b_combo, 1)
        brow.addWidget(self.b_browse)
        return brow

    def path_a(self) -> str:
        return str(self.a_combo.currentData() or "")

    def path_b(self) -> str:
        return str(self.b_combo.currentData() or "")

    def set_b(self, path: str) -> None:
        """Choose ``path`` as model B (added to the list when it is not an open model)."""
        path = os.path.abspath(path)
        i = self.b_combo.findData(path)
        if i < 0:
            self.b_combo.addItem(f"{os.path.basename(path.rstrip(os.sep))} — {path}", path)
            i = self.b_combo.count() - 1
        self.b_combo.setCurrentIndex(i)

    def _browse_b(self) -> None:
        p, _ = QFileDialog.getOpenFileName(self, "Model B", self.start_dir, MODEL_FILTER)  # type: ignore[arg-type]
        if p:
            if os.path.basename(p) in ("saved_model.pb", "saved_model.pbtxt"):
                p = os.path.dirname(p)
            self.set_b(p)


class CompareDialog(ModelPairChoice, QDialog):
    """``params()`` is the ``compare`` task's params once accepted. ``devices`` is the ``devices`` task's
    list; :meth:`set_devices` fills the device boxes from it (``devicesChanged`` then)."""

    devicesChanged = Signal()

    def __init__(self, a_choices: list[tuple[str, str]], current_a: str | None = None,
                 b_choices: list[tuple[str, str]] | None = None, parent: QWidget | None = None,
                 start_dir: str = ""):
        """``a_choices`` / ``b_choices``: (label, path) of open models; ``current_a``: the path to preselect."""
        super().__init__(parent)
        self.setWindowTitle("Compare models")
        self.devices: list[dict] | None = None
        self._wanted_devices: dict[str, str] = {}  # the devices an earlier run used (set_params)
        self.start_dir = start_dir
        lay = QVBoxLayout(self)
        intro = QLabel("Runs both models on the same inputs, each in its own worker, and compares every "
                       "output. A is the reference.", self)
        intro.setWordWrap(True)
        lay.addWidget(intro)
        form = QFormLayout()
        self.a_combo = QComboBox(self)
        brow = self._model_pair(a_choices, b_choices if b_choices is not None else a_choices, current_a)
        self.device_a = QComboBox(self)
        self.device_b = QComboBox(self)
        self.device_note = QLabel("Checking which devices each runtime can use…", self)
        self.device_note.setWordWrap(True)
        self.preset = QComboBox(self)
        self.preset.addItems(PRESET_NAMES)
        self.preset.setToolTip("fp32: atol 1e-5, rtol 1e-4. fp16 / bf16 / int8 allow the rounding of those "
                               "precisions (see converters.compare.tolerances)")
        self.seed = QSpinBox(self)
        self.seed.setRange(0, 2**31 - 1)
        self.batch = QSpinBox(self)
        self.batch.setRange(0, 4096)
        self.batch.setSpecialValueText("model's own")
        self.samples = QSpinBox(self)
        self.samples.setRange(1, 64)
        self.samples.setToolTip("How many seeded random input sets to run (seed, seed + 1, …); each output and "
                                "layer shows its worst sample. With an inputs file, put the samples in its batch")
        self.inputs = QLineEdit(self)
        self.inputs.setPlaceholderText("random inputs from the seed; or a .npz / .npy / image file")
        self.inputs.textChanged.connect(lambda t: self.samples.setEnabled(not t.strip()))
        self.inputs_browse = QPushButton("Browse…", self)
        self.inputs_browse.clicked.connect(self._browse_inputs)
        irow = QHBoxLayout()
        irow.addWidget(self.inputs, 1)
        irow.addWidget(self.inputs_browse)
        form.addRow("Model A", self.a_combo)
        form.addRow("Model B", brow)
        form.addRow("Device A", self.device_a)
        form.addRow("Device B", self.device_b)
        form.addRow("", self.device_note)
        form.addRow("Tolerance", self.preset)
        form.addRow("Seed", self.seed)
        form.addRow("Batch", self.batch)
        form.addRow("Samples", self.samples)
        form.addRow("Inputs", irow)
        self.per_layer = QCheckBox("Per layer (find where they part ways)", self)
        self.per_layer.setToolTip("Also pair the layers of both graphs and compare each pair: the first layer "
                                  "that is wrong itself, and which layers only inherit its error. Slower: "
                                  "every paired tensor is captured on both sides")
        form.addRow("", self.per_layer)
        lay.addLayout(form)
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel, self)
        self.buttons.button(QDialogButtonBox.StandardButton.Ok).setText("Compare")
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        lay.addWidget(self.buttons)
        self.a_combo.currentIndexChanged.connect(lambda _i: self._fill_devices())
        self.b_combo.currentIndexChanged.connect(lambda _i: self._fill_devices())
        self._fill_devices()

    # -- choices -----------------------------------------------------------------------------------------
    def _browse_inputs(self) -> None:
        p, _ = QFileDialog.getOpenFileName(self, "Inputs", self.start_dir, INPUTS_FILTER)
        if p:
            self.inputs.setText(p)

    # -- devices -----------------------------------------------------------------------------------------
    def runtimes(self) -> list[str]:
        """The runtimes of both chosen models (for the ``devices`` task)."""
        out = []
        for p in (self.path_a(), self.path_b()):
            rt = runtime_of(p) if p else None
            if rt and rt not in out:
                out.append(rt)
        return out

    def set_devices(self, devices: list[dict]) -> None:
        """Fill both device boxes from the ``devices`` task's list (``{runtime, device, available, reason}``)."""
        self.devices = list(devices)
        self._fill_devices()
        missing = [d for d in self.devices if not d.get("available")]
        self.device_note.setText("Greyed-out devices are missing here; hover one to see why." if missing else "")
        self.device_note.setVisible(bool(missing))
        self.devicesChanged.emit()

    def set_devices_error(self, message: str) -> None:
        self.device_note.setText(f"Could not list devices ({message}); comparing on the CPU.")

    def _fill_devices(self) -> None:
        wanted = self._wanted_devices
        for side, combo, path in (("a", self.device_a, self.path_a()), ("b", self.device_b, self.path_b())):
            keep = wanted.get(side) or combo.currentData()
            rt = runtime_of(path) if path else None
            model = QStandardItemModel(combo)
            rows = [d for d in (self.devices or []) if d.get("runtime") == rt] if self.devices is not None else []
            if not any(d.get("device") == "cpu" for d in rows):
                rows.insert(0, {"runtime": rt, "device": "cpu", "available": True, "reason": "", "name": ""})
            for d in rows:
                text = d["device"] + (f" — {d['name']}" if d.get("name") else "")
                if not d.get("available"):
                    text = f"{d['device']} (unavailable)"
                it = QStandardItem(text)
                it.setData(d["device"], Qt.ItemDataRole.UserRole)
                it.setData(bool(d.get("available")), Qt.ItemDataRole.UserRole + 1)
                if not d.get("available"):
                    it.setFlags(it.flags() & ~Qt.ItemFlag.ItemIsEnabled & ~Qt.ItemFlag.ItemIsSelectable)
                    it.setToolTip(d.get("reason") or "not available")
                elif d.get("name"):
                    it.setToolTip(d["name"])
                model.appendRow(it)
            combo.setModel(model)
            i = combo.findData(keep) if keep else -1
            if i >= 0 and model.item(i).isEnabled():
                combo.setCurrentIndex(i)
            else:
                combo.setCurrentIndex(0)

    def device_entries(self, side: str = "a") -> list[dict]:
        """What a device box offers: ``[{device, enabled, tooltip}]``."""
        combo = self.device_a if side == "a" else self.device_b
        m = combo.model()
        return [{"device": m.item(i).data(Qt.ItemDataRole.UserRole), "enabled": m.item(i).isEnabled(),
                 "tooltip": m.item(i).toolTip()} for i in range(m.rowCount())]

    # -- result ------------------------------------------------------------------------------------------
    def accept(self) -> None:
        from PySide6.QtWidgets import QMessageBox

        problem = None
        if not self.path_a() or not self.path_b():
            problem = "Choose two models."
        elif not os.path.exists(self.path_b()):
            problem = f"{self.path_b()} does not exist."
        elif self.inputs.text().strip() and not os.path.exists(self.inputs.text().strip()):
            problem = f"Inputs file {self.inputs.text().strip()} does not exist."
        if problem:
            QMessageBox.warning(self, "Compare", problem)
            return
        super().accept()

    def params(self, *, trust: bool = False) -> dict[str, Any]:
        """The ``compare`` task's params for the current choices (a new result folder each call)."""
        inputs = self.inputs.text().strip()
        return compare_params(self.path_a(), self.path_b(), preset=self.preset.currentText(),
                              device_a=str(self.device_a.currentData() or "cpu"),
                              device_b=str(self.device_b.currentData() or "cpu"), seed=self.seed.value(),
                              batch=self.batch.value() or None, inputs=[inputs] if inputs else None,
                              trust=trust, per_layer=self.per_layer.isChecked(),
                              samples=1 if inputs else self.samples.value())

    def set_params(self, params: dict[str, Any]) -> None:
        """Fill the choices from an earlier comparison's params (Compare again: the same settings, to change
        some): B, the devices, tolerance preset, seed, batch, samples, inputs file and per layer."""
        if params.get("b"):
            self.set_b(str(params["b"]))
        i = self.preset.findText(str(params.get("preset") or "fp32"))
        if i >= 0:
            self.preset.setCurrentIndex(i)
        self.seed.setValue(int(params.get("seed") or 0))
        self.batch.setValue(int(params.get("batch") or 0))
        self.samples.setValue(int(params.get("samples") or 1))
        self.inputs.setText(str((params.get("inputs") or [""])[0]))
        self.per_layer.setChecked(bool(params.get("per_layer")))
        self._wanted_devices = {"a": params.get("device_a") or "cpu", "b": params.get("device_b") or "cpu"}
        self._fill_devices()
