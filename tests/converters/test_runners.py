"""Runners on real tiny models (built once by tests/models/compare_models.py): specs, inference, feed
validation, capture of intermediates, devices."""
from __future__ import annotations

import numpy as np
import pytest

from converters.errors import TrustRequired
from converters.runners import DeviceUnavailable, InvalidFeeds, RunnerError, list_devices, runner_for

M = "compare_models"


@pytest.fixture(scope="module")
def x():
    return np.random.default_rng(0).random((2, 3, 16, 16), dtype=np.float32)


@pytest.fixture(scope="module")
def reference(model_file, x):
    with runner_for(model_file(M, "cnn.onnx").path) as r:
        return r.infer({"x": x})


def test_onnx_runner_specs_infer_and_close(model_file, x):
    r = runner_for(model_file(M, "cnn.onnx").path)
    with r:
        ins, outs = r.input_specs(), r.output_specs()
        assert [(s.name, s.dtype) for s in ins] == [("x", "float32")]
        assert isinstance(ins[0].shape[0], str) and ins[0].shape[1:] == (3, 16, 16)  # dynamic batch
        assert [s.name for s in outs] == ["logits", "features"]
        out = r.infer({"x": x})
        assert list(out) == ["logits", "features"]
        assert out["logits"].shape == (2, 10) and out["features"].shape == (2, 16, 8, 8)
        assert r.last_inference_time > 0
        assert (out["features"] >= 0).all()  # it ends in a ReLU
    assert not r.is_open
    with pytest.raises(RunnerError, match="not open"):
        r.infer({"x": x})


def test_feeds_are_validated(model_file, x):
    path = model_file(M, "cnn.onnx").path
    with runner_for(path) as r:
        with pytest.raises(InvalidFeeds, match=r"missing \['x'\].*unknown \['y'\]"):
            r.infer({"y": x})
        with pytest.raises(InvalidFeeds, match=r"dims \[2, 3\] differ"):
            r.infer({"x": np.zeros((1, 3, 8, 8), np.float32)})
        with pytest.raises(InvalidFeeds, match="rank 4"):
            r.infer({"x": np.zeros((3, 16, 16), np.float32)})
        with pytest.raises(InvalidFeeds, match="is int64 but the model expects float32"):
            r.infer({"x": np.zeros((1, 3, 16, 16), np.int64)})
        # same kind, other width: cast, not refused
        out = r.infer({"x": x.astype(np.float64)})
        assert out["logits"].dtype == np.float32


def test_torch_runners_match_onnx(model_file, x, reference):
    for name in ("cnn.pt2", "cnn_ts.pt"):
        with runner_for(model_file(M, name).path) as r:
            assert r.runtime == "torch"
            assert r.input_specs()[0].name == "x"
            out = r.infer({"x": x})
            assert list(out) == ["output_0", "output_1"]
            np.testing.assert_allclose(out["output_0"], reference["logits"], atol=1e-5)
            np.testing.assert_allclose(out["output_1"], reference["features"], atol=1e-5)
    with runner_for(model_file(M, "cnn.pt2").path) as r:
        spec = r.input_specs()[0]
        assert spec.dtype == "float32" and isinstance(spec.shape[0], str) and spec.shape[1:] == (3, 16, 16)
        assert r.infer({"x": x[:1]})["output_0"].shape == (1, 10)  # the dynamic batch really is dynamic


def test_torch_capture_modules_and_fx_nodes(model_file, x, reference):
    with runner_for(model_file(M, "cnn.pt2").path) as r:
        out = r.infer({"x": x}, capture=["conv2"])  # a module path: the module's output
        assert out["conv2"].shape == (2, 16, 8, 8)
        np.testing.assert_allclose(np.maximum(out["conv2"], 0), reference["features"], atol=1e-5)
        relus = [n.name for n in r.module.graph.nodes if n.op == "call_function" and "relu" in str(n.target)]
        out = r.infer({"x": x}, capture=[relus[-1]])  # an FX node name
        np.testing.assert_allclose(out[relus[-1]], reference["features"], atol=1e-5)
        np.testing.assert_allclose(out["output_0"], reference["logits"], atol=1e-5)
        with pytest.raises(RunnerError, match="no module or graph node named 'nope'"):
            r.infer({"x": x}, capture=["nope"])
    with runner_for(model_file(M, "cnn_ts.pt").path) as r:
        with pytest.raises(RunnerError, match="TorchScript"):
            r.infer({"x": x}, capture=["conv2"])


def test_torch_pickle_needs_trust_and_an_architecture(model_file):
    path = model_file(M, "cnn_state_dict.pt").path
    with pytest.raises(TrustRequired, match="--trust"):
        runner_for(path).open()
    with pytest.raises(RunnerError, match="state_dict has no architecture"):
        runner_for(path, trust=True).open()


def test_pickled_module_runs_only_with_trust(model_file, x, reference):
    path = model_file(M, "cnn_pickled.pt").path
    with pytest.raises(TrustRequired):
        runner_for(path).open()
    with runner_for(path, trust=True) as r:
        assert [s.name for s in r.input_specs()] == ["x"]  # from forward's signature
        out = r.infer({"x": x}, capture=["conv2"])  # a live module: hooks
        np.testing.assert_allclose(out["output_0"], reference["logits"], atol=1e-5)
        np.testing.assert_allclose(np.maximum(out["conv2"], 0), reference["features"], atol=1e-5)


