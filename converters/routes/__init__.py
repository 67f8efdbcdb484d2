"""Conversion between PyTorch, ONNX, TensorFlow/Keras and TFLite: one module per hop, a planner, a runner.

Hop modules are named output-from-input (``onnx_from_torch``, ``savedmodel_from_onnx`` …) and expose
``run(src, out, options, *, family, final, product, log) -> {"output", "extra"}``; each writes a
correspondence sidecar ``<output>.tbmap.json`` (see :mod:`converters.routes.common`).
:func:`plan` is pure Python (no framework import); :func:`convert` runs a route in this process and the
``convert`` worker task runs it in a worker.
"""
from __future__ import annotations

from .options import ConvertOptions
from .planner import TARGETS, NoRoute, Route, plan

__all__ = ["ConvertOptions", "NoRoute", "Route", "TARGETS", "plan", "convert"]


def convert(*args, **kwargs):
    """See :func:`converters.routes.run.convert`."""
    from .run import convert as _convert
    return _convert(*args, **kwargs)
