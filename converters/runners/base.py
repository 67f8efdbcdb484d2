"""The runner interface shared by every runtime.

A runner wraps one model file on one device. ``open()`` loads it (importing the framework then, never at
import time), ``infer(feeds, capture=None)`` runs it, ``close()`` frees it; runners are context
managers. The public ``infer`` validates the feeds (names, dtypes, ranks, static dims) and times the call;
subclasses implement ``_open_impl``, ``_infer_impl`` and ``_close_impl``.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from ..errors import TensorbridgeError

__all__ = ["TensorSpec", "Runner", "RunnerError", "InvalidFeeds", "DeviceUnavailable", "dtype_name"]


class RunnerError(TensorbridgeError):
    """A model could not be opened or run by its runtime."""


class InvalidFeeds(RunnerError):
    """The inputs given to ``infer`` do not fit the model's inputs."""


class DeviceUnavailable(RunnerError):
    """The requested device does not exist or the installed runtime cannot use it."""


def dtype_name(dt: Any) -> str | None:
    """numpy-style dtype name of a framework or numpy dtype (``"float32"``), None when unknown."""
    if dt is None:
        return None
    try:
        return np.dtype(dt).name
    except TypeError:
        pass
    s = str(dt)
    for prefix in ("torch.", "tf.", "<dtype: '"):
        if s.startswith(prefix):
            s = s[len(prefix):]
    s = s.rstrip("'>")
    aliases = {"float": "float32", "double": "float64", "half": "float16", "long": "int64", "int": "int32",
               "bool_": "bool", "string": "string", "object": "string"}
    s = aliases.get(s, s)
    try:
        return np.dtype(s).name
    except TypeError:
        return s or None


@dataclass
class TensorSpec:
    """One input or output: ``name``, numpy-style ``dtype`` name (or None) and ``shape``.

    ``shape`` entries are ints (static), strs (named dynamic dims such as ``"batch"``) or None (unknown);
    ``shape`` itself is None when even the rank is unknown.
    """

    name: str
    dtype: str | None = None
    shape: tuple | None = None

    def to_dict(self) -> dict:
        return {"name": self.name, "dtype": self.dtype, "shape": None if self.shape is None else list(self.shape)}

    @staticmethod
    def from_dict(d: dict) -> "TensorSpec":
        s = d.get("shape")
        return TensorSpec(d["name"], d.get("dtype"), None if s is None else tuple(s))

    @property
    def is_static(self) -> bool:
        return self.shape is not None and all(isinstance(d, int) and d >= 0 for d in self.shape)


def _same_kind(want: str, got: np.dtype) -> bool:
    try:
        w = np.dtype(want)
    except TypeError:
        return False
    return w.kind == got.kind or (w.kind in "iu" and got.kind in "iu")


