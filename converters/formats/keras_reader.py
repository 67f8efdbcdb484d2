"""Keras readers: Keras 3 ``.keras`` archives and legacy HDF5 ``.h5`` files (whole models or weights only).

The graph is built by *reading* the stored configuration (``config.json`` in a ``.keras`` zip, the
``model_config`` attribute of an ``.h5``), never by running the model:

* one :class:`Node` per layer call (``op_type`` = layer class name, ``attrs`` = the layer config without
  initializers, regularizers, constraints and other bulky fields), InputLayers become graph inputs;
* nested models (Functional or Sequential used as a layer) are expanded in place; their layers get the
  scope ``outer/inner`` so the view can collapse them;
* value shapes come from the config itself (Keras 3 records the shape and dtype of every tensor passed
  between layers; batch dim ``None``). Shapes the config lacks (the model outputs; every tensor of a
  Keras 2 config) are inferred layer by layer: simple rules for common layers first, then by building
  that single built-in Keras layer from its config and calling it on symbolic tensors (no data, no
  weights loaded). Layers whose config names a Lambda, a custom class or any module outside Keras are
  never instantiated without ``trust=True``: their outputs keep unknown shapes and the model gets a
  warning. Keras refuses Lambda layers in safe mode because deserialising them runs Python bytecode
  stored in the file; with ``trust=True`` that bytecode may run (to infer the missing shapes);
* weights are read lazily with h5py from ``model.weights.h5`` inside the archive (or the ``.h5``
  ``model_weights`` group): a :class:`Tensor` reads its dataset when asked. ``param_count`` is the number
  of elements of every stored layer weight (equals ``model.count_params()``; optimizer state is skipped).

``.h5`` files without a model config (``save_weights`` output, Keras 2 or Keras 3 layout) load as a
weights-only :class:`Model`.
"""
from __future__ import annotations

import io
import json
import os
import struct
import zipfile
from typing import Any, Callable

from ..errors import CorruptFile, UnsupportedFormat
from ..graph import Graph, Model, Node, Tensor, Value, WeightEntry
from ..safety.archives import open_zip, read_member

__all__ = ["load_keras", "load_h5"]

_LAMBDA_CLASSES = {"Lambda", "__lambda__"}
_MODEL_CLASSES = {"Functional", "Model", "Sequential"}
_BULKY_SUFFIXES = ("_initializer", "_regularizer", "_constraint")
_BULKY_KEYS = {"name", "layers", "input_layers", "output_layers", "build_input_shape", "build_config",
               "compile_config", "trainable", "batch_input_shape", "batch_shape"}

# Variable names of built-in layers in the order Keras creates (and stores) them. Used only when the
# number of stored variables matches; otherwise variables are named by index.
_VAR_NAMES = {
    **{c: ["kernel", "bias"] for c in (
        "Dense", "Conv1D", "Conv2D", "Conv3D", "Conv1DTranspose", "Conv2DTranspose", "Conv3DTranspose",
        "DepthwiseConv1D", "DepthwiseConv2D", "EinsumDense", "Convolution2D")},
    "SeparableConv1D": ["depthwise_kernel", "pointwise_kernel", "bias"],
    "SeparableConv2D": ["depthwise_kernel", "pointwise_kernel", "bias"],
    "Embedding": ["embeddings"],
    "PReLU": ["alpha"],
}

_SAME_SHAPE = {
    "Activation", "ReLU", "LeakyReLU", "ELU", "Softmax", "Dropout", "SpatialDropout1D", "SpatialDropout2D",
    "SpatialDropout3D", "GaussianNoise", "GaussianDropout", "AlphaDropout", "BatchNormalization",
    "LayerNormalization", "GroupNormalization", "UnitNormalization", "Identity", "ActivityRegularization",
    "PReLU", "Rescaling", "Normalization", "ThresholdedReLU",
}
_ELEMENTWISE_MERGE = {"Add", "Subtract", "Multiply", "Average", "Maximum", "Minimum"}


# ---- entry points -----------------------------------------------------------------------------------
def _finish(model: Model, config, builder: "_Builder", progress: Callable) -> Model:
    """Shapes, the graph and the description: the last steps of both Keras readers."""
    progress(0.7, "inferring shapes")
    builder.infer_shapes()
    model.graph = builder.graph
    _describe(model, config, builder)
    progress(1.0, "done")
    return model


# config.json / metadata.json: text describing layers; even huge models stay far below this.
_MAX_CONFIG = 512 * 1024 ** 2