def test_keras2_h5_and_single_output_keras(model_file):
    v = np.arange(12, dtype=np.float32).reshape(2, 6)
    with runner_for(model_file(M, "tfk_dense.h5").path) as r:
        assert [s.name for s in r.input_specs()] == ["v"]
        out = r.infer({"v": v})
        w = np.arange(18, dtype=np.float32).reshape(6, 3) / 10
        np.testing.assert_allclose(list(out.values())[0], v @ w + 1, rtol=1e-5)
    with runner_for(model_file(M, "keras_single.keras").path) as r:
        assert [s.name for s in r.output_specs()] == ["out"]
        assert r.infer({"v": v[:, :4]})["out"].shape == (2, 2)


def test_tf_runners_keras_and_savedmodel(model_file, x, reference):
    xh = x.transpose(0, 2, 3, 1).copy()
    for name in ("keras_twin.keras", "keras_twin_savedmodel"):
        with runner_for(model_file(M, name).path) as r:
            assert r.runtime == "tensorflow"
            assert [s.name for s in r.input_specs()] == ["x"]
            specs = {s.name: s.shape for s in r.output_specs()}
            assert specs["logits"][1:] == (10,) and specs["features"][1:] == (8, 8, 16)
            out = r.infer({"x": xh})
            np.testing.assert_allclose(out["logits"], reference["logits"], atol=1e-5)
            np.testing.assert_allclose(out["features"].transpose(0, 3, 1, 2), reference["features"], atol=1e-5)
    with runner_for(model_file(M, "keras_twin.keras").path) as r:
        out = r.infer({"x": xh}, capture=["relu1"])
        assert out["relu1"].shape == (2, 16, 16, 8) and (out["relu1"] >= 0).all()
    with pytest.raises(RunnerError, match="no signature 'nope'"):
        runner_for(model_file(M, "keras_twin_savedmodel").path, signature="nope").open()


def test_tflite_runner_resizes_and_captures(model_file, x, reference):
    with runner_for(model_file(M, "keras_twin.tflite").path) as r:
        assert r.runtime == "tflite"
        assert [s.name for s in r.input_specs()] == ["x"]
        assert sorted(s.name for s in r.output_specs()) == ["features", "logits"]
        xh = x.transpose(0, 2, 3, 1).copy()
        out = r.infer({"x": xh})  # batch 2 into a model exported with a dynamic batch
        np.testing.assert_allclose(out["logits"], reference["logits"], atol=1e-5)
        out1 = r.infer({"x": xh[:1]})
        np.testing.assert_allclose(out1["logits"], reference["logits"][:1], atol=1e-5)
        names = [d["name"] for d in r._interp.get_tensor_details()]
        pool = next(n for n in names if n.endswith("MaxPool2d"))  # after ReLU: never negative
        cap = r.infer({"x": xh}, capture=[pool])
        assert cap[pool].shape == (2, 8, 8, 8) and (cap[pool] >= 0).all() and cap[pool].max() > 0
        np.testing.assert_allclose(cap["logits"], reference["logits"], atol=1e-5)


def test_onnx_capture_intermediate(model_file, x, reference):
    with runner_for(model_file(M, "cnn.onnx").path) as r:
        out = r.infer({"x": x}, capture=["relu", "conv2d_1"])
        assert list(out)[:2] == ["logits", "features"]
        assert out["relu"].shape == (2, 8, 16, 16) and (out["relu"] >= 0).all()
        np.testing.assert_allclose(np.maximum(out["conv2d_1"], 0), reference["features"], atol=1e-6)
        np.testing.assert_array_equal(out["logits"], reference["logits"])
        with pytest.raises(RunnerError, match="no tensor named 'nope'"):
            r.infer({"x": x}, capture=["nope"])


def test_list_devices_cpu_everywhere_and_reasons():
    devs = list_devices()
    by = {(d["runtime"], d["device"]): d for d in devs}
    for rt in ("torch", "tensorflow", "tflite", "onnxruntime"):
        assert by[(rt, "cpu")]["available"], by[(rt, "cpu")]
    import onnxruntime
    if "CUDAExecutionProvider" not in onnxruntime.get_available_providers():
        d = by[("onnxruntime", "cuda:0")]
        assert not d["available"] and "built without CUDA" in d["reason"]
    assert not any(d["device"] == "AzureExecutionProvider" for d in devs)  # not a device of this machine


torch = pytest.importorskip("torch")


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a CUDA GPU")
def test_cuda_absent_is_explained(model_file):
    d = next(d for d in list_devices(["torch"]) if d["device"] == "cuda:0")
    assert not d["available"] and d["reason"]
    with pytest.raises(DeviceUnavailable, match="cuda:0"):
        runner_for(model_file(M, "cnn.pt2").path, device="cuda:0").open()
    with pytest.raises(DeviceUnavailable, match="onnxruntime-gpu|cpu"):
        runner_for(model_file(M, "cnn.onnx").path, device="cuda:0").open()


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA GPU on this machine")
def test_torch_on_cuda_matches_cpu(model_file, x):
    path = model_file(M, "cnn.pt2").path
    with runner_for(path) as cpu, runner_for(path, device="cuda:0") as gpu:
        a, b = cpu.infer({"x": x}), gpu.infer({"x": x})
    np.testing.assert_allclose(a["output_0"], b["output_0"], atol=1e-4)
