"""torch.save pickles through a restricted unpickler: tensors and plain data; everything else inert."""
from __future__ import annotations

import collections
import io
import os
import pickle
import re
import struct
import zipfile
from typing import Any, Callable

import numpy as np

from ...errors import CorruptFile
from ...safety import archives, pickles
from .storage import _MAX_JSON_MEMBER, _STORAGE_DTYPES, _ZipEntry, _itemsize, _read_text_member, _strided

# torch.save pickles: restricted unpickler
# --------------------------------------------------------------------------------------------------

class PickledObject:
    """An object the file would build by running code (importing a class, calling a function).

    Kept as inert data: the global's name, the arguments it would be called with and the state it
    would receive. Nothing of it is ever called.
    """

    _tb_module = ""
    _tb_name = ""

    def __new__(cls, *args, **kwargs):
        obj = object.__new__(cls)
        obj._tb_args = args
        obj._tb_kwargs = kwargs
        obj._tb_state = None
        obj._tb_items = []
        return obj

    def __init__(self, *args, **kwargs):
        pass

    def __setstate__(self, state):
        self._tb_state = state

    def __call__(self, *args, **kwargs):
        # a placeholder the pickle then calls (functools.partial(...)(...), a factory's result): one more
        # inert record of what would have been called
        return _placeholder(self._tb_module, f"{self._tb_name}(...)")(*args, **kwargs)

    # pickle appends/setitems on list/dict subclasses
    def append(self, x):
        self._tb_items.append(x)

    def extend(self, xs):
        self._tb_items.extend(xs)

    def __setitem__(self, k, v):
        self._tb_items.append((k, v))

    @classmethod
    def qualname(cls) -> str:
        return f"{cls._tb_module}.{cls._tb_name}"

    def __repr__(self) -> str:
        return f"<pickled {self.qualname()}>"


class _TensorRef:
    """A tensor as stored in a torch.save file: a storage plus shape/stride/offset, read on demand."""

    def __init__(self, storage: "_StorageRef", offset: int, shape, stride, is_param: bool = False):
        self.storage, self.offset = storage, int(offset)
        self.shape = tuple(int(s) for s in shape)
        self.stride = tuple(int(s) for s in stride) if stride is not None else None
        self.is_param = is_param

    @property
    def dtype(self) -> str | None:
        return self.storage.dtype if self.storage is not None else None

    @property
    def numel(self) -> int:
        return int(np.prod(self.shape)) if self.shape else 1

    def numpy(self) -> np.ndarray:
        if self.storage is None:
            raise ValueError("this tensor has no stored data (a meta tensor)")
        return _strided(self.storage.array(), self.storage.dtype, self.shape, self.stride, self.offset,
                        self.storage.byteorder)


class _StorageRef:
    def __init__(self, dtype: str, numel: int, reader: Callable[[], np.ndarray], byteorder: str = "little"):
        self.dtype, self.numel, self._reader, self.byteorder = dtype, int(numel), reader, byteorder

    def array(self) -> np.ndarray:
        return self._reader()


class _DtypeMarker:
    """What ``torch.FloatStorage`` / ``torch.float32`` become in the restricted unpickler."""

    def __init__(self, dtype: str):
        self.dtype = dtype

    def __repr__(self):
        return f"torch.{self.dtype}"


_TORCH_DTYPE_NAMES = {
    "float32": "float32", "float": "float32", "float64": "float64", "double": "float64",
    "float16": "float16", "half": "float16", "bfloat16": "bfloat16", "int64": "int64", "long": "int64",
    "int32": "int32", "int": "int32", "int16": "int16", "short": "int16", "int8": "int8", "uint8": "uint8",
    "bool": "bool", "complex64": "complex64", "complex128": "complex128", "uint16": "uint16",
    "uint32": "uint32", "uint64": "uint64", "float8_e4m3fn": "float8_e4m3fn", "float8_e5m2": "float8_e5m2",
    "qint8": "int8", "quint8": "uint8", "qint32": "int32",
}


def _checked_storage(storage) -> "_StorageRef":
    if not isinstance(storage, _StorageRef):
        raise pickle.UnpicklingError(f"a tensor without stored data ({type(storage).__name__})")
    return storage


def _rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad=False, backward_hooks=None,
                       metadata=None):
    return _TensorRef(_checked_storage(storage), storage_offset, size, stride)


def _rebuild_tensor(storage, storage_offset, size, stride):
    return _TensorRef(_checked_storage(storage), storage_offset, size, stride)


def _rebuild_parameter(data, requires_grad=True, backward_hooks=None, state=None):
    if isinstance(data, _TensorRef):
        data.is_param = True
    return data


def _rebuild_from_type_v2(func, new_type, args, state):
    # Tensor subclasses: rebuild the plain tensor only if the inner function is one we implement.
    if callable(func) and not isinstance(func, type):
        return func(*args)
    return PickledObject.__new__(_placeholder("torch._tensor", "_rebuild_from_type_v2"), func, new_type, args)


