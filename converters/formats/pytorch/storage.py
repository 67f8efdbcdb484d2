"""What every PyTorch reader shares: dtype decoding, strided views of raw bytes, zip members."""
from __future__ import annotations

import json
import os
import struct
import zipfile

import numpy as np

from ...errors import CorruptFile, text_of
from ...safety import archives

def _noop(fraction=None, message=""):
    pass


# --------------------------------------------------------------------------------------------------
# dtype decoding shared by all readers
# --------------------------------------------------------------------------------------------------

# torch._export.serde.schema.ScalarType (stable, versioned schema)
_SCHEMA_DTYPES = {
    1: "uint8", 2: "int8", 3: "int16", 4: "int32", 5: "int64", 6: "float16", 7: "float32", 8: "float64",
    9: "complex32", 10: "complex64", 11: "complex128", 12: "bool", 13: "bfloat16", 28: "uint16",
    29: "float8_e4m3fn", 30: "float8_e5m2", 31: "float8_e4m3fnuz", 32: "float8_e5m2fnuz",
    33: "float8_e8m0fnu", 34: "uint32", 35: "uint64",
}

_STORAGE_DTYPES = {
    "FloatStorage": "float32", "DoubleStorage": "float64", "HalfStorage": "float16",
    "BFloat16Storage": "bfloat16", "LongStorage": "int64", "IntStorage": "int32", "ShortStorage": "int16",
    "CharStorage": "int8", "ByteStorage": "uint8", "BoolStorage": "bool",
    "ComplexFloatStorage": "complex64", "ComplexDoubleStorage": "complex128",
    "QInt8Storage": "int8", "QUInt8Storage": "uint8", "QInt32Storage": "int32",
    "QUInt4x2Storage": "uint8", "QUInt2x4Storage": "uint8", "UntypedStorage": "uint8",
}

_ITEMSIZE = {"bfloat16": 2, "complex32": 4, "bool": 1}


def _itemsize(dtype: str) -> int:
    if dtype in _ITEMSIZE:
        return _ITEMSIZE[dtype]
    if dtype.startswith("float8"):
        return 1
    return np.dtype(dtype).itemsize


def _storage_numpy_dtype(dtype: str, byteorder: str = "little") -> np.dtype:
    """The numpy dtype used to view raw bytes of ``dtype`` (bf16 as uint16, float8 as uint8)."""
    if dtype == "bfloat16":
        base = np.dtype("uint16")
    elif dtype.startswith("float8"):
        base = np.dtype("uint8")
    elif dtype == "complex32":
        base = np.dtype("float16")  # pairs; reshaped below
    else:
        base = np.dtype(dtype)
    return base.newbyteorder("<" if byteorder == "little" else ">") if base.itemsize > 1 else base


def _finish_dtype(arr: np.ndarray, dtype: str) -> np.ndarray:
    """Convert a raw view to an array numpy can compute with (bf16 -> float32, float8 via ml_dtypes)."""
    if dtype == "bfloat16":
        return (arr.astype(np.uint32) << 16).view(np.float32)
    if dtype.startswith("float8"):
        try:
            import ml_dtypes
        except ImportError as exc:  # pragma: no cover - ml_dtypes comes with TensorFlow
            raise ValueError(f"reading {dtype} weights needs the ml_dtypes package") from exc
        name = {"float8_e4m3fn": "float8_e4m3fn", "float8_e5m2": "float8_e5m2",
                "float8_e4m3fnuz": "float8_e4m3fnuz", "float8_e5m2fnuz": "float8_e5m2fnuz",
                "float8_e8m0fnu": "float8_e8m0fnu"}[dtype]
        return arr.view(getattr(ml_dtypes, name)).astype(np.float32)
    if arr.dtype.byteorder == ">":
        return arr.astype(arr.dtype.newbyteorder("="))
    return np.array(arr, copy=True) if not arr.flags.owndata else arr


