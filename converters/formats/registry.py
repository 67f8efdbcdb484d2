"""The formats Tensorbridge opens: one entry each, and every other table derived from it.

A format is registered once, here: its id (what :func:`converters.formats.detect.detect` returns), what
the route planner calls its kind, which warm worker suits it, its file extensions, its reader and its
runner. :data:`READERS` (the loader), :data:`RUNNERS` (compare and run), the planner's kinds, the warm
pool's families, the window's file filter and the packaging's module lists all come from
:data:`FORMATS`. Content sniffing stays in ``detect.py`` (the order in which ZIP layouts are told apart
matters); adding a format is an entry here plus its reader (and runner) module, and a rule there.

Nothing here imports a framework.
"""
from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Format", "FORMATS", "BY_ID", "READERS", "RUNNERS", "FAMILY_OF", "KIND_OF", "file_filter",
           "extensions", "by_id"]


@dataclass(frozen=True)
class Format:
    id: str                          # the family id detect() returns
    label: str                       # what the window and errors call it
    kind: str                        # the route planner's kind: onnx, torch, keras, savedmodel, tflite, weights
    family: str                      # the warm worker that suits it: onnx, torch or tf
    extensions: tuple[str, ...]      # lower-case, with the dot; a folder format lists its marker file
    reader: str                      # "module:function" (path, *, trust, progress, **options) -> Model
    runner: tuple[str, str] | None   # (runtime, "module:Class") or None: weights only, nothing to run
    folder: bool = False             # opened as a folder (SavedModel)


_TORCH_RUNNER = ("torch", "converters.runners.torch_runner:TorchRunner")
_TF_RUNNER = ("tensorflow", "converters.runners.tf_runner:TFRunner")
_TORCH_READER = "converters.formats.pytorch"

FORMATS: tuple[Format, ...] = (
    Format("onnx", "ONNX", "onnx", "onnx", (".onnx",), "converters.formats.onnx_reader:load",
           ("onnxruntime", "converters.runners.onnx_runner:OnnxRuntimeRunner")),
    Format("torch.export", "PyTorch ExportedProgram (.pt2)", "torch", "torch", (".pt2",),
           f"{_TORCH_READER}.pt2:load_exported_program", _TORCH_RUNNER),
    Format("torchscript", "TorchScript", "torch", "torch", (".pt", ".pth"),
           f"{_TORCH_READER}.torchscript:load_torchscript", _TORCH_RUNNER),
    Format("torch.pickle", "PyTorch checkpoint (torch.save)", "torch", "torch", (".pt", ".pth", ".ckpt", ".bin"),
           f"{_TORCH_READER}.checkpoint:load_pickle", _TORCH_RUNNER),
    Format("safetensors", "safetensors", "weights", "torch", (".safetensors",),
           f"{_TORCH_READER}.safetensors:load_safetensors", None),
    Format("keras", "Keras (.keras)", "keras", "tf", (".keras",), "converters.formats.keras:load_keras",
           _TF_RUNNER),
    Format("keras.h5", "Keras HDF5 (.h5)", "keras", "tf", (".h5", ".hdf5"), "converters.formats.keras:load_h5",
           _TF_RUNNER),
    Format("savedmodel", "TensorFlow SavedModel", "savedmodel", "tf", ("saved_model.pb", "saved_model.pbtxt"),
           "converters.formats.savedmodel_reader:load", _TF_RUNNER, folder=True),
    Format("tflite", "TFLite", "tflite", "tf", (".tflite",), "converters.formats.tflite_reader:load",
           ("tflite", "converters.runners.tflite_runner:TFLiteRunner")),
)

BY_ID: dict[str, Format] = {f.id: f for f in FORMATS}
READERS: dict[str, str] = {f.id: f.reader for f in FORMATS}
RUNNERS: dict[str, tuple[str, str]] = {f.id: f.runner for f in FORMATS if f.runner is not None}
FAMILY_OF: dict[str, str] = {f.id: f.family for f in FORMATS}
KIND_OF: dict[str, str] = {f.id: f.kind for f in FORMATS if f.kind != "weights"}


# Extensions other programs use for anything (``pytorch_model.bin`` is a checkpoint, most ``.bin`` files
# are not): opened when given, never claimed for a double-click by name.
GENERIC_EXTENSIONS = frozenset({".bin"})


def by_id(format_id: str) -> Format:
    return BY_ID[format_id]


def extensions() -> list[str]:
    """Every file extension (and folder marker file) a registered format uses, in registry order."""
    seen: list[str] = []
    for f in FORMATS:
        for e in f.extensions:
            if e not in seen:
                seen.append(e)
    return seen


def file_filter() -> str:
    """The window's Open dialog filter (Qt syntax)."""
    pats = " ".join(e if not e.startswith(".") else f"*{e}" for e in extensions())
    return f"Models ({pats});;All files (*)"


def modules() -> list[str]:
    """Every module the registry names (readers and runners): what a frozen bundle must include."""
    out: list[str] = []
    for f in FORMATS:
        for spec in (f.reader, f.runner[1] if f.runner else None):
            if spec and spec.split(":")[0] not in out:
                out.append(spec.split(":")[0])
    return out