def load_keras(path: str, *, trust: bool = False, progress: Callable = lambda *a: None, **options) -> Model:
    """Read a Keras 3 ``.keras`` archive (config.json + metadata.json + model.weights.h5) without running it.

    The weights file is HDF5: the read runs first in a forked child with a time limit, as for ``.h5``."""
    if not options.pop("_probed", False):
        from ..safety.probe import probe

        probe(lambda: load_keras(path, trust=trust, _probed=True, **options), path=path,
              what="weights (HDF5 inside the archive)")
    progress(0.05, "reading the archive")
    try:
        zf = open_zip(path, ".keras archive")
        names = set(zf.namelist())
        if "config.json" not in names:
            raise CorruptFile(f"{path}: the .keras archive has no config.json; re-save the model with "
                              f"model.save('model.keras')")
        config = json.loads(read_member(path, zf, "config.json", _MAX_CONFIG, ".keras archive"))
        metadata = json.loads(read_member(path, zf, "metadata.json", _MAX_CONFIG, ".keras archive")) \
            if "metadata.json" in names else {}
        weights_member = zf.getinfo("model.weights.h5") if "model.weights.h5" in names else None
        zf.close()
    except (zipfile.BadZipFile, EOFError, _zlib_error()) as exc:
        raise CorruptFile(f"{path}: damaged or truncated .keras archive ({exc}); re-save or re-download it") \
            from None
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as exc:
        raise CorruptFile(f"{path}: config.json inside the archive is not valid JSON ({exc}); the file is "
                          f"damaged") from None
    if not isinstance(config, dict):
        raise CorruptFile(f"{path}: config.json does not describe a Keras model")

    model = Model("keras", path)
    model.extra.update({k: v for k, v in metadata.items() if k in ("keras_version", "date_saved")})
    opener = _member_opener(path, weights_member) if weights_member is not None else None
    if opener is None:
        model.warnings.append("the archive holds no model.weights.h5; weights are not shown")
    progress(0.2, "building the graph from config.json")
    builder = _Builder(path, trust, model.warnings)
    builder.build(config)
    progress(0.5, "reading weights")
    if opener is not None:
        try:
            with opener() as fobj, _h5py().File(fobj, "r") as h5:
                builder.attach_keras3_weights(h5, opener)
        except OSError as exc:
            raise CorruptFile(f"{path}: model.weights.h5 inside the archive cannot be read ({exc}); the file "
                              f"is damaged or truncated") from None
    return _finish(model, config, builder, progress)


def load_h5(path: str, *, trust: bool = False, progress: Callable = lambda *a: None, **options) -> Model:
    """Read a legacy Keras HDF5 file: a whole model (``model_config`` + ``model_weights``) or weights only.

    libhdf5 can loop forever on damaged metadata, so the same read runs first in a forked child with a
    time limit (:mod:`converters.safety.probe`)."""
    if not options.pop("_probed", False):
        from ..safety.probe import probe

        progress(0.02, "checking the HDF5 structure")
        probe(lambda: load_h5(path, trust=trust, _probed=True, **options), path=path, what="HDF5 structure")
    h5py = _h5py()
    progress(0.05, "opening the HDF5 file")
    try:
        h5 = h5py.File(path, "r")
    except OSError as exc:
        raise CorruptFile(f"{path}: not a readable HDF5 file ({_h5_reason(exc)}); it may be damaged or "
                          f"truncated") from None
    with h5:
        opener = lambda: _nullcontext(h5py.File(path, "r"))  # noqa: E731 - a fresh handle per lazy read
        raw = h5.attrs.get("model_config")
        model = Model("keras.h5", path)
        for k in ("keras_version", "backend"):
            v = h5.attrs.get(k) if k in h5.attrs else (h5["model_weights"].attrs.get(k)
                                                       if "model_weights" in h5 else None)
            if v is not None:
                model.extra[k] = v.decode() if isinstance(v, bytes) else str(v)
        if raw is None:
            return _weights_only_h5(path, h5, opener, model)
        try:
            config = json.loads(raw.decode() if isinstance(raw, bytes) else str(raw))
        except json.JSONDecodeError as exc:
            raise CorruptFile(f"{path}: the model_config attribute is not valid JSON ({exc}); the file is "
                              f"damaged") from None
        progress(0.2, "building the graph from model_config")
        builder = _Builder(path, trust, model.warnings)
        builder.build(config)
        progress(0.5, "reading weights")
        if "model_weights" in h5:
            builder.attach_legacy_weights(h5["model_weights"], "model_weights", opener)
        else:
            model.warnings.append("the file holds no model_weights group; weights are not shown")
    return _finish(model, config, builder, progress)


# ---- helpers: files -----------------------------------------------------------------------------------
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
    text = " ".join(str(exc).split())
    return text.split("(")[0].strip()[:160] or type(exc).__name__


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


