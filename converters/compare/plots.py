"""The figures of a comparison, for whoever draws them (the window's Parity dock, the HTML report).

numpy only, no plotting library. The error histogram is the engine's own (``OutputDiff.histogram``, counted
per :data:`~converters.compare.diff.HIST_EDGES` while comparing): :func:`histogram_bars` only gives its
open end bins a width to draw. The A-against-B scatter needs the values themselves: :func:`paired` puts
an output's B in A's layout (from the runs' outputs, or :func:`sides` of the ``arrays.npz`` a kept
comparison wrote), and
:func:`scatter_sample` picks the points (seeded, so the same result always draws the same picture).
:func:`error_map` is where in an image-like output the two differ (|A - B| over height and width, the
worst over batch and channels); :func:`topk_bars` is a classifier's top-k agreement as bars.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from .diff import HIST_EDGES, OutputDiff

__all__ = ["SCATTER_POINTS", "MAP_SIDE", "histogram_bars", "sides", "paired", "scatter_sample", "error_map",
           "channels_last_runtime", "topk_bars"]

SCATTER_POINTS = 4000  # points a scatter of A against B draws at most
MAP_SIDE = 128  # an error map is pooled to at most this many cells a side


def histogram_bars(counts: list[int] | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(edges, counts) to draw the engine's log10 |A - B| histogram as bars: the open bins at each end of
    :data:`HIST_EDGES` (exact matches and errors below 1e-12 on the left, 1e4 and up on the right) are
    drawn one bin wide. Empty arrays when the comparison counted none."""
    c = np.asarray(counts, dtype=np.int64)
    if c.size == 0:
        return np.zeros(0), c
    inner = np.asarray(HIST_EDGES[1:-1], dtype=np.float64)
    step = float(inner[1] - inner[0])
    edges = np.concatenate([[inner[0] - step], inner, [inner[-1] + step]])
    if edges.size != c.size + 1:
        raise ValueError(f"a histogram of {c.size} bins does not fit the {edges.size - 1} bins of HIST_EDGES")
    return edges, c


def sides(arrays: Mapping[str, np.ndarray]) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """A's and B's outputs (name -> array) from a kept comparison's ``arrays.npz`` (keys ``a/<name>`` and
    ``b/<name>``; the inputs under ``inputs/`` are left out)."""
    outs: dict[str, dict[str, np.ndarray]] = {"a": {}, "b": {}}
    for key, value in arrays.items():
        side, _, name = key.partition("/")
        if side in outs and name:
            outs[side][name] = value
    return outs["a"], outs["b"]


def paired(diff: OutputDiff | Mapping[str, Any], outs_a: Mapping[str, np.ndarray] | None,
           outs_b: Mapping[str, np.ndarray] | None) -> tuple[np.ndarray, np.ndarray] | None:
    """(A, B) of one compared output, B transposed into A's layout as the comparison did (``perm_b``);
    None when either side lacks it or their shapes still differ. ``diff``: the OutputDiff or its dict."""
    get: Callable[[str], Any] = diff.get if isinstance(diff, Mapping) else lambda key: getattr(diff, key)
    a = (outs_a or {}).get(get("name"))
    b = (outs_b or {}).get(get("name_b"))
    if a is None or b is None:
        return None
    perm = get("perm_b")
    if perm:
        b = np.transpose(b, perm)
    if a.shape != b.shape:
        return None
    return a, b


def scatter_sample(a: np.ndarray, b: np.ndarray, limit: int = SCATTER_POINTS, seed: int = 0
                   ) -> tuple[np.ndarray, np.ndarray]:
    """(x = A values, y = B values) of at most ``limit`` finite element pairs, picked at random (seeded) and
    kept in element order."""
    x = np.asarray(a, np.float64).ravel()
    y = np.asarray(b, np.float64).ravel()
    ok = np.flatnonzero(np.isfinite(x) & np.isfinite(y))
    if ok.size > limit:
        ok = np.sort(np.random.default_rng(seed).choice(ok, limit, replace=False))
    return x[ok], y[ok]


def channels_last_runtime(runtime: str | None) -> bool:
    """Whether a runtime's image tensors are NHWC (TensorFlow, TFLite) rather than NCHW (torch, ONNX)."""
    return (runtime or "").lower() in {"tensorflow", "tf", "tflite", "keras", "litert"}


def error_map(a: np.ndarray, b: np.ndarray, *, channels_last: bool = False, side: int = MAP_SIDE
              ) -> dict[str, Any] | None:
    """Where an image-like output differs: ``{"map": |A - B| as (rows, cols) float64, "height": H,
    "width": W, "block": (bh, bw), "worst": (row, col), "reduced": text}``. A 4-D output (N, C, H, W) —
    or (N, H, W, C) when ``channels_last`` — with H and W of at least 2 qualifies; each cell holds the
    largest error over batch and channels, and a map larger than ``side`` cells a side is pooled by its
    maximum in blocks of ``block`` pixels (so a single bad pixel never disappears). Non-finite pairs count
    as infinite error. None for any other output."""
    a = np.asarray(a)
    b = np.asarray(b)
    if a.shape != b.shape or a.ndim != 4:
        return None
    h_ax, w_ax, c_ax = (1, 2, 3) if channels_last else (2, 3, 1)
    h, w = int(a.shape[h_ax]), int(a.shape[w_ax])
    if h < 2 or w < 2:
        return None
    err = np.abs(a.astype(np.float64) - b.astype(np.float64))
    both_nan = np.isnan(a) & np.isnan(b)
    err = np.where(np.isfinite(err), err, np.inf)
    err[both_nan] = 0.0
    m = err.max(axis=(0, c_ax))                                           # (H, W)
    bh, bw = -(-h // side), -(-w // side)
    if bh > 1 or bw > 1:
        ph, pw = -(-h // bh) * bh, -(-w // bw) * bw
        padded = np.zeros((ph, pw), np.float64)
        padded[:h, :w] = m
        m = padded.reshape(ph // bh, bh, pw // bw, bw).max(axis=(1, 3))
    worst = np.unravel_index(int(np.argmax(m)), m.shape)
    n, c = int(a.shape[0]), int(a.shape[c_ax])
    over = [t for t in (f"{n} samples" if n > 1 else "", f"{c} channels" if c > 1 else "") if t]
    reduced = "worst over " + " and ".join(over) if over else ""
    return {"map": m, "height": h, "width": w, "block": (bh, bw), "worst": (int(worst[0]), int(worst[1])),
            "reduced": reduced}


def topk_bars(topk: Mapping[str, float] | None) -> tuple[list[str], np.ndarray]:
    """(labels, agreement in %) of a classifier output's top-k figures (``OutputDiff.topk``), top-1 first;
    empty when the output is not a classifier's."""
    if not topk:
        return [], np.zeros(0)
    keys = sorted(topk, key=lambda k: int(k[3:]) if k[3:].isdigit() else 99)
    return [f"top-{k[3:]}" for k in keys], np.array([100.0 * float(topk[k]) for k in keys])