def _strided(buf: np.ndarray, dtype: str, shape, strides, offset: int, byteorder: str = "little") -> np.ndarray:
    """Elements of ``shape`` at element ``strides``/``offset`` of a raw byte buffer, as a new array."""
    nd = _storage_numpy_dtype(dtype, byteorder)
    flat = np.frombuffer(buf, dtype=nd) if not isinstance(buf, np.ndarray) else buf.view(nd)
    shape = tuple(int(s) for s in shape)
    if strides is None:
        strides = _contiguous_strides(shape)
    n = int(np.prod(shape)) if shape else 1
    if n == 0:
        return _finish_dtype(np.zeros(shape, dtype=nd), dtype)
    last = offset + sum((s - 1) * st for s, st in zip(shape, strides))
    if offset < 0 or last >= flat.size:
        raise ValueError(f"tensor data out of range ({last + 1} elements needed, {flat.size} stored)")
    view = np.lib.stride_tricks.as_strided(flat[offset:], shape=shape,
                                           strides=tuple(int(s) * nd.itemsize for s in strides),
                                           writeable=False)
    return _finish_dtype(np.array(view, copy=True), dtype)


def _contiguous_strides(shape) -> tuple[int, ...]:
    out, acc = [], 1
    for s in reversed(shape):
        out.append(acc)
        acc *= max(int(s), 1)
    return tuple(reversed(out))


class _ZipEntry:
    """Raw bytes of one archive member, memory-mapped when stored uncompressed (torch always does)."""

    def __init__(self, path: str, name: str):
        self.path, self.name = path, name
        self._arr = None

    def array(self) -> np.ndarray:
        if self._arr is None:
            info = _zip_index(self.path).get(self.name)
            if info is None:
                raise ValueError(f"archive member {self.name} is missing")
            compress_type, header_offset, size = info
            if compress_type == zipfile.ZIP_STORED and size > 0:
                with open(self.path, "rb") as f:
                    f.seek(header_offset)
                    hdr = f.read(30)
                if hdr[:4] != b"PK\x03\x04":
                    raise ValueError(f"damaged archive member {self.name}")
                n_name, n_extra = struct.unpack("<HH", hdr[26:30])
                start = header_offset + 30 + n_name + n_extra
                self._arr = np.memmap(self.path, dtype=np.uint8, mode="r", offset=start, shape=(size,))
            else:
                with zipfile.ZipFile(self.path) as z:  # read up to the declared size only (see archives)
                    self._arr = np.frombuffer(archives.read_member(self.path, z, self.name, size),
                                              dtype=np.uint8)
        return self._arr


_ZIP_INDEX: dict[tuple, dict[str, tuple[int, int, int]]] = {}


def _zip_index(path: str) -> dict[str, tuple[int, int, int]]:
    """member name -> (compress type, local header offset, size), parsed once per file version: reading
    the central directory again for every weight would make loading all weights quadratic."""
    st = os.stat(path)
    key = (os.path.abspath(path), st.st_mtime_ns, st.st_size)
    idx = _ZIP_INDEX.get(key)
    if idx is None:
        with zipfile.ZipFile(path) as z:
            idx = {i.filename: (i.compress_type, i.header_offset, i.file_size) for i in z.infolist()}
        if len(_ZIP_INDEX) > 64:
            _ZIP_INDEX.clear()
        _ZIP_INDEX[key] = idx
    return idx


def _open_zip(path: str, what: str) -> zipfile.ZipFile:
    return archives.open_zip(path, f"{what} archive")


# JSON and text members of a .pt2 (the program, configs) are never near this size.
_MAX_JSON_MEMBER = 2 * 1024 ** 3


# --------------------------------------------------------------------------------------------------


def _read_json_member(z: zipfile.ZipFile, name: str):
    if name not in z.NameToInfo:
        return None
    try:
        return json.loads(archives.read_member(z.filename, z, name, _MAX_JSON_MEMBER))
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        text = text_of(exc, 160)
        raise CorruptFile(f"{z.filename}: cannot read {name} ({text}); the file may be damaged") from None


def _read_text_member(z: zipfile.ZipFile, name: str) -> str | None:
    if name not in z.NameToInfo:
        return None
    return archives.read_member(z.filename, z, name, 4096).decode("utf-8", "replace").strip()