# ---- the config walker ---------------------------------------------------------------------------------
def _classify(cfg: Any) -> tuple[bool, bool]:
    """(has_lambda, has_custom): whether the config names a Lambda or anything outside the Keras packages."""
    has_lambda = has_custom = False
    stack = [cfg]
    while stack:
        x = stack.pop()
        if isinstance(x, dict):
            cls = x.get("class_name")
            if cls in _LAMBDA_CLASSES:
                has_lambda = True
            mod = x.get("module")
            if isinstance(mod, str) and cls is not None and not (
                    mod == "keras" or mod.startswith(("keras.", "tf_keras", "builtins"))):
                has_custom = True
            reg = x.get("registered_name")
            if isinstance(reg, str) and ">" in reg:
                has_custom = True
            stack.extend(x.values())
        elif isinstance(x, list):
            stack.extend(x)
    return has_lambda, has_custom


def _simplify(x: Any, depth: int = 0) -> Any:
    """Serialized Keras objects become their class name (plus a small config); dtype policies their name."""
    if isinstance(x, dict):
        if x.get("class_name") == "DTypePolicy" or x.get("class_name") == "Policy":
            return (x.get("config") or {}).get("name")
        if "class_name" in x and "config" in x:
            cfg = x.get("config")
            if x["class_name"] in _LAMBDA_CLASSES:
                return "<python function>"
            if not cfg or depth > 1:
                return x["class_name"]
            return {"class_name": x["class_name"], **{k: _simplify(v, depth + 1) for k, v in cfg.items()
                                                      if k not in ("code", "defaults", "closure")}}
        return {k: _simplify(v, depth + 1) for k, v in x.items()}
    if isinstance(x, list):
        return [_simplify(v, depth + 1) for v in x]
    return x


def _attrs(layer_cfg: dict) -> dict:
    cfg = layer_cfg.get("config") or {}
    out = {}
    for k, v in cfg.items():
        if k in _BULKY_KEYS or k.endswith(_BULKY_SUFFIXES) or k.endswith("_regularizer"):
            continue
        if k == "function" and layer_cfg.get("class_name") in _LAMBDA_CLASSES:
            out[k] = "<python function: runs only when the file is trusted>"
            continue
        if v is None:
            continue
        out[k] = _simplify(v)
    return out


def _norm_shape(s) -> tuple | None:
    if s is None or not isinstance(s, (list, tuple)):
        return None
    return tuple(int(d) if isinstance(d, (int, float)) and d is not None and d >= 0 else None for d in s)


def _dtype_name(d) -> str | None:
    if isinstance(d, dict):
        d = (d.get("config") or {}).get("name")
    if not isinstance(d, str):
        return None
    if d.startswith("mixed_"):
        return d[len("mixed_"):]
    return d


def _is_tensor_ref(x) -> bool:
    return isinstance(x, dict) and x.get("class_name") == "__keras_tensor__"


def _tensor_refs(x, out: list) -> list:
    """Keras 3 call arguments: every ``__keras_tensor__`` in order, as (layer, node, tensor, shape, dtype)."""
    if _is_tensor_ref(x):
        c = x.get("config") or {}
        h = c.get("keras_history") or [None, 0, 0]
        out.append((h[0], int(h[1]), int(h[2]), _norm_shape(c.get("shape")), c.get("dtype")))
    elif isinstance(x, dict):
        for v in x.values():
            _tensor_refs(v, out)
    elif isinstance(x, (list, tuple)):
        for v in x:
            _tensor_refs(v, out)
    return out


def _io_specs(spec) -> list[tuple[str, int, int]]:
    """input_layers / output_layers in any of Keras' spellings -> [(layer, node, tensor), ...]."""
    if spec is None:
        return []
    if isinstance(spec, dict):
        return [t for v in spec.values() for t in _io_specs(v)]
    if isinstance(spec, (list, tuple)) and spec and isinstance(spec[0], str):
        return [(spec[0], int(spec[1]) if len(spec) > 1 else 0, int(spec[2]) if len(spec) > 2 else 0)]
    return [t for v in spec for t in _io_specs(v)]


def _calls_of(layer: dict) -> list[dict]:
    """Each call of a layer as {"refs": [(layer, node, tensor, shape, dtype)], "fmt", "args", "kwargs"}."""
    calls = []
    for node in layer.get("inbound_nodes") or []:
        if isinstance(node, dict):  # Keras 3: {"args": [...], "kwargs": {...}}
            refs = _tensor_refs(node.get("args", []), []) + _tensor_refs(node.get("kwargs", {}), [])
            calls.append({"refs": refs, "fmt": 3, "args": node.get("args", []), "kwargs": node.get("kwargs", {})})
        elif isinstance(node, list):  # Keras 2: [[layer, node, tensor, kwargs], ...]
            refs, kwargs = [], {}
            for t in node:
                if isinstance(t, list) and t and isinstance(t[0], str):
                    refs.append((t[0], int(t[1]) if len(t) > 1 else 0, int(t[2]) if len(t) > 2 else 0, None, None))
                    if len(t) > 3 and isinstance(t[3], dict):
                        kwargs = t[3]
            calls.append({"refs": refs, "fmt": 2, "args": None, "kwargs": kwargs})
    return calls


