"""Result objects of a comparison: plain dataclasses, JSON in and out; ``bool(result)`` is pass."""
from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from typing import Any


from .diff import OutputDiff

__all__ = ["SideInfo", "CompareResult"]


@dataclass
class SideInfo:
    """One side of a comparison: the model, where it ran, its specs and timing, or why it failed.

    ``timing``: see :func:`converters.runners.base.timing_stats` (milliseconds). ``startup_s``: worker start to model open (s).
    ``error``: one line when this side failed or crashed (then ``crashed`` says whether the process died).
    """

    path: str
    label: str = "A"
    runtime: str | None = None
    device: str = "cpu"
    inputs: list[dict] = field(default_factory=list)
    outputs: list[dict] = field(default_factory=list)
    timing: dict = field(default_factory=dict)
    open_s: float | None = None
    startup_s: float | None = None
    cpu_s: float | None = None  # the worker's CPU time (user + system), all its threads
    error: str | None = None
    error_kind: str | None = None
    crashed: bool = False
    log_path: str | None = None

    def to_dict(self) -> dict:
        return asdict(self)

    @staticmethod
    def from_dict(d: dict) -> "SideInfo":
        return SideInfo(**d)


@dataclass
class CompareResult:
    """Everything a comparison found. ``passed`` needs both sides to have run and every output to pass.

    ``inputs``: name -> {shape, dtype} of what side A was fed. ``files``: paths written (json, npz,
    report). ``warnings``: matching by position, transposes, unused data — things to double-check.
    """

    a: SideInfo
    b: SideInfo
    outputs: list[OutputDiff] = field(default_factory=list)
    tolerance: dict = field(default_factory=dict)
    inputs: dict[str, dict] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    error: str | None = None
    files: dict[str, str] = field(default_factory=dict)
    seed: int | None = None
    # per-layer comparison (``per_layer``): every paired layer with its status, the first that is wrong
    # itself, what could not be paired, and notes (see converters.parity)
    layers: list[Any] = field(default_factory=list)
    layer_first: Any = None
    unmatched: dict[str, list[str]] = field(default_factory=dict)
    layer_notes: list[str] = field(default_factory=list)
    samples: int = 1  # input sets compared (each output and layer keeps its worst)

    @property
    def model_outputs(self) -> list[OutputDiff]:
        return [d for d in self.outputs if not d.intermediate]

    @property
    def intermediates(self) -> list[OutputDiff]:
        """Captured inner tensors, in capture order (graph order when they come from a converter map)."""
        return [d for d in self.outputs if d.intermediate]

    @property
    def first_divergence(self) -> OutputDiff | None:
        """The first inner tensor that does not match: with a per-layer comparison the first layer that is
        wrong itself (not one that inherits error), else the first captured one that differs."""
        if self.layer_first is not None:
            f = self.layer_first
            hit = next((d for d in self.intermediates if d.name == f.a and d.name_b == f.b), None)
            if hit is not None:
                return hit
        return next((d for d in self.intermediates if not d.passed), None)

    def layer_counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for r in self.layers:
            out[r.status] = out.get(r.status, 0) + 1
        return out

    @property
    def passed(self) -> bool:
        """Both sides ran and every model output matched (inner tensors inform, they do not decide)."""
        outs = self.model_outputs
        return self.error is None and bool(outs) and all(outs)

    def __bool__(self) -> bool:
        return self.passed

    @property
    def failed_outputs(self) -> list[OutputDiff]:
        return [d for d in self.model_outputs if not d.passed]

    def to_dict(self) -> dict:
        first = self.first_divergence
        d = {"passed": self.passed, "first_divergence": first.name if first is not None else None,
             "a": self.a.to_dict(), "b": self.b.to_dict(),
             "outputs": [o.to_dict() for o in self.outputs], "tolerance": self.tolerance, "inputs": self.inputs,
             "warnings": list(self.warnings), "error": self.error, "files": dict(self.files), "seed": self.seed,
             "samples": self.samples}
        if self.layers:
            d["layers"] = [r.to_dict() for r in self.layers]
            d["layer_first"] = self.layer_first.to_dict() if self.layer_first is not None else None
            d["layer_counts"] = self.layer_counts()
            d["unmatched"] = dict(self.unmatched)
            d["layer_notes"] = list(self.layer_notes)
        return d

    @staticmethod
    def from_dict(d: dict) -> "CompareResult":
        from ..parity import LayerResult

        d = _json_restore(d)
        first = d.get("layer_first")
        return CompareResult(a=SideInfo.from_dict(d["a"]), b=SideInfo.from_dict(d["b"]),
                             outputs=[OutputDiff.from_dict(o) for o in d.get("outputs", [])],
                             tolerance=d.get("tolerance", {}), inputs=d.get("inputs", {}),
                             warnings=list(d.get("warnings", [])), error=d.get("error"),
                             files=dict(d.get("files", {})), seed=d.get("seed"),
                             layers=[LayerResult.from_dict(r) for r in d.get("layers", [])],
                             layer_first=LayerResult.from_dict(first) if first else None,
                             unmatched=dict(d.get("unmatched", {})), layer_notes=list(d.get("layer_notes", [])),
                             samples=int(d.get("samples", 1)))

    def save_json(self, path: str) -> str:
        tmp = path + ".part"
        with open(tmp, "w") as f:
            json.dump(_json_safe(self.to_dict()), f, indent=1)
        os.replace(tmp, path)
        return path

    @staticmethod
    def load(path: str) -> "CompareResult":
        with open(path) as f:
            return CompareResult.from_dict(json.load(f))

    def summary_lines(self) -> list[str]:
        lines = [f"A: {self.a.path} [{self.a.runtime or '?'} on {self.a.device}]",
                 f"B: {self.b.path} [{self.b.runtime or '?'} on {self.b.device}]"]
        if self.error:
            lines.append(f"error: {self.error}")
            return lines
        lines.append(f"tolerance: {self.tolerance.get('name', '?')} (atol {self.tolerance.get('atol')}, "
                     f"rtol {self.tolerance.get('rtol')})"
                     + (f"; worst of {self.samples} input samples (seeds {self.seed}…{self.seed + self.samples - 1})"
                        if self.samples > 1 and self.seed is not None else ""))
        for o in self.model_outputs:
            lines.append(("  " + o.summary()))
        inner = self.intermediates
        if self.layers:
            lines.extend(self._layer_lines())
        elif inner:
            ok = sum(1 for d in inner if d.passed)
            first = self.first_divergence
            lines.append(f"inner tensors: {ok} of {len(inner)} match"
                         + (f"; first divergence at '{first.name}' (B: '{first.name_b}'), max abs {first.max_abs:.3g}"
                            if first is not None else ""))
        for side in (self.a, self.b):
            t = side.timing
            if t.get("repeats"):
                lines.append(f"time {side.label}: median {t['median_ms']:.3f} ms, min {t['min_ms']:.3f} ms "
                             f"over {t['repeats']} runs")
        for w in self.warnings:
            lines.append(f"warning: {w}")
        lines.append("PASS: outputs match" if self.passed else
                     f"FAIL: {len(self.failed_outputs)} of {len(self.model_outputs)} outputs differ"
                     if self.model_outputs else "FAIL: no outputs were compared")
        return lines

    def _layer_lines(self) -> list[str]:
        c = self.layer_counts()
        methods: dict[str, int] = {}
        for r in self.layers:
            methods[r.method] = methods.get(r.method, 0) + 1
        how = ", ".join(f"{n} by {m}" for m, n in methods.items())
        lines = [f"layers: {len(self.layers)} paired ({how}); " +
                 ", ".join(f"{c[s]} {s}" for s in ("ok", "source", "inherited", "layout", "missing") if c.get(s))]
        un_a = len(self.unmatched.get("a", []))
        if un_a:
            lines.append(f"  {un_a} layer(s) of A have no counterpart in B (e.g. '{self.unmatched['a'][0]}')")
        f = self.layer_first
        if f is not None:
            where = f" [{f.op}]" if f.op else ""
            lines.append(f"first divergence: '{f.a}'{where} (B: '{f.b}'), max abs {f.max_abs:.3g}"
                         + (f", cosine {f.cosine:.6f}" if f.cosine is not None else "")
                         + (" — a layout-only op: check the axis or permutation" if f.status == "layout" else
                            " — wrong itself: every paired layer feeding it matches"))
            if f.local_max_abs is not None:
                lines.append(f"  re-run alone on A's tensors it is off by {f.local_max_abs:.3g} "
                             + ("(its own op is wrong)" if not f.local_passed else
                                "(its own op matches: the error comes from an op before it that has no counterpart)"))
            down = sum(1 for r in self.layers if r.status == "inherited")
            if down:
                lines.append(f"  {down} layer(s) after it inherit the error")
            others = [r for r in self.layers if r.status == "source" and r is not f][:3]
            for r in others:
                lines.append(f"  also wrong itself: '{r.a}' (B: '{r.b}'), max abs {r.max_abs:.3g}")
        elif self.layers and not c.get("missing") == len(self.layers):
            lines.append("every paired layer matches")
        return lines


_SPECIAL = {"NaN": float("nan"), "Infinity": float("inf"), "-Infinity": float("-inf")}


def _json_restore(x: Any) -> Any:
    """Undo :func:`_json_safe` (the strings it wrote for NaN and infinities become floats again)."""
    if isinstance(x, str) and x in _SPECIAL:
        return _SPECIAL[x]
    if isinstance(x, dict):
        return {k: _json_restore(v) for k, v in x.items()}
    if isinstance(x, list):
        return [_json_restore(v) for v in x]
    return x


def _json_safe(x: Any) -> Any:
    # JSON has no Infinity/NaN: write them as strings so every reader accepts the file
    if isinstance(x, float):
        if x != x:
            return "NaN"
        if x in (float("inf"), float("-inf")):
            return "Infinity" if x > 0 else "-Infinity"
        return x
    if isinstance(x, dict):
        return {k: _json_safe(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_json_safe(v) for v in x]
    return x