def _rebuild_meta_tensor_no_storage(dtype, size, stride, requires_grad=False):
    d = dtype.dtype if isinstance(dtype, _DtypeMarker) else None
    t = _TensorRef(None, 0, size, stride)
    t.meta_dtype = d
    return t


def _rebuild_qtensor(storage, storage_offset, size, stride, quantizer_params, requires_grad, backward_hooks):
    # The integer representation; scale/zero point are not applied.
    return _TensorRef(_checked_storage(storage), storage_offset, size, stride)


def _rebuild_device_tensor_from_numpy(data, dtype, device, requires_grad):
    return np.asarray(data)


def _codecs_encode(obj, encoding="utf-8", errors="strict"):
    if str(encoding).lower().replace("_", "-") not in ("latin1", "latin-1", "utf-8", "utf8", "ascii"):
        raise pickle.UnpicklingError(f"refusing codec {encoding!r}")
    import codecs

    return codecs.encode(obj, encoding, errors)


def _torch_device(*args):
    return ":".join(str(a) for a in args)


def _torch_size(*args):
    return tuple(args[0]) if len(args) == 1 else tuple(args)


# No bytes/bytearray: called with a huge int they allocate that much memory.
_SAFE_BUILTINS = {"set": set, "frozenset": frozenset, "slice": slice, "complex": complex,
                  "int": int, "float": float, "bool": bool, "str": str, "tuple": tuple, "list": list,
                  "dict": dict}

_PLACEHOLDERS: dict[tuple[str, str], type] = {}


def _placeholder(module: str, name: str) -> type:
    key = (module, name)
    cls = _PLACEHOLDERS.get(key)
    if cls is None:
        safe = re.sub(r"\W", "_", name) or "obj"
        cls = type(safe, (PickledObject,), {"_tb_module": module, "_tb_name": name})
        _PLACEHOLDERS[key] = cls
    return cls


def _numpy_global(module: str, name: str):
    # The few numpy globals that plain arrays and scalars need (the same ones torch's weights_only allows).
    if module in ("numpy.core.multiarray", "numpy._core.multiarray") and name in ("_reconstruct", "scalar"):
        mod = np._core.multiarray if hasattr(np, "_core") else np.core.multiarray
        return getattr(mod, name)
    if module == "numpy" and name in ("ndarray", "dtype"):
        return getattr(np, name)
    if module.startswith("numpy") and name.endswith("DType") and module.endswith("dtypes"):
        return getattr(np.dtypes, name, None)
    return None


class _RestrictedUnpickler(pickle.Unpickler):
    """Unpickles tensors and plain data; every other global becomes an inert :class:`PickledObject`."""

    def __init__(self, file, storages: Callable[[tuple], Any] | None):
        super().__init__(file, encoding="utf-8")
        self._storages = storages
        self.unknown_globals: dict[str, int] = {}

    def find_class(self, module: str, name: str):
        if module == "collections" and name == "OrderedDict":
            return collections.OrderedDict
        if module in ("builtins", "__builtin__") and name in _SAFE_BUILTINS:
            return _SAFE_BUILTINS[name]
        if module == "_codecs" and name == "encode":
            return _codecs_encode
        if module == "torch._utils":
            fn = {"_rebuild_tensor_v2": _rebuild_tensor_v2, "_rebuild_tensor": _rebuild_tensor,
                  "_rebuild_parameter": _rebuild_parameter, "_rebuild_parameter_with_state": _rebuild_parameter,
                  "_rebuild_qtensor": _rebuild_qtensor,
                  "_rebuild_meta_tensor_no_storage": _rebuild_meta_tensor_no_storage,
                  "_rebuild_device_tensor_from_numpy": _rebuild_device_tensor_from_numpy}.get(name)
            if fn is not None:
                return fn
        if module == "torch._tensor" and name == "_rebuild_from_type_v2":
            return _rebuild_from_type_v2
        if module in ("torch", "torch.storage"):
            if name in _STORAGE_DTYPES:
                return _DtypeMarker(_STORAGE_DTYPES[name])
            if name in _TORCH_DTYPE_NAMES:
                return _DtypeMarker(_TORCH_DTYPE_NAMES[name])
            if name == "device":
                return _torch_device
            if name == "Size":
                return _torch_size
        if module == "torch.nn.parameter" and name == "Parameter":
            return lambda data=None, requires_grad=True: _rebuild_parameter(data)
        if module.startswith("numpy"):
            g = _numpy_global(module, name)
            if g is not None:
                return g
        qual = f"{module}.{name}"
        self.unknown_globals[qual] = self.unknown_globals.get(qual, 0) + 1
        return _placeholder(module, name)

    def persistent_load(self, pid):
        if self._storages is None:
            raise pickle.UnpicklingError("persistent id in a plain pickle")
        return self._storages(pid)


def _storage_dtype(marker) -> str:
    if isinstance(marker, _DtypeMarker):
        return marker.dtype
    return "uint8"