class _Builder:
    """Turns a Keras model config into a neutral Graph; remembers what it needs for weights and shapes."""

    def __init__(self, path: str, trust: bool, warnings: list[str]):
        self.path, self.trust, self.warnings = path, trust, warnings
        self.graph = Graph()
        self.layer_nodes: dict[str, list[Node]] = {}   # layer path (scope/name) -> its call nodes
        self.layer_cfgs: dict[str, dict] = {}          # layer path -> layer config
        self.model_paths: dict[str, dict] = {}         # nested model path ('' = root) -> its config
        self.call_info: dict[str, dict] = {}           # node name -> call record (for shape inference)
        self.untrusted_layers: list[str] = []
        self.subclassed = False  # no layer graph in the config: one node per weight-holding sub-layer

    # -- graph -----------------------------------------------------------------------------------------
    def build(self, config: dict) -> None:
        cls = config.get("class_name")
        inner = config.get("config") or {}
        self.graph.name = inner.get("name", "") if isinstance(inner, dict) else ""
        if cls == "Sequential" or (isinstance(inner, dict) and "layers" in inner and cls not in ("Functional", "Model")
                                   and "input_layers" not in inner):
            outs = self._expand_sequential(config, "", None)
        elif isinstance(inner, dict) and "layers" in inner:
            outs = self._expand_functional(config, "", None)
        else:
            self.model_paths[""] = config
            self.subclassed = True
            self.warnings.append(
                f"the model is a subclassed '{cls}' whose call() is Python code; its layers and weights are "
                f"shown without connections")
            outs = []
        self.graph.outputs = [o for o in outs if o]
        if self.untrusted_layers:
            shown = ", ".join(self.untrusted_layers[:5]) + (" …" if len(self.untrusted_layers) > 5 else "")
            lambdas = [p for p in self.untrusted_layers if _classify(self.layer_cfgs.get(p, {}))[0]]
            what = ("Lambda layers (Python bytecode stored in the file)" if len(lambdas) == len(self.untrusted_layers)
                    else "custom classes (code from Python packages)" if not lambdas
                    else "Lambda layers or custom classes")
            if self.trust:
                self.warnings.append(
                    f"{len(self.untrusted_layers)} layer(s) are {what} ({shown}); the file is trusted, so "
                    f"Keras may run that code to infer the shapes the file does not record")
            else:
                self.warnings.append(
                    f"{len(self.untrusted_layers)} layer(s) are {what} ({shown}); they were not run, so "
                    f"shapes the file does not record stay unknown; open the file with trust to let Keras "
                    f"deserialise and call them (that runs the code)")

    def _value(self, name: str, shape=None, dtype=None) -> str:
        v = self.graph.values.get(name)
        if v is None:
            v = self.graph.values[name] = Value(name)
        if shape is not None and v.shape is None:
            v.shape = shape
        if dtype and v.dtype is None:
            v.dtype = _dtype_name(dtype)
        return name

    def _add_input(self, layer: dict, scope: str) -> str:
        cfg = layer.get("config") or {}
        name = _join(scope, cfg.get("name") or layer.get("name") or "input")
        shape = _norm_shape(cfg.get("batch_shape") or cfg.get("batch_input_shape"))
        if shape is None and cfg.get("shape") is not None:
            shape = (None, *(_norm_shape(cfg["shape"]) or ()))
        self._value(name, shape, cfg.get("dtype") or "float32")
        self.graph.inputs.append(name)
        return name

    def _register_layer(self, layer: dict, lpath: str) -> None:
        self.layer_cfgs[lpath] = layer
        lam, custom = _classify(layer)
        if lam or custom:
            self.untrusted_layers.append(lpath)

    def _add_call(self, layer: dict, scope: str, k: int, inputs: list[str], n_out: int, call: dict | None) -> list[str]:
        lname = (layer.get("config") or {}).get("name") or layer.get("name") or layer.get("class_name", "layer")
        lpath = _join(scope, lname)
        node_name = lpath + (f"#{k}" if k else "")
        outs = [node_name + (f":{t}" if t else "") for t in range(max(1, n_out))]
        for o in outs:
            self._value(o)
        node = Node(node_name, str(layer.get("class_name", "Layer")), list(inputs), outs, _attrs(layer), scope)
        if layer.get("class_name") in _LAMBDA_CLASSES or _classify(layer) != (False, False):
            node.attrs["untrusted"] = True
        self.graph.nodes.append(node)
        self.layer_nodes.setdefault(lpath, []).append(node)
        if lpath not in self.layer_cfgs:
            self._register_layer(layer, lpath)
        self.call_info[node_name] = {"layer": layer, "call": call}
        return outs

    def _expand_functional(self, config: dict, scope: str, given_inputs: list[str] | None) -> list[str]:
        inner = config.get("config") or {}
        self.model_paths[scope] = config
        layers = [l for l in inner.get("layers", []) if isinstance(l, dict)]
        by_name = {(l.get("name") or (l.get("config") or {}).get("name")): l for l in layers}
        input_specs = _io_specs(inner.get("input_layers"))
        output_specs = _io_specs(inner.get("output_layers"))
        # how many outputs each (layer, call) has: the largest tensor index anyone refers to
        n_out: dict[tuple[str, int], int] = {}
        calls: dict[str, list[dict]] = {}
        for l in layers:
            lname = l.get("name") or (l.get("config") or {}).get("name")
            calls[lname] = _calls_of(l)
            for c in calls[lname]:
                for (src, k, t, _s, _d) in c["refs"]:
                    n_out[(src, k)] = max(n_out.get((src, k), 1), t + 1)
        # Keras 2 configs count a nested model's own first call (on its InputLayer) in node indices
        # (tf_keras `_should_skip_first_node`); Keras 3 configs do not.
        legacy = any(c["fmt"] == 2 for cs in calls.values() for c in cs)
        skip = {}
        if legacy:
            for l in layers:
                sub = (l.get("config") or {}).get("layers")
                if isinstance(sub, list) and sub and isinstance(sub[0], dict) and \
                        sub[0].get("class_name") == "InputLayer":
                    skip[l.get("name") or (l.get("config") or {}).get("name")] = 1
        if skip:
            for cs in calls.values():
                for c in cs:
                    c["refs"] = [(src, k - skip.get(src, 0), t, sh, dt) for (src, k, t, sh, dt) in c["refs"]]
            output_specs = [(src, k - skip.get(src, 0), t) for (src, k, t) in output_specs]
            n_out = {}
            for cs in calls.values():
                for c in cs:
                    for (src, k, t, _s, _d) in c["refs"]:
                        n_out[(src, k)] = max(n_out.get((src, k), 1), t + 1)
        for (src, k, t) in output_specs:
            n_out[(src, k)] = max(n_out.get((src, k), 1), t + 1)

        produced: dict[tuple[str, int, int], str] = {}
        given = list(given_inputs or [])
        for i, (lname, k, t) in enumerate(input_specs):
            layer = by_name.get(lname)
            if given_inputs is not None and i < len(given):
                produced[(lname, k, t)] = given[i]
            elif layer is not None:
                produced[(lname, k, t)] = self._add_input(layer, scope) if not scope else \
                    self._value(_join(scope, lname))
        # input layers not listed in input_layers (rare) still become inputs
        for l in layers:
            lname = l.get("name") or (l.get("config") or {}).get("name")
            if l.get("class_name") == "InputLayer" and (lname, 0, 0) not in produced:
                produced[(lname, 0, 0)] = self._add_input(l, scope)

        pending = [(l, k, c) for l in layers if l.get("class_name") != "InputLayer"
                   for k, c in enumerate(calls[l.get("name") or (l.get("config") or {}).get("name")])]
        while pending:
            progressed = False
            rest = []
            for (l, k, c) in pending:
                if not all((src, kk, t) in produced for (src, kk, t, _s, _d) in c["refs"]):
                    rest.append((l, k, c))
                    continue
                progressed = True
                ins = []
                for (src, kk, t, shp, dt) in c["refs"]:
                    v = produced[(src, kk, t)]
                    self._value(v, shp, dt)
                    ins.append(v)
                lname = l.get("name") or (l.get("config") or {}).get("name")
                outs = self._call_layer(l, scope, k, ins, n_out.get((lname, k), 1), c)
                for t, o in enumerate(outs):
                    produced[(lname, k, t)] = o
            if not progressed:  # a reference to a layer that is not in the config: show what we have
                self.warnings.append(f"{len(rest)} layer call(s) in '{scope or self.graph.name}' refer to "
                                     f"tensors the config does not define; they are left out")
                break
            pending = rest
        return [produced.get(spec, "") for spec in output_specs]

    def _call_layer(self, layer: dict, scope: str, k: int, ins: list[str], n_out: int, call: dict) -> list[str]:
        cls = layer.get("class_name")
        inner = layer.get("config") or {}
        if isinstance(inner, dict) and isinstance(inner.get("layers"), list):  # a nested model
            lname = inner.get("name") or layer.get("name")
            sub_scope = _join(scope, lname) + (f"#{k}" if k else "")
            if cls == "Sequential" or "input_layers" not in inner:
                return self._expand_sequential(layer, sub_scope, ins[:1])
            return self._expand_functional(layer, sub_scope, ins)
        return self._add_call(layer, scope, k, ins, n_out, call)

    def _expand_sequential(self, config: dict, scope: str, given_inputs: list[str] | None) -> list[str]:
        inner = config.get("config") or {}
        self.model_paths[scope] = config
        layers = [l for l in inner.get("layers", []) if isinstance(l, dict)]
        prev: str | None = given_inputs[0] if given_inputs else None
        if layers and layers[0].get("class_name") == "InputLayer":
            first, layers = layers[0], layers[1:]
            if prev is None:
                prev = self._add_input(first, scope)
        if prev is None:
            shape = _norm_shape(inner.get("build_input_shape"))
            if shape is None and layers:
                c0 = layers[0].get("config") or {}
                shape = _norm_shape(c0.get("batch_input_shape") or c0.get("batch_shape")) or _norm_shape(
                    (layers[0].get("build_config") or {}).get("input_shape"))
            name = _join(scope, "input")
            self._value(name, shape, "float32")
            self.graph.inputs.append(name)
            prev = name
        for l in layers:
            shp = _norm_shape((l.get("build_config") or {}).get("input_shape"))
            if shp is not None:
                self._value(prev, shp)
            outs = self._call_layer(l, scope, 0, [prev], 1, {"refs": [], "fmt": 2, "args": None, "kwargs": {}})
            prev = outs[0] if outs else prev
        return [prev]

    # -- weights ---------------------------------------------------------------------------------------
    def _attach(self, lpath: str, var: str, ds, opener, ds_path: str) -> None:
        name = _join(lpath, var)
        base, i = name, 1
        while name in self.graph.initializers:
            name = f"{base}_{i}"
            i += 1
        shape = tuple(int(d) for d in ds.shape)
        dtype = _ds_dtype(ds)
        self.graph.initializers[name] = Tensor(name, dtype, shape, _h5_loader(opener, ds_path))
        self.graph.values[name] = Value(name, dtype, shape)
        nodes = self.layer_nodes.get(lpath)
        if not nodes and self.subclassed:
            node = Node(lpath, "Layer", [], [], {}, lpath.rsplit("/", 1)[0] if "/" in lpath else "")
            self.graph.nodes.append(node)
            nodes = self.layer_nodes[lpath] = [node]
        if nodes:
            for n in nodes:  # a shared layer: every call reads the same weights
                n.inputs.append(name)

    def attach_keras3_weights(self, h5, opener) -> None:
        """Keras 3 ``model.weights.h5``: groups named by attribute path, ``vars`` groups carry the layer name."""
        self._attach_k3_model(h5, "", opener)
        if self.subclassed:  # sub-layers of a subclassed model are stored under their attribute names
            h5py = _h5py()
            for gname in _sorted_keys(h5):
                g = h5[gname]
                if gname in ("layers", "vars", "optimizer") or not isinstance(g, h5py.Group):
                    continue
                lname = g["vars"].attrs.get("name") if "vars" in g else None
                lname = (lname.decode() if isinstance(lname, bytes) else str(lname)) if lname else gname
                for rel, ds in _datasets(g):
                    self._attach(lname, rel.replace("vars/", ""), ds, opener, ds.name)

    def _attach_k3_model(self, group, mpath: str, opener) -> None:
        h5py = _h5py()
        if "vars" in group:
            for key in _sorted_keys(group["vars"]):
                ds = group["vars"][key]
                if isinstance(ds, h5py.Dataset):
                    self._attach(mpath or self.graph.name or "model", key, ds, opener, ds.name)
        if "layers" not in group:
            return
        expected = _expected_group_names(self.model_paths.get(mpath) or {})
        for gname in group["layers"]:
            g = group["layers"][gname]
            if not isinstance(g, h5py.Group):
                continue
            lname = None
            if "vars" in g:
                lname = g["vars"].attrs.get("name")
                if isinstance(lname, bytes):
                    lname = lname.decode()
            # files without the name attribute (tf_keras .keras): groups are named after the layer class
            lname = str(lname) if lname else expected.get(gname, gname)
            lpath = _join(mpath, lname)
            if lpath in self.model_paths:
                self._attach_k3_model(g, lpath, opener)
                continue
            cls = (self.layer_cfgs.get(lpath) or {}).get("class_name")
            cfg = (self.layer_cfgs.get(lpath) or {}).get("config") or {}
            own = [g["vars"][k] for k in _sorted_keys(g["vars"])] if "vars" in g else []
            names = _var_names(cls, cfg, len(own))
            for var, ds in zip(names, own):
                if isinstance(ds, h5py.Dataset):
                    self._attach(lpath, var, ds, opener, ds.name)
            # sub-layers held as attributes (e.g. attention projections, RNN cells): keep their paths
            for sub in g:
                if sub == "vars" or not isinstance(g[sub], h5py.Group):
                    continue
                for rel, ds in _datasets(g[sub]):
                    self._attach(lpath, f"{sub}/{rel.replace('vars/', '')}", ds, opener, ds.name)

    def attach_legacy_weights(self, group, prefix: str, opener) -> None:
        """Legacy HDF5 ``model_weights``: one group per top-level layer, ``weight_names`` lists its datasets."""
        h5py = _h5py()
        names = _str_list(group.attrs.get("layer_names")) or [k for k in group if isinstance(group[k], h5py.Group)]
        for lname in names:
            if lname not in group:
                continue
            g = group[lname]
            wnames = _str_list(g.attrs.get("weight_names"))
            if not wnames:
                wnames = [rel for rel, _ds in _datasets(g)]
            for wn in wnames:
                if wn not in g:
                    continue
                ds = g[wn]
                if not isinstance(ds, h5py.Dataset):
                    continue
                lpath, var = self._legacy_owner(lname, wn)
                self._attach(lpath, var, ds, opener, ds.name)

    def _legacy_owner(self, top: str, wname: str) -> tuple[str, str]:
        parts = wname.split(":")[0].split("/")
        var = parts[-1]
        cands = [p for p in self.layer_cfgs if p == top or p.startswith(top + "/")]
        if top in self.layer_cfgs or not cands:
            return top, var
        # nested model: find the inner layer whose path ends with the most of the weight's own path
        best, score = None, -1
        for c in cands:
            cp = c.split("/")
            s = 0
            for a, b in zip(reversed(cp), reversed(parts[:-1])):
                if a != b:
                    break
                s += 1
            if s > score:
                best, score = c, s
        if best is None or score == 0:
            return top, "/".join(parts)
        return best, var

    # -- shapes ----------------------------------------------------------------------------------------
    def infer_shapes(self) -> None:
        todo = [n for n in self.graph.nodes if any(self.graph.value(o).shape is None for o in n.outputs)]
        if not todo:
            return
        keras_failed = 0
        keras_mod = None
        for n in self.graph.nodes:
            outs = [self.graph.value(o) for o in n.outputs]
            if all(v.shape is not None for v in outs):
                continue
            info = self.call_info.get(n.name) or {}
            layer = info.get("layer") or {}
            data_ins = [self.graph.value(i) for i in n.inputs if i not in self.graph.initializers]
            if any(v.shape is None for v in data_ins):
                continue
            rule = _rule_shape(layer, [v.shape for v in data_ins])
            shapes = None if rule is None else [(r, None) for r in rule]  # [(shape, dtype or None)]
            if shapes is None:
                untrusted = n.attrs.get("untrusted", False)
                if untrusted and not self.trust:
                    continue
                if keras_mod is None:
                    keras_mod = _import_keras()
                    if keras_mod is False:
                        self.warnings.append("Keras is not installed here, so some output shapes are unknown")
                if keras_mod is False:
                    continue
                shapes = _keras_shape(keras_mod, layer, info.get("call") or {}, data_ins, self.trust)
                if shapes is None:
                    keras_failed += 1
                    continue
            in_dtype = next((v.dtype for v in data_ins if v.dtype), None)
            out_dtype = _dtype_name((layer.get("config") or {}).get("dtype"))
            for v, (sh, dt) in zip(outs, shapes):
                if v.shape is None:
                    v.shape = sh
                if v.dtype is None:
                    v.dtype = dt or out_dtype or in_dtype
        if keras_failed:
            self.warnings.append(f"the output shapes of {keras_failed} layer(s) could not be inferred")


