"""Tolerances: when two outputs count as the same.

An element of B matches its element of A when ``|a - b| <= atol + rtol * |a|`` (A is the reference, as
in ``numpy.isclose(b, a)``). An output passes when at most ``max_mismatch_fraction`` of its elements
mismatch, its NaN/Inf pattern is the same on both sides, and its cosine similarity is at least
``min_cosine`` (when set). Presets follow each precision's unit round-off (fp16 ~1e-3, bf16 ~8e-3) with
head-room for accumulated error; int8 allows a small fraction of off-by-a-step elements.

The reference's own sensitivity. A deep network amplifies rounding: two correct fp32 implementations
of ResNet-50 (TF's kernels and onnxruntime's) differ by ~1e-3 on outputs of magnitude ~2, far outside
``atol``/``rtol``, and so does the reference against itself when its inputs move by one rounding step.
With ``noise_factor`` > 0 the comparison runs A a second time on inputs perturbed by one float32
rounding step (relative ``eps`` noise on every float input) and measures ``noise`` = max |A(x) - A(x')|
per output; an element then matches when ``|a - b| <= atol + rtol * |a| + noise_factor * noise``. The
allowance is used only where A is stable (``noise`` at most ``NOISE_STABLE`` of A's largest magnitude):
an output that jumps under a rounding step (argmax, thresholds) gets no allowance, and says so.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, replace

__all__ = ["Tolerance", "PRESETS", "tolerance", "NOISE_STABLE"]

# The rounding allowance applies only where A's own change under a rounding step is at most this
# fraction of A's largest magnitude (a stable output); beyond it, the output is discontinuous there.
NOISE_STABLE = 1e-2


@dataclass(frozen=True)
class Tolerance:
    """``atol`` absolute and ``rtol`` relative tolerance (unitless, in the output's units for atol);
    ``max_mismatch_fraction`` in [0, 1] (default 0: every element must match); ``min_cosine`` in [-1, 1]
    or None (not checked)."""

    atol: float = 1e-5
    rtol: float = 1e-4
    max_mismatch_fraction: float = 0.0
    min_cosine: float | None = None
    name: str = "custom"
    noise_factor: float = 32.0

    def to_dict(self) -> dict:
        return asdict(self)

    @staticmethod
    def from_dict(d: dict) -> "Tolerance":
        keys = ("atol", "rtol", "max_mismatch_fraction", "min_cosine", "name", "noise_factor")
        return Tolerance(**{k: d[k] for k in keys if k in d})

    def describe(self) -> str:
        s = f"{self.name}: atol {self.atol:g}, rtol {self.rtol:g}"
        if self.max_mismatch_fraction:
            s += f", up to {self.max_mismatch_fraction:.2%} mismatching"
        if self.min_cosine is not None:
            s += f", cosine ≥ {self.min_cosine:g}"
        if self.noise_factor:
            s += f", plus {self.noise_factor:g}× A's own rounding sensitivity"
        return s


PRESETS: dict[str, Tolerance] = {
    "fp32": Tolerance(atol=1e-5, rtol=1e-4, name="fp32"),
    "fp16": Tolerance(atol=1e-2, rtol=1e-2, min_cosine=0.999, name="fp16"),
    "bf16": Tolerance(atol=5e-2, rtol=5e-2, min_cosine=0.99, name="bf16"),
    "int8": Tolerance(atol=0.1, rtol=0.1, max_mismatch_fraction=0.01, min_cosine=0.98, name="int8"),
}


def tolerance(preset: str | None = None, *, atol: float | None = None, rtol: float | None = None,
              max_mismatch_fraction: float | None = None, min_cosine: float | None = None,
              noise_factor: float | None = None) -> Tolerance:
    """A preset (default fp32) with any given field replaced; raises ValueError on an unknown preset."""
    name = (preset or "fp32").lower()
    if name not in PRESETS:
        raise ValueError(f"unknown tolerance preset '{preset}'; use one of {', '.join(PRESETS)}")
    t = PRESETS[name]
    changes = {k: v for k, v in dict(atol=atol, rtol=rtol, max_mismatch_fraction=max_mismatch_fraction,
                                     min_cosine=min_cosine, noise_factor=noise_factor).items() if v is not None}
    if changes:
        t = replace(t, name=f"{t.name}+custom" if preset else "custom", **changes)
    return t
