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


def test_error_map_finds_the_wrong_pixel_in_either_layout():
    from converters.compare.plots import channels_last_runtime, error_map

    rng = np.random.default_rng(0)
    a = rng.standard_normal((2, 3, 300, 200)).astype(np.float32)  # NCHW, pooled to at most 128 a side
    b = a.copy()
    b[1, 2, 250, 17] += 1.0
    m = error_map(a, b)
    assert m["height"] == 300 and m["width"] == 200 and m["block"] == (3, 2)
    assert m["map"].shape == (100, 100) and m["worst"] == (250 // 3, 17 // 2)
    assert m["map"].max() == np.float64(1.0) + (b[1, 2, 250, 17] - a[1, 2, 250, 17] - 1.0)
    assert m["reduced"] == "worst over 2 samples and 3 channels"
    nhwc = error_map(a.transpose(0, 2, 3, 1), b.transpose(0, 2, 3, 1), channels_last=True)
    assert nhwc["worst"] == m["worst"] and np.array_equal(nhwc["map"], m["map"])
    # read as NCHW, an NHWC tensor's spatial axes are (W, C): the map would be 200×3 and wrong
    assert error_map(a.transpose(0, 2, 3, 1), b.transpose(0, 2, 3, 1))["height"] == 200
    small = error_map(a[:1, :, :8, :8], b[:1, :, :8, :8])
    assert small["block"] == (1, 1) and small["map"].shape == (8, 8) and small["reduced"] == "worst over 3 channels"
    # a NaN on one side only is an infinite error; NaN on both is a match
    c, d = a[:1, :1, :4, :4].copy(), a[:1, :1, :4, :4].copy()
    c[0, 0, 1, 1] = d[0, 0, 1, 1] = np.nan
    d[0, 0, 3, 0] = np.nan
    nm = error_map(c, d)
    assert nm["map"][1, 1] == 0 and np.isinf(nm["map"][3, 0]) and nm["worst"] == (3, 0)
    # not image-like: logits, a sequence, a 1-pixel map
    assert error_map(a[:, :, 0, 0], b[:, :, 0, 0]) is None
    assert error_map(a[0], b[0]) is None
    assert error_map(a[:, :, :1, :], b[:, :, :1, :]) is None
    assert channels_last_runtime("tflite") and channels_last_runtime("tensorflow")
    assert not channels_last_runtime("onnxruntime") and not channels_last_runtime("torch")


def test_topk_bars_from_the_engines_figures():
    from converters.compare.plots import topk_bars

    a = np.array([[0.1, 0.9, 0.0, 0.3, 0.2, 0.5, 0.4], [0.8, 0.1, 0.0, 0.3, 0.2, 0.5, 0.4]], np.float32)
    b = a.copy()
    b[1, 0] = 0.0  # sample 2's best class drops out of its top 5 entirely
    d = compare_arrays(a, b, tolerance("fp32"))
    labels, pct = topk_bars(d.topk)
    assert labels == ["top-1", "top-5"]
    assert pct.tolist() == [50.0, 90.0]  # top-1: 1 of 2 agree; top-5 overlap: 5/5 and 4/5
    empty_labels, empty_pct = topk_bars(None)
    assert empty_labels == [] and empty_pct.size == 0
