"""The figures of a comparison, for whoever draws them (the window's Parity dock, the HTML report).

numpy only, no plotting library. The error histogram is the engine's own (``OutputDiff.histogram``, counted
per :data:`~converters.compare.diff.HIST_EDGES` while comparing): :func:`histogram_bars` only gives its
open end bins a width to draw. The A-against-B scatter needs the values themselves: :func:`paired` puts
an output's B in A's layout (from the runs' outputs, or :func:`sides` of the ``arrays.npz`` a kept
comparison wrote), and
:func:`scatter_sample` picks the points (seeded, so the same result always draws the same picture).
"""
from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from .diff import HIST_EDGES, OutputDiff

__all__ = ["SCATTER_POINTS", "histogram_bars", "sides", "paired", "scatter_sample"]

SCATTER_POINTS = 4000  # points a scatter of A against B draws at most


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
