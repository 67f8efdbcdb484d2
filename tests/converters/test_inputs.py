"""Input generation and loading (numpy and Pillow only; no framework in this file)."""
from __future__ import annotations

import numpy as np
import pytest

from converters.inputs import (ImageOptions, InputError, inputs_from_files, load_image, load_inputs, match_arrays,
                               random_inputs, resolve_shape, save_inputs)
from converters.runners.base import TensorSpec

SPECS = [TensorSpec("x", "float32", ("batch", 3, 8, 8)), TensorSpec("ids", "int64", (None, 5)),
         TensorSpec("mask", "bool", ("batch", 5))]


def test_random_inputs_are_seeded_and_reproducible():
    a = random_inputs(SPECS, seed=7, dims={"batch": 2})
    b = random_inputs(SPECS, seed=7, dims={"batch": 2})
    c = random_inputs(SPECS, seed=8, dims={"batch": 2})
    assert list(a) == ["x", "ids", "mask"]
    for k in a:
        np.testing.assert_array_equal(a[k], b[k])
    assert not np.array_equal(a["x"], c["x"])
    assert a["x"].shape == (2, 3, 8, 8) and a["x"].dtype == np.float32
    assert 0.0 <= a["x"].min() and a["x"].max() < 1.0
    assert a["ids"].dtype == np.int64 and a["ids"].shape == (2, 5)  # unnamed first dim is the batch too
    assert a["ids"].min() >= 0 and a["ids"].max() < 10
    assert a["mask"].dtype == np.bool_ and a["mask"].shape == (2, 5)
    # one stream per input: changing one input's spec leaves the others' data alone
    d = random_inputs([SPECS[0], TensorSpec("ids", "int64", (1, 7)), SPECS[2]], seed=7, dims={"batch": 2})
    np.testing.assert_array_equal(a["x"], d["x"])


def test_batch_and_shapes_and_dynamic_dim_errors():
    assert resolve_shape("x", ("batch", 3, 8, 8), batch=4) == (4, 3, 8, 8)
    assert resolve_shape("x", ("b", "seq"), dims={"b": 2, "seq": 16}) == (2, 16)
    assert resolve_shape("x", (None, None), shapes={"x": [3, 9]}) == (3, 9)
    with pytest.raises(InputError, match=r"--dim seq=N"):
        resolve_shape("x", (1, "seq"))
    with pytest.raises(InputError, match="unknown rank"):
        resolve_shape("x", None)


def test_npz_matched_by_name_then_position_with_warning(tmp_path):
    specs = [TensorSpec("x", "float32", (1, 3, 4, 4)), TensorSpec("y", "float32", (1, 2))]
    x = np.arange(48, dtype=np.float32).reshape(1, 3, 4, 4)
    y = np.ones((1, 2), np.float32)
    # by name, whatever the order in the file
    p = tmp_path / "named.npz"
    np.savez(p, y=y, x=x)
    warnings: list[str] = []
    feeds = inputs_from_files([str(p)], specs, warnings=warnings)
    np.testing.assert_array_equal(feeds["x"], x)
    np.testing.assert_array_equal(feeds["y"], y)
    assert warnings == []
    # other names: by position, each warned about
    p2 = tmp_path / "positional.npz"
    np.savez(p2, first=x, second=y)
    warnings = []
    feeds = inputs_from_files([str(p2)], specs, warnings=warnings)
    np.testing.assert_array_equal(feeds["x"], x)
    assert any("'first'" in w and "'x'" in w and "position" in w for w in warnings)
    assert any("'second'" in w and "'y'" in w for w in warnings)


def test_npy_by_file_name_and_layout_transpose(tmp_path):
    spec = [TensorSpec("x", "float32", (1, 6, 6, 3))]  # NHWC model
    nchw = np.random.default_rng(0).random((1, 3, 6, 6), dtype=np.float32)
    np.save(tmp_path / "x.npy", nchw)
    warnings: list[str] = []
    feeds = inputs_from_files([str(tmp_path / "x.npy")], spec, warnings=warnings)
    np.testing.assert_array_equal(feeds["x"], nchw.transpose(0, 2, 3, 1))
    assert any("transposed by [0, 2, 3, 1]" in w for w in warnings)


