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

    @property
    def model_outputs(self) -> list[OutputDiff]:
        return [d for d in self.outputs if not d.intermediate]

    @property
    def intermediates(self) -> list[OutputDiff]:
        """Captured inner tensors, in capture order (graph order when they come from a converter map)."""
        return [d for d in self.outputs if d.intermediate]

    @property
    def first_divergence(self) -> OutputDiff | None:
        """The first captured inner tensor that does not match, if any."""
        return next((d for d in self.intermediates if not d.passed), None)

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
             "warnings": list(self.warnings), "error": self.error, "files": dict(self.files), "seed": self.seed}
        return d

    @staticmethod
    def from_dict(d: dict) -> "CompareResult":
        d = _json_restore(d)
        return CompareResult(a=SideInfo.from_dict(d["a"]), b=SideInfo.from_dict(d["b"]),
                             outputs=[OutputDiff.from_dict(o) for o in d.get("outputs", [])],
                             tolerance=d.get("tolerance", {}), inputs=d.get("inputs", {}),
                             warnings=list(d.get("warnings", [])), error=d.get("error"),
                             files=dict(d.get("files", {})), seed=d.get("seed"))

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
                     f"rtol {self.tolerance.get('rtol')})")
        for o in self.model_outputs:
            lines.append(("  " + o.summary()))
        inner = self.intermediates
        if inner:
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
