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

import json
import zipfile
from typing import Callable

from ...errors import CorruptFile
from ...graph import Model
from ...safety.archives import open_zip, read_member
from .builder import _Builder
from .files import _h5_reason, _h5py, _member_opener, _nullcontext, _weights_only_h5, _zlib_error

__all__ = ["load_keras", "load_h5"]


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
        from ...safety.probe import probe

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
        from ...safety.probe import probe

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
