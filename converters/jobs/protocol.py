"""Typed parameters of the tasks the window and the CLI start: one dataclass per task.

A params object knows its task (``TASK``) and turns into the JSON the worker reads (:meth:`to_dict`);
:meth:`from_dict` reads such JSON back strictly (an unknown key is an error, so a renamed field cannot
pass silently). Callers build these instead of writing dict literals; the worker-side tasks keep reading
plain dicts (the wire format), which these produce. Error kinds are :class:`converters.errors.ErrorKind`.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, ClassVar

__all__ = ["TaskParams", "OpenParams", "LoadParams", "TensorParams", "ConvertParams", "DevicesParams",
           "AttachParams", "CompareParams", "PlanParams", "StructDiffParams", "ReduceCutParams", "ReduceSliceParams",
           "ReduceParams", "LayerTensorsParams", "params_for"]


class TaskParams:
    TASK: ClassVar[str] = ""

    def to_dict(self) -> dict[str, Any]:
        out = {}
        for f in dataclasses.fields(self):  # type: ignore[arg-type]
            v = getattr(self, f.name)
            if v is None and f.default is None:
                continue  # optional and unset: the task's own default applies
            out[f.name] = v
        return out

    @classmethod
    def from_dict(cls, d: dict[str, Any]):
        names = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
        unknown = sorted(set(d) - names)
        if unknown:
            raise ValueError(f"task '{cls.TASK}': unknown parameter(s) {', '.join(unknown)}")
        return cls(**d)


@dataclass
class OpenParams(TaskParams):
    """Open a model for the window: a view pack of its graph, or its weights tree."""
    TASK: ClassVar[str] = "open"
    path: str
    trust: bool = False
    options: dict[str, Any] = field(default_factory=dict)


@dataclass
class LoadParams(OpenParams):
    """Load a model into the neutral graph, written as ``model.json`` (what ``inspect`` prints)."""
    TASK: ClassVar[str] = "load"


@dataclass
class TensorParams(TaskParams):
    """One stored weight's statistics and histogram."""
    TASK: ClassVar[str] = "tensor"
    path: str
    name: str
    trust: bool = False
    bins: int | None = None


@dataclass
class ConvertParams(TaskParams):
    """Convert ``src`` to target ``to`` (``out``: None for the default name beside the source)."""
    TASK: ClassVar[str] = "convert"
    src: str
    to: str
    out: str | None = None
    overwrite: bool = False
    options: dict[str, Any] = field(default_factory=dict)


@dataclass
class DevicesParams(TaskParams):
    """The devices each runtime can use here (and why the others are missing)."""
    TASK: ClassVar[str] = "devices"
    runtimes: list[str] | None = None


@dataclass
class AttachParams(TaskParams):
    """A weights-only checkpoint loaded into the user's model class, exported as a graph."""
    TASK: ClassVar[str] = "attach_architecture"
    path: str
    spec: str
    kwargs: dict[str, Any] = field(default_factory=dict)
    input_shapes: list[list[int]] | None = None
    input_dtypes: list[str] | None = None
    trust: bool = False
    save_to: str | None = None


@dataclass
class CompareParams(TaskParams):
    """Compare model ``b`` with reference ``a`` (see :func:`converters.compare.engine.options_from_params`)."""
    TASK: ClassVar[str] = "compare"
    a: str
    b: str
    preset: str = "fp32"
    device_a: str = "cpu"
    device_b: str = "cpu"
    seed: int = 0
    batch: int | None = None
    inputs: list[str] | None = None
    capture_map: bool = False
    trust: bool = False
    save_dir: str | None = None
    report: str | None = None
    repeats: int | None = None
    per_layer: bool = False
    samples: int = 1  # seeded random input sets (seed, seed + 1, …); each output and layer keeps its worst


@dataclass
class PlanParams(TaskParams):
    """Pair the layers of ``b`` with those of reference ``a`` (see :mod:`converters.parity.plan`)."""
    TASK: ClassVar[str] = "plan_layers"
    a: str
    b: str
    trust: bool = False
    map: dict[str, Any] | None = None
    user_pairs: list[list] | None = None  # [A tensor, B tensor, perm or None]: pairs the user gives


@dataclass
class StructDiffParams(TaskParams):
    """The structural diff of ``b`` against ``a``, read without running either (see
    :mod:`converters.parity.structdiff`)."""
    TASK: ClassVar[str] = "struct_diff"
    a: str
    b: str
    trust: bool = False


@dataclass
class ReduceCutParams(TaskParams):
    """The smallest subgraph of ONNX model ``path`` (B) ending at ``target`` that still fails against A's
    value ``expected`` (see :func:`converters.parity.tasks.reduce_cut_task`)."""
    TASK: ClassVar[str] = "reduce_cut"
    path: str
    target: str
    expected: str
    graph_inputs: str
    out: str
    feeds: dict[str, str] = field(default_factory=dict)
    perm: list[int] | None = None
    feed_perms: dict[str, list[int]] = field(default_factory=dict)
    tolerance: dict[str, Any] = field(default_factory=dict)
    allowance: float = 0.0
    layer_max_abs: float | None = None
    same_order: float = 0.1
    max_checks: int = 200


@dataclass
class ReduceSliceParams(TaskParams):
    """One cut of ONNX model ``path`` (A) ending at ``target``, fed at ``fed`` (None: list the candidates);
    see :func:`converters.parity.tasks.reduce_slice_task`."""
    TASK: ClassVar[str] = "reduce_slice"
    path: str
    target: str
    graph_inputs: str
    out: str
    values: dict[str, str] = field(default_factory=dict)
    fed: list[str] | None = None


@dataclass
class ReduceParams(TaskParams):
    """A minimal repro of B's failure against reference A, written to ``out`` (see
    :mod:`converters.parity.reduce_task`); tolerance and inputs as in the comparison to reproduce."""
    TASK: ClassVar[str] = "reduce"
    a: str
    b: str
    out: str | None = None
    preset: str | None = None
    atol: float | None = None
    rtol: float | None = None
    noise_factor: float | None = None
    seed: int = 0
    inputs: list[str] | None = None
    trust: bool = False
    max_checks: int | None = None
    max_steps: int | None = None
    timeout: float | None = None
    layer: str | int | None = None       # the pair to reduce: A's tensor name or the layer index
    result_dir: str | None = None        # a kept per-layer result folder to reuse instead of comparing again


@dataclass
class LayerTensorsParams(TaskParams):
    """One layer pair of a per-layer result folder as 2-D slices (see :mod:`converters.compare.layer_tensors`)."""
    TASK: ClassVar[str] = "layer_tensors"
    result_dir: str
    index: int
    slice: int | None = None
    layout: str = "auto"
    max_side: int | None = None
    max_elems: int | None = None
    bins: int | None = None


_ALL = {c.TASK: c for c in (OpenParams, LoadParams, TensorParams, ConvertParams, DevicesParams, AttachParams,
                            CompareParams, PlanParams, StructDiffParams, ReduceCutParams, ReduceSliceParams, ReduceParams,
                            LayerTensorsParams)}


def params_for(task: str, d: dict[str, Any]) -> TaskParams:
    """The typed params of ``task`` read strictly from ``d``."""
    return _ALL[task].from_dict(d)
