"""The files behind a Keras model: the zip member and HDF5 access, lazy weight loaders, weights-only .h5 files."""
from __future__ import annotations

import io
import struct
import zipfile

from ...errors import UnsupportedFormat, text_of
from ...graph import Model, Tensor, WeightEntry
from .config import _str_list


def _zlib_error():
    import zlib

    return zlib.error


def _h5py():
    try:
        import h5py
    except ImportError as exc:  # pragma: no cover - h5py ships with the TF stack
        raise UnsupportedFormat("reading Keras files needs h5py; install it and try again") from exc
    return h5py


def _h5_reason(exc: BaseException) -> str:
    # h5py appends "(file name = ..., errno = ...)": the reason is what comes before it
    return text_of(text_of(exc, 10_000).split("(")[0].strip(), 160) or type(exc).__name__


class _nullcontext:
    def __init__(self, obj):
        self.obj = obj

    def __enter__(self):
        return self.obj

    def __exit__(self, *exc):
        close = getattr(self.obj, "close", None)
        if close:
            close()


class _Window(io.RawIOBase):
    """A read-only, seekable view of ``size`` bytes at ``offset`` of a file (a stored zip member)."""

    def __init__(self, path: str, offset: int, size: int):
        super().__init__()
        self._f = open(path, "rb")
        self._off, self._size, self._pos = offset, size, 0

    def readable(self):
        return True

    def seekable(self):
        return True

    def tell(self):
        return self._pos

    def seek(self, pos, whence=0):
        base = {0: 0, 1: self._pos, 2: self._size}[whence]
        self._pos = max(0, base + pos)
        return self._pos

    def readinto(self, b):
        n = max(0, min(len(b), self._size - self._pos))
        if n == 0:
            return 0
        self._f.seek(self._off + self._pos)
        data = self._f.read(n)
        b[: len(data)] = data
        self._pos += len(data)
        return len(data)

    def close(self):
        self._f.close()
        super().close()


def _member_opener(path: str, info: zipfile.ZipInfo):
    """A function returning a fresh seekable file object for one zip member (no copy for stored members)."""
    if info.compress_type == zipfile.ZIP_STORED:
        with open(path, "rb") as f:
            f.seek(info.header_offset)
            header = f.read(30)
        if len(header) == 30 and header[:4] == b"PK\x03\x04":
            n, m = struct.unpack("<HH", header[26:30])
            offset = info.header_offset + 30 + n + m
            return lambda: _Window(path, offset, info.file_size)

    def open_member():
        zf = zipfile.ZipFile(path)
        member = zf.open(info)
        orig_close = member.close

        def close():
            orig_close()
            zf.close()
        member.close = close
        return member
    return open_member


def _h5_loader(opener, ds_path: str):
    def load():
        import numpy as np

        h5py = _h5py()
        with opener() as fobj:
            f = fobj if isinstance(fobj, h5py.File) else h5py.File(fobj, "r")
            try:
                return np.asarray(f[ds_path][()])
            finally:
                if f is not fobj:
                    f.close()
    return load


def _ds_dtype(ds) -> str | None:
    try:
        return str(ds.dtype)
    except Exception:
        return None


def _sorted_keys(group) -> list[str]:
    return sorted(group.keys(), key=lambda k: (0, int(k)) if k.isdigit() else (1, k))


def _datasets(group, prefix: str = ""):
    h5py = _h5py()
    for k in _sorted_keys(group):
        item = group[k]
        rel = f"{prefix}{k}"
        if isinstance(item, h5py.Dataset):
            yield rel, item
        elif isinstance(item, h5py.Group):
            yield from _datasets(item, rel + "/")


def _weights_only_h5(path: str, h5, opener, model: Model) -> Model:
    h5py = _h5py()
    entries: list[WeightEntry] = []
    root = h5["model_weights"] if "model_weights" in h5 else h5
    layer_names = _str_list(root.attrs.get("layer_names"))
    if layer_names:  # Keras 2 save_weights / legacy layout
        for lname in layer_names:
            if lname not in root:
                continue
            g = root[lname]
            wnames = _str_list(g.attrs.get("weight_names")) or [rel for rel, _ in _datasets(g)]
            for wn in wnames:
                if wn in g and isinstance(g[wn], h5py.Dataset):
                    ds = g[wn]
                    name = wn.split(":")[0]
                    if not name.startswith(lname + "/"):
                        name = f"{lname}/{name}"
                    entries.append(WeightEntry(name, Tensor(name, _ds_dtype(ds), tuple(ds.shape),
                                                            _h5_loader(opener, ds.name))))
    elif "layers" in h5 or "vars" in h5:  # Keras 3 .weights.h5
        for top in ("layers", "vars"):
            if top not in h5:
                continue
            for rel, ds in _datasets(h5[top], top + "/"):
                parts = rel.split("/")
                name = _k3_weight_name(h5, parts)
                entries.append(WeightEntry(name, Tensor(name, _ds_dtype(ds), tuple(ds.shape),
                                                        _h5_loader(opener, ds.name))))
    else:
        raise UnsupportedFormat(f"{path}: an HDF5 file, but neither a Keras model nor Keras weights (no "
                                f"model_config, model_weights or layer groups); open a Keras .h5/.keras file")
    model.weights = entries
    model.extra["contents"] = "weights only"
    model.warnings.append("this file holds weights only (no model config); load the architecture to see a graph")
    return model


def _k3_weight_name(h5, parts: list[str]) -> str:
    """``layers/dense/vars/0`` -> ``<layer name>/0`` using the ``name`` attribute of each ``vars`` group."""
    out = []
    g = h5
    for i, p in enumerate(parts):
        g = g[p]
        if p == "vars" or p == "layers":
            continue
        if i == len(parts) - 1:
            out.append(p)
            break
        name = None
        try:
            if "vars" in g:
                name = g["vars"].attrs.get("name")
        except TypeError:
            name = None
        if isinstance(name, bytes):
            name = name.decode()
        out.append(str(name) if name else p)
    return "/".join(out)


def h5_layer_classes(path: str) -> set[str]:
    """Layer class names in an .h5 model's stored config (read as data; nothing is run)."""
    import json

    try:
        import h5py
        with h5py.File(path, "r") as f:
            raw = f.attrs.get("model_config")
        if raw is None:
            return set()
        cfg = json.loads(raw.decode() if isinstance(raw, bytes) else raw)
    except Exception:
        return set()
    found: set[str] = set()

    def walk(x):
        if isinstance(x, dict):
            if isinstance(x.get("class_name"), str):
                found.add(x["class_name"])
            for v in x.values():
                walk(v)
        elif isinstance(x, list):
            for v in x:
                walk(v)

    walk(cfg)
    return found


def safe_mode_refusal(exc: BaseException) -> str | None:
    """What Keras' safe mode refused to deserialise, in words (None: not a safe-mode refusal): a
    TorchModuleWrapper holds a pickled torch module, a Lambda layer Python bytecode."""
    text = str(exc)
    if "torch.nn.Module" in text or "TorchModuleWrapper" in text:
        return "a pickled torch module (a TorchModuleWrapper layer, unpickled with torch.load)"
    if "safe_mode" in text or "Lambda" in text.replace("OpLambda", ""):
        return "Python code (a Lambda layer)"
    return None
