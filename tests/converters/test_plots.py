"""The comparison's figures (converters.compare.plots): the engine's histogram drawn as it is, B put in
A's layout as the comparison did, a seeded scatter sample."""
from __future__ import annotations

import numpy as np

from converters.compare import compare_arrays, tolerance
from converters.compare.plots import SCATTER_POINTS, histogram_bars, paired, scatter_sample, sides


def test_histogram_bars_draw_the_engines_counts():
    a = np.zeros((4, 5), np.float32)
    b = a.copy()
    b[0, 0] = 1e-3  # log10 = -3: the bin [-3, -2.5)
    b[1, 1] = 50.0  # 1e4 and up would be the last bin; 50 is [1.5, 2)
    d = compare_arrays(a, b, tolerance("fp32"))
    edges, counts = histogram_bars(d.histogram)
    assert edges.size == counts.size + 1 == 35
    assert edges[0] == -12.5 and edges[-1] == 4.5 and np.allclose(np.diff(edges), 0.5)
    assert counts.tolist() == d.histogram
    assert counts[0] == 18  # the exact matches, at the left
    assert counts[int(np.searchsorted(edges, -3.0, side="right")) - 1] == 1
    assert counts[int(np.searchsorted(edges, np.log10(50.0), side="right")) - 1] == 1
    assert counts.sum() == 20
    empty_edges, empty = histogram_bars([])
    assert empty_edges.size == 0 and empty.size == 0


def test_paired_puts_b_in_as_layout():
    a = np.arange(24, dtype=np.float32).reshape(1, 2, 3, 4)  # NCHW
    b = np.transpose(a, (0, 2, 3, 1))  # NHWC
    arrays = {"inputs/x": np.zeros(3), "a/y": a, "b/y_b": b}
    outs_a, outs_b = sides(arrays)
    assert set(outs_a) == {"y"} and set(outs_b) == {"y_b"}
    d = compare_arrays(a, np.transpose(b, (0, 3, 1, 2)), tolerance("fp32"), name="y", name_b="y_b",
                       perm_b=[0, 3, 1, 2])
    pa, pb = paired(d, outs_a, outs_b)
    assert pa is a and np.array_equal(pb, a)
    assert paired(d.to_dict(), outs_a, outs_b)[1].shape == (1, 2, 3, 4)
    assert paired({"name": "y", "name_b": "missing"}, outs_a, outs_b) is None
    assert paired({"name": "y", "name_b": "y_b"}, outs_a, outs_b) is None  # no perm: shapes differ


def test_scatter_sample_is_seeded_finite_and_bounded():
    rng = np.random.default_rng(1)
    a = rng.standard_normal(10_000)
    b = a + 1e-3
    a[5] = np.nan
    x, y = scatter_sample(a, b)
    assert x.size == y.size == SCATTER_POINTS and np.isfinite(x).all()
    assert np.allclose(y - x, 1e-3)
    x2, _ = scatter_sample(a, b)
    assert np.array_equal(x, x2)
    small_x, small_y = scatter_sample(a[:10], b[:10], limit=100)
    assert small_x.size == 9 and np.array_equal(small_x, np.delete(a[:10], 5))