def _read_zip_pickle(path: str, z: zipfile.ZipFile) -> tuple[Any, dict[str, int]]:
    names = z.namelist()
    pkl = next((n for n in names if n.endswith("data.pkl") and n.count("/") <= 1), None)
    if pkl is None:
        raise CorruptFile(f"{path}: a ZIP archive without data.pkl, so not a torch.save file")
    prefix = pkl[: -len("data.pkl")]
    byteorder = _read_text_member(z, f"{prefix}byteorder") or "little"
    cache: dict[str, _StorageRef] = {}

    def storage(pid):
        # ('storage', storage_type, key, location, numel)
        if not isinstance(pid, tuple) or not pid or pid[0] != "storage":
            raise pickle.UnpicklingError(f"unknown persistent id {pid!r:.80}")
        _, stype, key, _location, numel = pid[:5]
        key = str(key)
        if key not in cache:
            dtype = _storage_dtype(stype)
            entry = _ZipEntry(path, f"{prefix}data/{key}")
            if f"{prefix}data/{key}" not in name_set:
                raise pickle.UnpicklingError(f"storage data/{key} is missing from the archive")
            cache[key] = _StorageRef(dtype, numel, entry.array, byteorder)
        return cache[key]

    name_set = set(names)
    data = archives.read_member(path, z, pkl, _MAX_JSON_MEMBER, "torch.save archive")
    pickles.scan_bytes(data, path=path, what="checkpoint's data.pkl")
    up = _RestrictedUnpickler(io.BytesIO(data), storage)
    obj = up.load()
    return obj, up.unknown_globals


_LEGACY_MAGIC = 0x1950A86A20F9469CFC6C


def _read_legacy_pickle(path: str) -> tuple[Any, dict[str, int], bool]:
    """Legacy (pre-1.6) torch.save stream, or a bare pickle. Returns (object, unknown globals, is_torch)."""
    archives.require_regular_file(path, "torch.save file")
    with open(path, "rb") as f:
        magic, first = _scanned_load(f, path, None)
        if magic != _LEGACY_MAGIC:
            return magic, first.unknown_globals, False
        protocol, _ = _scanned_load(f, path, None)
        if protocol != 1001:
            raise CorruptFile(f"{path}: unsupported legacy torch.save protocol {protocol!r:.40}")
        _sys_info, _ = _scanned_load(f, path, None)
        storages: dict[str, _StorageRef] = {}
        pending: dict[str, tuple[str, int]] = {}

        def storage(pid):
            if not isinstance(pid, tuple) or not pid or pid[0] != "storage":
                raise pickle.UnpicklingError(f"unknown persistent id {pid!r:.80}")
            _, stype, key, _location, numel = pid[:5]
            view = pid[5] if len(pid) > 5 else None
            key = str(key)
            if key not in storages:
                ref = _StorageRef(_storage_dtype(stype), numel, lambda k=key: _legacy_data[k])
                storages[key] = ref
                pending[key] = (ref.dtype, int(numel))
            if view is not None:
                # (view_key, offset, size): a storage slice in very old files
                base = storages[key]
                _vkey, voff, vsize = view
                return _StorageRef(base.dtype, vsize,
                                   lambda b=base, o=int(voff), n=int(vsize): b.array()[o * _itemsize(b.dtype):
                                                                                      (o + n) * _itemsize(b.dtype)])
            return storages[key]

        obj, main = _scanned_load(f, path, storage)
        keys, _ = _scanned_load(f, path, None)
        if not isinstance(keys, (list, tuple)):
            raise CorruptFile(f"{path}: the legacy torch.save storage list is damaged")
        start = f.tell()
    size = os.path.getsize(path)
    offsets: dict[str, tuple[int, int]] = {}
    pos = start
    with open(path, "rb") as f:
        for key in keys:
            f.seek(pos)
            head = f.read(8)
            if len(head) < 8:
                raise CorruptFile(f"{path}: truncated (storage {key} is missing); re-save or re-download it")
            (numel,) = struct.unpack("<q", head)
            dtype = pending.get(str(key), ("uint8", 0))[0]
            nbytes = numel * _itemsize(dtype)
            if pos + 8 + nbytes > size:
                raise CorruptFile(f"{path}: truncated (storage {key} is cut short); re-save or re-download it")
            offsets[str(key)] = (pos + 8, nbytes)
            pos += 8 + nbytes
    _legacy_data = _LazyMap(path, offsets)
    return obj, main.unknown_globals, True


def _scanned_load(f, path: str, storages) -> tuple[Any, "_RestrictedUnpickler"]:
    """Pre-scan the next pickle in ``f`` (memo indices, sizes), then unpickle it restrictedly."""
    pos = f.tell()
    pickles.scan_stream(f, path=path, what="pickle")
    f.seek(pos)
    up = _RestrictedUnpickler(f, storages)
    return up.load(), up


class _LazyMap:
    def __init__(self, path, offsets):
        self.path, self.offsets = path, offsets

    def __getitem__(self, key):
        off, n = self.offsets[key]
        if n == 0:
            return np.zeros(0, np.uint8)
        return np.memmap(self.path, dtype=np.uint8, mode="r", offset=off, shape=(n,))

