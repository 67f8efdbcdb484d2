"""Per-output comparison of two arrays: error statistics, mismatches and where they are, top-k agreement,
NaN/Inf handling, verdict against a :class:`Tolerance`."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from .tolerances import NOISE_STABLE, Tolerance

__all__ = ["OutputDiff", "compare_arrays", "REL_FLOOR", "HIST_EDGES"]

# Relative error is |a - b| / max(|a|, REL_FLOOR): values of A nearer zero than this count as this size,
# so exact zeros on the reference side do not turn every rounding difference into an infinite error.
REL_FLOOR = 1e-6
# log10(|a - b|) bins for the error histogram: exact matches in the first bin, then 1e-12 … 1e+4.
HIST_EDGES = [-np.inf] + list(np.arange(-12, 4.5, 0.5)) + [np.inf]
# Arrays larger than this (elements) are compared in chunks, with median / p99 estimated from an even
# sample of about SAMPLE elements: the figures of a 64 MiB activation in well under a second, with a few
# chunk-sized temporaries instead of a dozen whole-array float64 copies.
LARGE = 1 << 22
CHUNK = 1 << 18
SAMPLE = 1 << 20


@dataclass
class OutputDiff:
    """The comparison of one output. ``bool(diff)`` is the verdict.

    Errors are in the output's units (abs) or unitless (rel). ``worst`` lists up to 10 elements with the
    largest absolute error: ``{"index": [i, j, …], "a": float, "b": float, "abs": float}`` (index into A's
    layout). ``topk`` (2-D outputs with at least 2 classes) has ``top1`` and ``top{k}`` agreement in
    [0, 1]. ``histogram`` counts |a - b| per ``HIST_EDGES`` bin (log10).
    """

    name: str
    name_b: str
    shape: list[int]
    shape_b: list[int]
    dtype_a: str
    dtype_b: str
    numel: int
    matched_by: str = "name"
    perm_b: list[int] | None = None
    max_abs: float = 0.0
    mean_abs: float = 0.0
    median_abs: float = 0.0
    p99_abs: float = 0.0
    max_rel: float = 0.0
    mean_rel: float = 0.0
    median_rel: float = 0.0
    p99_rel: float = 0.0
    cosine: float | None = None
    mismatches: int = 0
    mismatch_fraction: float = 0.0
    worst: list[dict] = field(default_factory=list)
    nan_a: int = 0
    nan_b: int = 0
    inf_a: int = 0
    inf_b: int = 0
    nonfinite_mismatches: int = 0
    topk: dict[str, float] | None = None
    histogram: list[int] = field(default_factory=list)
    ref_range: list[float] | None = None
    tolerance: dict = field(default_factory=dict)
    passed: bool = False
    reasons: list[str] = field(default_factory=list)
    intermediate: bool = False  # a captured inner tensor, not a model output (diagnostic, not in the verdict)
    # A's own change when its inputs move by one rounding step (see tolerances), the allowance it gave,
    # and how many elements are outside atol/rtol alone (they pass only within that allowance)
    noise: float | None = None
    noise_allowance: float = 0.0
    noise_unstable: bool = False
    strict_mismatches: int = 0

    def __bool__(self) -> bool:
        return bool(self.passed)

    def to_dict(self) -> dict:
        return asdict(self)

    @staticmethod
    def from_dict(d: dict) -> "OutputDiff":
        return OutputDiff(**d)

    def summary(self) -> str:
        verdict = "PASS" if self.passed else "FAIL"
        s = (f"{verdict} {self.name}: max abs {self.max_abs:.3g}, max rel {self.max_rel:.3g}, "
             f"cosine {self.cosine:.6f}" if self.cosine is not None else f"{verdict} {self.name}")
        if self.mismatches:
            w = self.worst[0]["index"] if self.worst else []
            s += f", {self.mismatches} of {self.numel} mismatching (worst at {w})"
        if self.topk:
            s += ", " + ", ".join(f"{k} {v:.0%}" for k, v in self.topk.items())
        if self.passed and self.strict_mismatches:
            s += (f", {self.strict_mismatches} element(s) outside atol/rtol but within A's own rounding "
                  f"sensitivity ({self.noise:.2g})")
        if self.reasons and not self.passed:
            s += " — " + "; ".join(self.reasons)
        return s


def _f(x) -> float:
    return float(x) if np.isfinite(x) else (float("inf") if x > 0 else float("-inf")) if not np.isnan(x) else float("nan")


def compare_arrays(a: np.ndarray, b: np.ndarray, tol: Tolerance, *, name: str = "output", name_b: str | None = None,
                   matched_by: str = "name", perm_b: list[int] | None = None, worst_k: int = 10,
                   noise: float | None = None, detail: bool = True) -> OutputDiff:
    """Compare reference ``a`` with ``b`` (already in A's layout) against ``tol``. ``noise``: max |A(x) -
    A(x')| for inputs x' one rounding step from x (see :mod:`.tolerances`), or None when not measured.
    ``detail=False`` (one layer among thousands): a large array gets the verdict, max / mean errors,
    cosine and its worst element, without the histogram and percentiles."""
    a = np.asarray(a)
    b = np.asarray(b)
    d = OutputDiff(name=name, name_b=name_b or name, shape=list(a.shape), shape_b=list(b.shape),
                   dtype_a=a.dtype.name, dtype_b=b.dtype.name, numel=int(a.size), matched_by=matched_by,
                   perm_b=list(perm_b) if perm_b else None, tolerance=tol.to_dict())
    if a.shape != b.shape:
        d.reasons.append(f"shapes differ: {list(a.shape)} vs {list(b.shape)}")
        d.passed = False
        return d
    if a.size == 0:
        d.passed = True
        return d
    kind_ok = a.dtype.kind in "fiub" and b.dtype.kind in "fiub"
    if not kind_ok:
        same = bool(np.array_equal(a, b))
        d.passed = same
        d.mismatches = 0 if same else int((a != b).sum())
        d.mismatch_fraction = d.mismatches / a.size
        if not same:
            d.reasons.append("values differ")
        return d
    if a.size > LARGE and a.dtype.kind == "f" and b.dtype.kind == "f":
        done = _compare_large(a, b, tol, d, noise, worst_k if detail else 1, detail)
        if done is not None:
            return done
        d.worst, d.noise, d.noise_allowance, d.noise_unstable = [], None, 0.0, False
    af = a.astype(np.float64)
    bf = b.astype(np.float64)
    nan_a, nan_b = np.isnan(af), np.isnan(bf)
    inf_a, inf_b = np.isinf(af), np.isinf(bf)
    d.nan_a, d.nan_b = int(nan_a.sum()), int(nan_b.sum())
    d.inf_a, d.inf_b = int(inf_a.sum()), int(inf_b.sum())
    finite = ~(nan_a | nan_b | inf_a | inf_b)
    # NaN where the other side has NaN, and Inf of the same sign, are agreement; anything else is not.
    nonfinite_ok = (nan_a & nan_b) | (inf_a & inf_b & (np.sign(af) == np.sign(bf)))
    nonfinite_bad = ~finite & ~nonfinite_ok
    d.nonfinite_mismatches = int(nonfinite_bad.sum())

    diff = np.zeros_like(af)
    diff[finite] = np.abs(af[finite] - bf[finite])
    diff[nonfinite_bad] = np.inf
    absa = np.abs(af)
    fin_diff = diff[finite]
    if fin_diff.size:
        rel = fin_diff / np.maximum(absa[finite], REL_FLOOR)
        d.max_abs, d.mean_abs = float(fin_diff.max()), float(fin_diff.mean())
        d.median_abs, d.p99_abs = (float(v) for v in np.percentile(fin_diff, [50, 99]))
        d.max_rel, d.mean_rel = float(rel.max()), float(rel.mean())
        d.median_rel, d.p99_rel = (float(v) for v in np.percentile(rel, [50, 99]))
        fa, fb = af[finite], bf[finite]
        na, nb = np.linalg.norm(fa), np.linalg.norm(fb)
        if na == 0 and nb == 0:
            d.cosine = 1.0
        elif na == 0 or nb == 0:
            d.cosine = 0.0
        else:
            d.cosine = float(np.clip(np.dot(fa.ravel(), fb.ravel()) / (na * nb), -1.0, 1.0))
        d.ref_range = [float(fa.min()), float(fa.max())]
    if d.nonfinite_mismatches:
        d.max_abs = float("inf")
    allowed = tol.atol + tol.rtol * absa
    bad = nonfinite_bad.copy()
    bad[finite] = diff[finite] > allowed[finite]
    d.strict_mismatches = int(bad.sum())
    if a.dtype.kind == "f" and _allowance(d, tol, noise, float(np.abs(af[finite]).max()) if fin_diff.size else 0.0):
        bad[finite] = diff[finite] > allowed[finite] + d.noise_allowance
    d.mismatches = int(bad.sum())
    d.mismatch_fraction = d.mismatches / a.size
    # where: the worst elements (largest error; non-finite disagreements first)
    k = min(worst_k, a.size)
    flat = diff.ravel()
    idx = np.argpartition(-flat, k - 1)[:k] if k < flat.size else np.arange(flat.size)
    idx = idx[np.argsort(-flat[idx], kind="stable")]
    for i in idx:
        if flat[i] == 0 and d.mismatches == 0 and len(d.worst) >= 3:
            break
        d.worst.append({"index": [int(x) for x in np.unravel_index(int(i), a.shape)],
                        "a": _f(af.flat[i]), "b": _f(bf.flat[i]), "abs": _f(flat[i]),
                        "mismatch": bool(bad.flat[i])})
    with np.errstate(divide="ignore"):
        logd = np.log10(diff[finite]) if fin_diff.size else np.array([])
    counts, _ = np.histogram(logd, bins=np.array(HIST_EDGES))
    d.histogram = [int(c) for c in counts]
    if a.ndim == 2 and a.shape[-1] >= 2 and finite.all():
        d.topk = _topk(af, bf)

    return _judge(d, tol)


def _allowance(d: OutputDiff, tol: Tolerance, noise: float | None, scale: float) -> float:
    """Record A's own change under a rounding step on ``d`` and return the allowance it gives (0 when not
    measured, switched off, or A is unstable there: more than NOISE_STABLE of its largest magnitude)."""
    if noise is None or not np.isfinite(noise):
        return 0.0
    d.noise = float(noise)
    if tol.noise_factor and d.noise <= NOISE_STABLE * scale:
        d.noise_allowance = tol.noise_factor * d.noise
    elif tol.noise_factor and d.noise > 0:
        d.noise_unstable = True
    return d.noise_allowance


def _judge(d: OutputDiff, tol: Tolerance) -> OutputDiff:
    """The verdict and its one-line reasons, from the counts and figures already on ``d``."""
    reasons = []
    if d.nonfinite_mismatches:
        reasons.append(f"{d.nonfinite_mismatches} NaN/Inf values on one side only")
    if d.mismatch_fraction > tol.max_mismatch_fraction:
        w = d.worst[0]["index"] if d.worst else []
        extra = (f" + {tol.noise_factor:g}× A's rounding sensitivity {d.noise:.2g}" if d.noise_allowance else
                 " (A's own outputs jump under a rounding step: no allowance)" if d.noise_unstable else "")
        reasons.append(f"{d.mismatches} of {d.numel} elements outside atol {tol.atol:g} + rtol {tol.rtol:g}{extra} "
                       f"(worst at {w}: {d.worst[0]['a']:.6g} vs {d.worst[0]['b']:.6g})" if d.worst else
                       f"{d.mismatches} elements outside tolerance")
    if tol.min_cosine is not None and d.cosine is not None and d.cosine < tol.min_cosine:
        reasons.append(f"cosine {d.cosine:.6f} below {tol.min_cosine:g}")
    d.reasons = reasons
    d.passed = not reasons
    return d


def _compare_large(a: np.ndarray, b: np.ndarray, tol: Tolerance, d: OutputDiff, noise: float | None,
                   worst_k: int, detail: bool = True) -> OutputDiff | None:
    """:func:`compare_arrays` for a large float pair, one cache-sized chunk at a time, in the inputs' own
    precision with float64 accumulators (same fields). Returns None when a chunk holds a NaN or an Inf
    (the caller then takes the exact path, which reports them)."""
    fa, fb = a.reshape(-1), b.reshape(-1)
    n = fa.size
    work: type[np.floating] = np.float64 if (fa.dtype == np.float64 or fb.dtype == np.float64) else np.float32
    step = max(1, n // SAMPLE)
    counts = np.zeros(len(HIST_EDGES) - 1, dtype=np.int64)
    sum_abs = sum_rel = na2 = nb2 = d2 = 0.0
    max_abs = max_rel = 0.0
    lo, hi = np.inf, -np.inf
    strict = mism = 0
    cand_v: list[np.ndarray] = []
    cand_i: list[np.ndarray] = []
    samp_abs, samp_rel = [], []
    m = min(CHUNK, n)
    diff_buf, ax_buf, lim_buf = (np.empty(m, dtype=work) for _ in range(3))
    over_buf = np.empty(m, dtype=bool)
    rtol, atol, floor = work(tol.rtol), work(tol.atol), work(REL_FLOOR)
    allowance = 0.0
    kth = -1.0  # the k-th largest error seen so far: a chunk whose largest error is below it adds no candidate
    for start in range(0, n, CHUNK):
        x = np.asarray(fa[start:start + CHUNK], dtype=work)
        y = np.asarray(fb[start:start + CHUNK], dtype=work)
        k = x.size
        diff, ax, lim, over = diff_buf[:k], ax_buf[:k], lim_buf[:k], over_buf[:k]
        np.subtract(x, y, out=diff)
        np.abs(diff, out=diff)
        c_sum = float(diff.sum())  # pairwise in the chunk's precision, accumulated in float64 across chunks
        c_a2, c_b2 = float(np.dot(x, x)), float(np.dot(y, y))
        if not (np.isfinite(c_sum) and np.isfinite(c_a2) and np.isfinite(c_b2)):
            return None
        if start == 0 and noise is not None:  # the allowance needs A's scale: the whole array's, taken once
            allowance = _allowance(d, tol, noise, float(max(abs(float(fa.min())), abs(float(fa.max())))))
        sum_abs += c_sum
        na2, nb2, d2 = na2 + c_a2, nb2 + c_b2, d2 + float(np.dot(diff, diff))
        c_max = float(diff.max())
        max_abs = max(max_abs, c_max)
        lo, hi = min(lo, float(x.min())), max(hi, float(x.max()))
        np.abs(x, out=ax)
        np.multiply(ax, rtol, out=lim)
        lim += atol
        strict += int(np.count_nonzero(np.greater(diff, lim, out=over)))
        if allowance:
            lim += work(allowance)
            mism += int(np.count_nonzero(np.greater(diff, lim, out=over)))
        np.maximum(ax, floor, out=ax)
        rel = np.divide(diff, ax, out=ax)
        max_rel = max(max_rel, float(rel.max()))
        sum_rel += float(rel.sum())
        if detail:
            first = (-start) % step
            samp_abs.append(diff[first::step].astype(np.float64))
            samp_rel.append(rel[first::step].astype(np.float64))
            counts += _log_bins(diff)
        if c_max > kth:  # a tie with the k-th largest so far adds nothing
            if worst_k == 1:
                hit = np.array([int(diff.argmax())])
            else:
                hit = np.flatnonzero(diff > kth) if kth >= 0 else np.arange(k)
                if hit.size > worst_k:
                    hit = hit[np.argpartition(-diff[hit], worst_k - 1)[:worst_k]]
            cand_v.append(diff[hit].astype(np.float64))
            cand_i.append(hit + start)
            allv = np.concatenate(cand_v)
            if allv.size >= worst_k:
                kth = float(np.partition(allv, allv.size - worst_k)[allv.size - worst_k])
    d.strict_mismatches = strict
    d.mismatches = mism if allowance else strict
    d.mismatch_fraction = d.mismatches / n
    d.max_abs, d.mean_abs, d.max_rel, d.mean_rel = max_abs, sum_abs / n, max_rel, sum_rel / n
    if detail:
        sa, sr = np.concatenate(samp_abs), np.concatenate(samp_rel)
        d.median_abs, d.p99_abs = (float(v) for v in np.percentile(sa, [50, 99]))
        d.median_rel, d.p99_rel = (float(v) for v in np.percentile(sr, [50, 99]))
    d.cosine = _cosine(na2, nb2, d2)
    d.ref_range = [lo, hi]
    d.histogram = [int(c) for c in counts] if detail else []
    v, i = np.concatenate(cand_v), np.concatenate(cand_i)
    order = np.argsort(-v, kind="stable")[:worst_k]
    for j in order:
        flat = int(i[j])
        av, bv = float(fa[flat]), float(fb[flat])
        lim_j = tol.atol + tol.rtol * abs(av) + allowance
        if v[j] == 0 and d.mismatches == 0 and len(d.worst) >= 3:
            break
        d.worst.append({"index": [int(x) for x in np.unravel_index(flat, a.shape)], "a": av, "b": bv,
                        "abs": float(v[j]), "mismatch": bool(v[j] > lim_j)})
    return _judge(d, tol)


def _cosine(na2: float, nb2: float, d2: float) -> float:
    """cos(a, b) from |a|², |b|² and |a - b|²: 1 - cos = (|a - b|² - (|a| - |b|)²) / (2 |a| |b|). The
    difference term is summed directly, so two arrays that agree to rounding get a cosine that close to 1
    (a dot product summed in float32 would lose it), and it is held to what |a - b|² allows."""
    if na2 == 0 and nb2 == 0:
        return 1.0
    if na2 == 0 or nb2 == 0:
        return 0.0
    na, nb = np.sqrt(na2), np.sqrt(nb2)
    gap = max(0.0, d2 - (na - nb) ** 2)
    return float(np.clip(1.0 - min(gap, d2) / (2.0 * na * nb), -1.0, 1.0))


def _log_bins(diff: np.ndarray) -> np.ndarray:
    """Counts of ``diff`` per :data:`HIST_EDGES` bin: the edges are 0.5 apart in log10 from 1e-12 up, with
    an open bin at each end, so a bin is one floor of the log (no search per element)."""
    with np.errstate(divide="ignore"):
        lg = np.log10(diff)
    # bin 0: below 1e-12 (exact zeros included); bin k: [-12 + (k-1)/2, -12 + k/2); last: 1e4 and up
    k = np.floor((lg + 12.0) * 2.0)
    k = np.nan_to_num(k, nan=0.0, neginf=-1.0, posinf=1e9)
    nb = len(HIST_EDGES) - 1
    idx = np.clip(k + 1, 0, nb - 1).astype(np.int64)
    return np.bincount(idx, minlength=nb)


def _topk(a: np.ndarray, b: np.ndarray) -> dict[str, float]:
    c = a.shape[-1]
    out = {"top1": float((a.argmax(-1) == b.argmax(-1)).mean())}
    k = min(5, c - 1)
    if k >= 2:
        ta = np.argsort(-a, axis=-1)[:, :k]
        tb = np.argsort(-b, axis=-1)[:, :k]
        overlap = [len(set(x) & set(y)) / k for x, y in zip(ta.tolist(), tb.tolist())]
        out[f"top{k}"] = float(np.mean(overlap))
    return out


def summarize_errors(diffs: list[OutputDiff]) -> dict[str, Any]:
    """Worst figures over all outputs (for one-line summaries)."""
    if not diffs:
        return {}
    return {"max_abs": max(d.max_abs for d in diffs), "max_rel": max(d.max_rel for d in diffs),
            "min_cosine": min((d.cosine for d in diffs if d.cosine is not None), default=None),
            "failed": [d.name for d in diffs if not d.passed]}
