"""Which reader a path needs, decided from its content (magic bytes, archive layout), not its name."""
from __future__ import annotations

import os
import struct
import zipfile

from ..errors import CorruptFile, UnsupportedFormat

from .registry import FORMATS

FAMILIES = tuple(f.id for f in FORMATS)  # every id detect() can return (registered in .registry)

HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"
ZIP_MAGIC = b"PK\x03\x04"
SUPPORTED_HINT = (".onnx, .pt2, .pt/.pth/.ckpt, .safetensors, .keras, .h5, .tflite or a SavedModel folder")


def detect(path: str) -> str:
    """Return the format family of ``path`` (one of :data:`FAMILIES`) or raise a one-line error."""
    if not os.path.exists(path):
        raise UnsupportedFormat(f"{path}: no such file or folder")
    if os.path.isdir(path):
        return _detect_dir(path)
    if not os.path.isfile(path):
        raise UnsupportedFormat(f"{path}: not a regular file")
    try:
        size = os.path.getsize(path)
        with open(path, "rb") as f:
            head = f.read(64)
    except PermissionError:
        raise UnsupportedFormat(f"{path}: permission denied; check the file's permissions") from None
    except OSError as exc:
        raise CorruptFile(f"{path}: cannot be read ({exc.strerror or exc})") from None
    if size == 0:
        raise CorruptFile(f"{path}: the file is empty (0 bytes); it was probably not saved completely")
    ext = os.path.splitext(path)[1].lower()
    name = os.path.basename(path)

    if name in ("saved_model.pb", "saved_model.pbtxt"):
        return "savedmodel"
    if head.startswith(ZIP_MAGIC) or (size >= 22 and zipfile.is_zipfile(path) and ext != ".onnx"):
        return _detect_zip(path)
    if head.startswith(HDF5_MAGIC):
        return "keras.h5"
    if len(head) >= 8 and head[4:8] == b"TFL3":
        return "tflite"
    if _looks_like_safetensors(head, size):
        return "safetensors"
    if head[:1] == b"\x80" and len(head) > 1 and head[1] in (2, 3, 4, 5):
        return "torch.pickle"  # legacy (non-zip) torch.save or a bare pickle
    if _looks_like_onnx(head, ext):
        return "onnx"
    if ext in (".pt", ".pth", ".ckpt", ".bin", ".pt2", ".keras", ".tflite", ".safetensors", ".h5", ".hdf5"):
        raise CorruptFile(f"{path}: does not look like a {ext} file (unrecognised content); "
                          f"it may be damaged, truncated or mislabelled")
    raise UnsupportedFormat(f"{path}: not a model format Tensorbridge reads; open {SUPPORTED_HINT}")


def _detect_dir(path: str) -> str:
    if any(os.path.exists(os.path.join(path, n)) for n in ("saved_model.pb", "saved_model.pbtxt")):
        return "savedmodel"
    raise UnsupportedFormat(f"{path}: is a folder without saved_model.pb, so not a SavedModel; "
                            f"open a model file or a SavedModel folder")


def _detect_zip(path: str) -> str:
    from ..safety.archives import open_zip

    # Members are checked here (declared sizes, bomb ratios), so no reader or runner after detect can be
    # made to inflate one.
    with open_zip(path, "archive") as z:
        names = z.namelist()
    base = {n.split("/", 1)[-1] for n in names}
    if "config.json" in names and any(n.endswith(".weights.h5") or n == "metadata.json" for n in names):
        return "keras"
    # torch.export.save: <root>/archive_format, models/, data/ ; TorchScript: code/ and constants.pkl
    if "archive_format" in base or any("/models/" in n or n.startswith("models/") for n in names) \
            and any(n.endswith(".json") for n in names):
        return "torch.export"
    if any(n.endswith("/constants.pkl") for n in names) or any("/code/" in n for n in names):
        return "torchscript"
    if any(n.endswith("data.pkl") for n in names):
        return "torch.pickle"
    raise UnsupportedFormat(f"{path}: a ZIP archive that is neither a torch checkpoint nor a .keras model; "
                            f"open {SUPPORTED_HINT}")


def _looks_like_safetensors(head: bytes, size: int) -> bool:
    if len(head) < 10:
        return False
    (n,) = struct.unpack("<Q", head[:8])
    return 2 <= n <= size - 8 and head[8:9] == b"{"


def _looks_like_onnx(head: bytes, ext: str) -> bool:
    # ModelProto starts with field 1 (ir_version, varint: 0x08) in every writer we know; accept other
    # protobuf field tags when the extension says ONNX.
    if head[:1] == b"\x08" and len(head) > 1 and 1 <= head[1] <= 20:
        return True
    return ext == ".onnx" and head[:1] in (b"\x08", b"\x12", b"\x1a", b"\x22", b"\x2a", b"\x32", b"\x3a", b"\x42")