def _join(scope: str, name: str) -> str:
    return f"{scope}/{name}" if scope else name


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


def _str_list(x) -> list[str]:
    if x is None:
        return []
    try:
        return [v.decode() if isinstance(v, bytes) else str(v) for v in list(x)]
    except TypeError:
        return []


def _snake_case(name: str) -> str:
    """Keras's own ``naming.to_snake_case`` (Conv2D -> conv2d, ReLU -> re_lu)."""
    import re

    s = re.sub(r"(.)([A-Z][a-z]+)", r"\1_\2", name)
    s = re.sub(r"([a-z])([A-Z])", r"\1_\2", s).lower()
    return "private" + s if s.startswith("_") else s


def _expected_group_names(model_cfg: dict) -> dict[str, str]:
    """Weights-file group name -> layer name, as Keras names the groups: the layer class in snake case plus
    a counter, in ``model.layers`` order (Sequential leaves its InputLayer out, Functional keeps it)."""
    inner = model_cfg.get("config") or {}
    layers = [l for l in inner.get("layers", []) if isinstance(l, dict)] if isinstance(inner, dict) else []
    sequential = model_cfg.get("class_name") == "Sequential" or "input_layers" not in inner
    out: dict[str, str] = {}
    used: dict[str, int] = {}
    for l in layers:
        cls = str(l.get("class_name", "layer"))
        if sequential and cls == "InputLayer":
            continue
        base = _snake_case(cls)
        n = used.get(base, 0)
        used[base] = n + 1
        out[base if n == 0 else f"{base}_{n}"] = l.get("name") or (l.get("config") or {}).get("name") or base
    return out