class Runner:
    """Base class. Subclasses set ``runtime`` and implement the ``_*_impl`` methods.

    ``device`` is "cpu" or a runtime-specific accelerator name ("cuda:0" for torch and onnxruntime,
    "gpu:0" for TensorFlow, an onnxruntime execution provider name). ``trust=True`` allows formats whose
    loading runs code stored in the file (pickled torch modules, Keras Lambda layers).
    """

    runtime = "base"

    def __init__(self, path: str, *, device: str = "cpu", trust: bool = False, **options: Any):
        self.path = str(path)
        self.device = device or "cpu"
        self.trust = trust
        self.options = options
        self.is_open = False
        self.last_inference_time: float | None = None  # seconds of the last _infer_impl call
        self.warnings: list[str] = []

    # -- lifecycle ---------------------------------------------------------------------------------
    def open(self, device: str | None = None) -> "Runner":
        if device is not None:
            self.device = device
        if not self.is_open:
            self._open_impl()
            self.is_open = True
            self._specs_cache: list[TensorSpec] | None = None
            self._plan_cache: list[tuple] | None = None
        return self

    def close(self) -> None:
        if self.is_open:
            try:
                self._close_impl()
            finally:
                self.is_open = False

    def __enter__(self) -> "Runner":
        return self.open()

    def __exit__(self, *exc) -> None:
        self.close()

    # -- description -------------------------------------------------------------------------------
    def input_specs(self) -> list[TensorSpec]:
        self._require_open()
        specs: list[TensorSpec] | None = getattr(self, "_specs_cache", None)
        if specs is None:
            # specs do not change while the model is open; infer() checks feeds against them every call
            specs = self._specs_cache = self._input_specs_impl()
        return list(specs)

    def output_specs(self) -> list[TensorSpec]:
        self._require_open()
        return self._output_specs_impl()

    # -- running -----------------------------------------------------------------------------------
    def infer(self, feeds: dict[str, np.ndarray], capture: list[str] | None = None) -> dict[str, np.ndarray]:
        """Run the model once. ``feeds``: input name -> array. ``capture``: names of intermediate
        tensors to return as well (runtime-specific names; see each runner). Returns output name -> array
        (outputs first, in the model's order, then the captured tensors)."""
        self._require_open()
        checked = self._check_feeds(feeds)
        t0 = time.perf_counter()
        out = self._infer_impl(checked, list(capture) if capture else None)
        self.last_inference_time = time.perf_counter() - t0
        return out

    def capture_stream(self, feeds: dict[str, np.ndarray], names: list[str],
                       sink: Callable[[str, np.ndarray], None], *, budget_bytes: int = 256 << 20) -> dict[str, np.ndarray]:
        """Run the model once and hand each tensor of ``names`` to ``sink(name, array)`` as soon as the
        runtime has produced it; return the model's outputs only. The caller decides what to keep (a
        per-layer comparison writes each one to disk), so memory stays about one tensor plus what the
        runtime itself holds: runners that can run a model piece by piece (ONNX) keep at most
        ``budget_bytes`` of captured tensors alive at once. Names this runner cannot capture are skipped
        (see :meth:`capturable`)."""
        self._require_open()
        checked = self._check_feeds(feeds)
        t0 = time.perf_counter()
        out = self._capture_stream_impl(checked, [n for n in names], sink, budget_bytes)
        self.last_inference_time = time.perf_counter() - t0
        return out

    def capturable(self, names: list[str]) -> list[str]:
        """The names among ``names`` this runner can capture, decided without running the model where the
        runtime allows; by default the names are tried in one run, then in halves (a few runs for a few
        bad names among thousands)."""
        self._require_open()
        feeds = getattr(self, "_probe_feeds", None)
        if feeds is None:
            from ..inputs import random_inputs
            feeds = random_inputs(self.input_specs(), seed=0)

        def ok(group: list[str]) -> list[str]:
            try:
                self._infer_impl(self._check_feeds(feeds), group)
                return group
            except Exception:
                if len(group) == 1:
                    return []
                half = len(group) // 2
                return ok(group[:half]) + ok(group[half:])

        return ok(list(names)) if names else []

    def _capture_stream_impl(self, feeds, names, sink, budget_bytes) -> dict[str, np.ndarray]:
        # one run returns everything (what the runtime allows); then each tensor is handed over and dropped
        try:
            out = self._infer_impl(feeds, names)
        except Exception:  # a name this runtime does not have: find the ones it does, then run once more
            self._probe_feeds = feeds
            names = self.capturable(names)
            out = self._infer_impl(feeds, names)
        model_names = [s.name for s in self._output_specs_impl()]
        wanted = set(names)
        for n in list(out):
            if n in wanted:
                sink(n, out[n])
                if n not in model_names:
                    del out[n]
        return out

    def _feed_plan(self) -> list[tuple]:
        """Per input: (name, numpy dtype or None, rank or None, [(axis, static size)], spec); made once
        per open so that checking feeds costs microseconds per call."""
        plan: list[tuple] | None = getattr(self, "_plan_cache", None)
        if plan is None:
            plan = []
            for spec in self.input_specs():
                try:
                    dt = np.dtype(spec.dtype) if spec.dtype and spec.dtype != "string" else None
                except TypeError:
                    dt = None
                rank = None if spec.shape is None else len(spec.shape)
                static = [] if spec.shape is None else [(i, d) for i, d in enumerate(spec.shape)
                                                         if isinstance(d, int) and d >= 0]
                plan.append((spec.name, dt, rank, static, spec))
            self._plan_cache = plan
        return plan

    def _check_feeds(self, feeds: dict[str, Any]) -> dict[str, np.ndarray]:
        plan = self._feed_plan()
        if len(feeds) != len(plan) or any(p[0] not in feeds for p in plan):
            names = [p[0] for p in plan]
            missing = [n for n in names if n not in feeds]
            extra = [n for n in feeds if n not in names]
            raise InvalidFeeds(f"{self.path}: inputs do not match the model: "
                               + (f"missing {missing} " if missing else "")
                               + (f"unknown {extra} " if extra else "")
                               + f"(the model expects {names})")
        out = {}
        for name, dt, rank, static, spec in plan:
            a = feeds[name]
            if type(a) is not np.ndarray:
                a = np.asarray(a)
            if dt is not None and a.dtype != dt:
                if not _same_kind(spec.dtype, a.dtype):
                    raise InvalidFeeds(f"{self.path}: input '{name}' is {a.dtype.name} but the model "
                                       f"expects {spec.dtype}; convert the data or pick another input file")
                a = a.astype(dt)
            if rank is not None:
                if a.ndim != rank:
                    raise InvalidFeeds(f"{self.path}: input '{name}' has shape {list(a.shape)} but the "
                                       f"model expects rank {rank} {list(spec.shape)}")
                bad = [i for i, d in static if a.shape[i] != d]
                if bad:
                    raise InvalidFeeds(f"{self.path}: input '{name}' has shape {list(a.shape)} but the "
                                       f"model expects {list(spec.shape)} (dims {bad} differ)")
            out[name] = a
        return out

    def _require_open(self) -> None:
        if not self.is_open:
            raise RunnerError(f"{self.path}: the runner is not open; call open() or use it in a 'with' block")

    # -- for subclasses ----------------------------------------------------------------------------
    def _open_impl(self) -> None:
        raise NotImplementedError

    def _close_impl(self) -> None:
        pass

    def _input_specs_impl(self) -> list[TensorSpec]:
        raise NotImplementedError

    def _output_specs_impl(self) -> list[TensorSpec]:
        raise NotImplementedError

    def _infer_impl(self, feeds: dict[str, np.ndarray], capture: list[str] | None) -> dict[str, np.ndarray]:
        raise NotImplementedError

    def aliases(self) -> dict[str, str]:
        """Other names of the inputs/outputs -> the names this runner uses (e.g. a TFLite tensor name ->
        its signature key), so maps written against the file's raw tensor names still apply."""
        return {}

    def describe(self) -> dict:
        """Runtime, device and specs as plain JSON-able data."""
        return {"path": self.path, "runtime": self.runtime, "device": self.device,
                "inputs": [s.to_dict() for s in self.input_specs()],
                "outputs": [s.to_dict() for s in self.output_specs()], "aliases": self.aliases()}


