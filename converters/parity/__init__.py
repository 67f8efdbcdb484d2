"""Per-layer parity: pair the layers of two models, compare each, and say where the numbers first part ways.

>>> from converters.compare import CompareOptions, compare_models
>>> res = compare_models("model.pt2", "model.onnx", CompareOptions(per_layer=True))
>>> res.layer_first  # the first layer that is wrong itself (a LayerResult), or None

:mod:`.plan` finds the pairs (converter map, then the exporters' names) and places them on A's graph;
:mod:`.verdict` tells layers that make an error from layers that inherit one; :mod:`.reduce` cuts the
smallest ONNX subgraph that still fails the same way (``tensorbridge reduce``):

>>> from converters.parity import ReduceOptions, reduce_failure
>>> reduce_failure("model.pt2", "model.onnx", ReduceOptions(out="repro")).out_dir
"""
from __future__ import annotations

from .plan import LayerPair, LayerPlan, is_layout_op, plan_from_graphs, plan_layers
from .verdict import STATUSES, LayerResult, judge_layers

__all__ = ["LayerPair", "LayerPlan", "plan_layers", "plan_from_graphs", "is_layout_op", "LayerResult",
           "judge_layers", "STATUSES", "reduce_failure", "ReduceOptions", "ReduceResult"]

_LAZY = ("reduce_failure", "ReduceOptions", "ReduceResult")


def __getattr__(name: str):
    # the reduction starts jobs: imported when asked for, not by every reader of a layer plan
    if name in _LAZY:
        from . import reduce

        return getattr(reduce, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