def _var_names(cls: str | None, cfg: dict, n: int) -> list[str]:
    names: list[str] | None = None
    if cls in _VAR_NAMES:
        names = list(_VAR_NAMES[cls])
        if cfg.get("use_bias") is False and "bias" in names:
            names.remove("bias")
    elif cls in ("BatchNormalization", "LayerNormalization", "GroupNormalization"):
        names = (["gamma"] if cfg.get("scale", True) else []) + (["beta"] if cfg.get("center", True) else [])
        if cls == "BatchNormalization":
            names += ["moving_mean", "moving_variance"]
    if names is None or len(names) != n:
        return [str(i) for i in range(n)]
    return names


# ---- shape inference ------------------------------------------------------------------------------------
def _rule_shape(layer: dict, in_shapes: list[tuple]) -> list | None:
    cls = layer.get("class_name")
    cfg = layer.get("config") or {}
    if not in_shapes:
        return None
    s = in_shapes[0]
    if cls in _SAME_SHAPE and len(in_shapes) == 1:
        return [s]
    if cls == "Dense" and isinstance(cfg.get("units"), int) and len(s) >= 1:
        return [(*s[:-1], cfg["units"])]
    if cls == "Flatten" and len(s) >= 1:
        rest = s[1:]
        total = 1
        for d in rest:
            if d is None:
                return [(s[0], None)]
            total *= d
        return [(s[0], total)]
    if cls and cls.startswith("Global") and ("Pooling" in cls) and len(s) >= 3:
        first = cfg.get("data_format") == "channels_first"
        c = s[1] if first else s[-1]
        if cfg.get("keepdims"):
            ones = (1,) * (len(s) - 2)
            return [(s[0], c, *ones) if first else (s[0], *ones, c)]
        return [(s[0], c)]
    if cls in _ELEMENTWISE_MERGE and len(in_shapes) > 1 and all(x == s for x in in_shapes):
        return [s]
    return None


