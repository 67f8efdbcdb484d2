"""Comparison of two models' outputs: tolerances, per-output statistics, pairing, side-by-side runs.

>>> from converters.compare import compare_models, CompareOptions, tolerance
>>> res = compare_models("model.pt2", "model.onnx", CompareOptions(tolerance=tolerance("fp32")))
>>> bool(res), res.outputs[0].max_abs, res.failed_outputs

Each side runs in its own worker process (see :mod:`converters.compare.engine`); the comparison itself
(:func:`compare_outputs`, :func:`compare_arrays`) is plain numpy and can be called on arrays directly.
"""
from .diff import OutputDiff, compare_arrays
from .engine import CompareOptions, compare_models, compare_outputs, options_from_params
from .results import CompareResult, SideInfo
from .tolerances import PRESETS, Tolerance, tolerance

__all__ = ["OutputDiff", "compare_arrays", "CompareOptions", "compare_models", "compare_outputs",
           "options_from_params", "CompareResult", "SideInfo", "PRESETS", "Tolerance", "tolerance"]