def to_numpy(x: Any) -> np.ndarray:
    """Framework tensor -> numpy array on the host (torch, TF, numpy, scalars)."""
    if isinstance(x, np.ndarray):
        return x
    try:  # host tensors of numpy dtypes (torch CPU without grad, TF eager): no checks needed
        a = x.numpy()
        if isinstance(a, np.ndarray):
            return a
    except Exception:
        pass
    if hasattr(x, "detach"):  # torch
        if x.requires_grad:
            x = x.detach()
        if x.device.type != "cpu":
            x = x.cpu()
        if str(x.dtype) == "torch.bfloat16":
            import ml_dtypes  # noqa: F401  (registers bfloat16 with numpy)
            return x.float().numpy().astype("bfloat16")
        return x.numpy()
    if hasattr(x, "numpy"):
        return np.asarray(x.numpy())
    return np.asarray(x)


@dataclass
class _Flat:
    names: list[str] = field(default_factory=list)
    values: list[Any] = field(default_factory=list)


def flatten_outputs(out: Any, prefix: str = "output") -> dict[str, Any]:
    """Nested outputs (tensor, tuple/list, dict, namedtuple) -> flat {name: tensor} in a stable order.

    Tuples/lists are named ``output_0``, ``output_1`` …; nested ones ``output_0_1``; dict keys are kept
    (nested dict keys joined by ``.``)."""
    if type(out) in (tuple, list) and not any(isinstance(v, (dict, list, tuple)) for v in out):
        return {f"{prefix}_{i}": v for i, v in enumerate(out)}  # the common case, without the walk
    flat: dict[str, Any] = {}

    def walk(x, name):
        if isinstance(x, dict):
            for k, v in x.items():
                walk(v, str(k) if name is None else f"{name}.{k}")
        elif hasattr(x, "_fields") and isinstance(x, tuple):  # namedtuple
            for k, v in zip(x._fields, x):
                walk(v, k if name is None else f"{name}.{k}")
        elif isinstance(x, (list, tuple)):
            base = prefix if name is None else name
            for i, v in enumerate(x):
                walk(v, f"{base}_{i}")
        else:
            flat[name if name is not None else prefix] = x

    walk(out, None)
    return flat


def timing_stats(times_s: list[float], warmup: int) -> dict:
    """``{warmup, repeats, median_ms, min_ms, mean_ms, max_ms}`` from per-run seconds."""
    if not times_s:
        return {"warmup": warmup, "repeats": 0}
    ms = np.asarray(times_s) * 1000.0
    return {"warmup": int(warmup), "repeats": int(ms.size), "median_ms": float(np.median(ms)),
            "min_ms": float(ms.min()), "mean_ms": float(ms.mean()), "max_ms": float(ms.max())}