def test_match_errors_and_casts():
    specs = [TensorSpec("a", "float32", (2, 3)), TensorSpec("b", "float32", (2,))]
    with pytest.raises(InputError, match=r"no data for input\(s\) \['b'\]"):
        match_arrays({"a": np.zeros((2, 3))}, specs)
    with pytest.raises(InputError, match="does not fit"):
        match_arrays({"a": np.zeros((2, 4)), "b": np.zeros(2)}, specs)
    warnings: list[str] = []
    out = match_arrays({"a": np.zeros((2, 3), np.int32), "b": np.zeros(2), "c": np.zeros(1)}, specs,
                       warnings=warnings)
    assert out["a"].dtype == np.float32 and out["b"].dtype == np.float32
    assert any("cast from int32 to float32" in w for w in warnings)
    assert any("['c'] not used" in w for w in warnings)


def test_sidecar_perm_wins_over_guess():
    # shape 1x4x4x4 fits several permutations; the converter's map says which one
    a = np.arange(64, dtype=np.float32).reshape(1, 4, 4, 4)
    spec = [TensorSpec("t", "float32", (1, 4, 4, 4))]
    out = match_arrays({"t": a}, spec, perms={"t": (0, 2, 3, 1)})
    np.testing.assert_array_equal(out["t"], a.transpose(0, 2, 3, 1))
    out = match_arrays({"t": a}, spec)
    np.testing.assert_array_equal(out["t"], a)  # no map: identity


def _png(path, rgb):
    from PIL import Image
    Image.fromarray(np.asarray(rgb, np.uint8)).save(path)


def test_image_preprocessing(tmp_path):
    img = np.zeros((16, 16, 3), np.uint8)
    img[..., 0] = 255  # pure red
    img[..., 2] = 51
    _png(tmp_path / "a.png", img)
    _png(tmp_path / "b.png", img // 5)
    nchw = TensorSpec("x", "float32", (None, 3, 8, 8))
    x = load_image([str(tmp_path / "a.png"), str(tmp_path / "b.png")], nchw)
    assert x.shape == (2, 3, 8, 8) and x.dtype == np.float32
    np.testing.assert_allclose(x[0, 0], 1.0, atol=1e-6)       # red scaled to [0, 1]
    np.testing.assert_allclose(x[0, 2], 0.2, atol=1e-6)
    np.testing.assert_allclose(x[1, 0], 0.2, atol=1e-6)
    nhwc = TensorSpec("x", "float32", (1, 4, 4, 3))
    y = load_image(str(tmp_path / "a.png"), nhwc, ImageOptions(mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5)))
    assert y.shape == (1, 4, 4, 3)
    np.testing.assert_allclose(y[0, :, :, 0], 1.0, atol=1e-6)  # (1 - 0.5) / 0.5
    np.testing.assert_allclose(y[0, :, :, 1], -1.0, atol=1e-6)
    raw = load_image(str(tmp_path / "a.png"), nhwc, ImageOptions(scale=False))
    np.testing.assert_allclose(raw[0, :, :, 0], 255.0)
    gray = load_image(str(tmp_path / "a.png"), TensorSpec("g", "float32", (1, 1, 16, 16)))
    assert gray.shape == (1, 1, 16, 16)
    # through the file front door: the image goes to the 4-D input
    feeds = inputs_from_files([str(tmp_path / "a.png")], [TensorSpec("x", "float32", (1, 3, 8, 8))])
    assert feeds["x"].shape == (1, 3, 8, 8)
    with pytest.raises(InputError, match="cannot read this image"):
        (tmp_path / "bad.png").write_bytes(b"not a png")
        load_image(str(tmp_path / "bad.png"), nchw)


def test_save_and_load_input_sets(tmp_path):
    feeds = random_inputs(SPECS, seed=3, dims={"batch": 2})
    path = save_inputs(str(tmp_path / "set1"), feeds)
    assert path.endswith(".npz")
    back = load_inputs(path)
    assert list(back) == list(feeds)
    for k in feeds:
        np.testing.assert_array_equal(back[k], feeds[k])
    # pickled object arrays are refused, never unpickled
    np.save(tmp_path / "obj.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(InputError, match="pickled"):
        load_inputs(str(tmp_path / "obj.npy"))
