"""``.safetensors`` files: the header, then tensors read lazily."""
from __future__ import annotations

import json
import struct
from typing import Callable

import numpy as np

from ...errors import CorruptFile
from ...graph import Model, Tensor, WeightEntry
from .storage import _noop, _strided

# safetensors
# --------------------------------------------------------------------------------------------------

_ST_DTYPES = {"F64": "float64", "F32": "float32", "F16": "float16", "BF16": "bfloat16", "I64": "int64",
              "I32": "int32", "I16": "int16", "I8": "int8", "U8": "uint8", "U16": "uint16", "U32": "uint32",
              "U64": "uint64", "BOOL": "bool", "F8_E4M3": "float8_e4m3fn", "F8_E5M2": "float8_e5m2",
              "C64": "complex64"}


def load_safetensors(path: str, *, trust: bool = False, progress: Callable = _noop, **options) -> Model:
    """Read a ``.safetensors`` header (names, dtypes, shapes, metadata); tensors load lazily."""
    from safetensors import SafetensorError, safe_open

    progress(0.1, "reading header")
    try:
        with safe_open(path, framework="numpy") as f:
            metadata = f.metadata() or {}
            keys = list(f.keys())
            info = {}
            for k in keys:
                sl = f.get_slice(k)
                info[k] = (sl.get_dtype(), tuple(int(d) for d in sl.get_shape()))
    except (SafetensorError, OSError, ValueError) as exc:
        raise CorruptFile(f"{path}: cannot read this .safetensors file ({exc}); it may be damaged or "
                          f"truncated") from None
    # Data offsets from the header itself: numpy cannot hold bf16/fp8, so those are decoded here.
    with open(path, "rb") as fh:
        (n,) = struct.unpack("<Q", fh.read(8))
        header = json.loads(fh.read(n))
    base = 8 + n
    weights = []
    first_at: dict[tuple, str] = {}
    for k in keys:
        st_dtype, shape = info[k]
        dtype = _ST_DTYPES.get(st_dtype, st_dtype.lower())
        start, end = header[k]["data_offsets"]
        alias = first_at.setdefault((start, end), k) if end > start else k
        weights.append(WeightEntry(k, Tensor(k, dtype, shape, _safetensors_loader(path, base + start,
                                                                                 end - start, dtype, shape),
                                             alias_of=None if alias == k else alias)))
    progress(1.0, "done")
    return Model("safetensors", path, weights=weights, extra={"metadata": metadata} if metadata else {})


def _safetensors_loader(path: str, offset: int, nbytes: int, dtype: str, shape):
    def load():
        if nbytes == 0:
            return np.zeros(shape, dtype=np.float32 if dtype == "bfloat16" else dtype)
        buf = np.memmap(path, dtype=np.uint8, mode="r", offset=offset, shape=(nbytes,))
        return _strided(buf, dtype, shape, None, 0)

    return load

