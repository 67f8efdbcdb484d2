"""The ``layer_tensors`` task on a hand-made per-layer result folder: B laid over A's layout by the pair's
permutation, NHWC slices, the stride for big slices, the slice window, and a pair whose B was not kept."""
from __future__ import annotations

import json

import numpy as np
import pytest

from converters.compare.layer_tensors import channels_last, layer_tensors_task, slices_of


class _Ctx:
    def __init__(self, folder):
        self.folder = folder

    def progress(self, *_a) -> None:
        pass

    def path(self, name: str) -> str:
        return str(self.folder / name)


@pytest.fixture
def folder(tmp_path):
    rng = np.random.default_rng(0)
    a0 = rng.standard_normal((1, 6, 6, 4)).astype(np.float32)      # NHWC in A
    a1 = rng.standard_normal((2, 3, 1030, 20)).astype(np.float32)   # big slices: strided
    (tmp_path / "layers_a").mkdir()
    (tmp_path / "layers_b").mkdir()
    np.save(tmp_path / "layers_a" / "0.npy", a0)
    np.save(tmp_path / "layers_b" / "0.npy", np.ascontiguousarray((a0 + 1).transpose(0, 3, 1, 2)))  # NCHW in B
    np.save(tmp_path / "layers_a" / "1.npy", a1)
    layers = [{"index": 0, "a": "x", "b": "y", "status": "source", "perm": [0, 2, 3, 1], "shape": [1, 6, 6, 4]},
              {"index": 1, "a": "p", "b": "q", "status": "ok", "perm": None, "shape": [2, 3, 1030, 20]}]
    (tmp_path / "result.json").write_text(json.dumps({"layers": layers}))
    (tmp_path / "layers_a.json").write_text(json.dumps({"x": str(tmp_path / "layers_a" / "0.npy")}))
    return tmp_path, a0, a1


def test_perm_nhwc_slices_and_stride(folder, tmp_path):
    d, a0, a1 = folder
    r = layer_tensors_task({"result_dir": str(d), "index": 0, "slice": 2}, _Ctx(tmp_path))
    assert r["kept_b"] and r["layout"] == "NHWC" and r["n_slices"] == 4 and r["channels"] == 4
    assert r["stats"]["max_abs"] == pytest.approx(1.0) and sum(r["hist"]["counts"]) == a0.size
    with np.load(r["npz"]) as z:
        assert np.array_equal(z["a"][2], a0[0, :, :, 2]) and np.allclose(z["diff"], 1.0)
    r = layer_tensors_task({"result_dir": str(d), "index": 1, "slice": 5, "max_elems": 3 * 344 * 7},
                           _Ctx(tmp_path))
    assert not r["kept_b"] and "not kept" in r["note"] and r["step"] == 3 and r["image"] == [344, 7]
    assert r["slice_count"] == 3 and r["slice_start"] <= 5 < r["slice_start"] + 3
    with np.load(r["npz"]) as z:
        assert z.files == ["a"]
        assert np.array_equal(z["a"][5 - r["slice_start"]], a1[1, 2, ::3, ::3])


def test_slices_of_shapes():
    assert slices_of(np.zeros(()))[0].shape == (1, 1, 1)
    assert slices_of(np.zeros(7))[0].shape == (1, 1, 7)
    assert slices_of(np.zeros((2, 5, 3)))[0].shape == (2, 5, 3)
    assert slices_of(np.zeros((2, 3, 4, 5)))[0].shape == (6, 4, 5)
    assert slices_of(np.zeros((2, 3, 4, 5, 6)))[0].shape == (24, 5, 6)
    assert channels_last((1, 8, 8, 3)) and not channels_last((1, 3, 8, 8)) and not channels_last((1, 8, 8, 3), "NCHW")
