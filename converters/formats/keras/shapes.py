"""Shapes a Keras config does not record: simple rules first, then a built-in layer built from its config and
called on symbolic tensors (never a Lambda or custom class without trust)."""
from __future__ import annotations

import os

from ...graph import Value
from .config import _ELEMENTWISE_MERGE, _SAME_SHAPE, _is_tensor_ref


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