def _import_keras():
    try:
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        import keras
        return keras
    except Exception:
        return False


def _keras_shape(keras, layer: dict, call: dict, data_ins: list[Value], trust: bool) -> list | None:
    """Build that one layer from its config and call it on symbolic tensors; None when it cannot be done."""
    import numpy as np

    try:
        cfg = {k: v for k, v in layer.items() if k not in ("inbound_nodes",)}
        try:
            from keras.src.saving.serialization_lib import SafeModeScope
        except ImportError:  # pragma: no cover - older/newer Keras: its default (safe) mode applies
            from contextlib import nullcontext as SafeModeScope  # noqa: N812
        with SafeModeScope(not trust):
            if "module" in cfg:
                lyr = keras.layers.deserialize(cfg)
            else:  # a Keras 2 config: Keras 3 reads those through its legacy deserializer
                import copy

                from keras.src.legacy.saving.saving_utils import model_from_config
                lyr = model_from_config(copy.deepcopy(cfg))
        tensors = [keras.KerasTensor(shape=v.shape, dtype=v.dtype or "float32") for v in data_ins]
        if call.get("fmt") == 3 and call.get("args") is not None:
            it = iter(tensors)

            def rebuild(x):
                if _is_tensor_ref(x):
                    return next(it)
                if isinstance(x, list):
                    return [rebuild(v) for v in x]
                if isinstance(x, dict):
                    return {k: rebuild(v) for k, v in x.items()}
                return x
            args = rebuild(call["args"])
            kwargs = rebuild(call.get("kwargs") or {})
            out = lyr(*args, **kwargs)
        else:
            kwargs = {k: v for k, v in (call.get("kwargs") or {}).items() if not isinstance(v, (list, dict))}
            out = lyr(tensors[0] if len(tensors) == 1 else tensors, **kwargs)
        flat = keras.tree.flatten(out)
        return [(tuple(None if d is None else int(d) for d in t.shape), str(np.dtype(t.dtype)))
                for t in flat]
    except Exception:
        return None


# ---- weights-only files and descriptions ------------------------------------------------------------
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


def _describe(model: Model, config: dict, builder: "_Builder | None" = None) -> None:
    model.extra["model_class"] = config.get("class_name")
    if builder is not None and builder.untrusted_layers:
        # layers whose shapes only running stored/custom code could tell; the window can offer "open trusted"
        model.extra["code_layers"] = ", ".join(builder.untrusted_layers)
    g = model.graph
    if g is not None:
        model.extra["layers"] = len(g.nodes)
        unknown = [o for o in g.outputs if g.value(o).shape is None]
        if unknown and not any("not run" in w for w in model.warnings):
            model.warnings.append(f"the shape of output(s) {', '.join(unknown)} could not be inferred")
