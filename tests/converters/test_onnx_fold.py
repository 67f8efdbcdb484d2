"""Zoo-style ONNX files whose weights are computed by nodes convert on every route from ONNX."""
from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from converters.jobs import run_job
from converters.onnx_fold import fold_constants


def zoo_style(path, opset: int) -> str:
    """Conv weights from a Constant node (through Identity), bias from ConstantOfShape, a Reshape of a
    constant shape: the forms several model-zoo files use instead of initializers."""
    rng = np.random.default_rng(opset)
    w = rng.standard_normal((8, 3, 3, 3)).astype(np.float32)
    fc = rng.standard_normal((8 * 4 * 4, 5)).astype(np.float32)
    nodes = [
        helper.make_node("Constant", [], ["conv1_w_0"], value=numpy_helper.from_array(w, "w")),
        helper.make_node("Identity", ["conv1_w_0"], ["conv1_w_1"]),
        helper.make_node("Constant", [], ["bshape"], value=numpy_helper.from_array(np.array([8], np.int64), "s")),
        helper.make_node("ConstantOfShape", ["bshape"], ["conv1_b_0"],
                         value=numpy_helper.from_array(np.array([0.25], np.float32), "v")),
        helper.make_node("Conv", ["x", "conv1_w_1", "conv1_b_0"], ["c"], pads=[1, 1, 1, 1], name="n0"),
        helper.make_node("Relu", ["c"], ["r"]),
        helper.make_node("MaxPool", ["r"], ["p"], kernel_shape=[4, 4], strides=[4, 4]),
        helper.make_node("Constant", [], ["flat"], value=numpy_helper.from_array(np.array([1, -1], np.int64), "f")),
        helper.make_node("Reshape", ["p", "flat"], ["f1"]),
        helper.make_node("MatMul", ["f1", "fc_w"], ["y"]),
    ]
    g = helper.make_graph(nodes, "zoo", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 16, 16])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 5])],
                          [numpy_helper.from_array(fc, "fc_w")])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])
    m.ir_version = 4 if opset < 13 else 8
    onnx.checker.check_model(m)
    onnx.save(m, str(path))
    return str(path)


def test_folding_keeps_the_results_and_leaves_plain_graphs_alone(tmp_path):
    m = onnx.load(zoo_style(tmp_path / "z.onnx", 13))
    x = np.random.default_rng(1).random((1, 3, 16, 16), np.float32)
    ref = ort.InferenceSession(m.SerializeToString()).run(None, {"x": x})[0]
    assert fold_constants(m) == 5
    assert [n.op_type for n in m.graph.node] == ["Conv", "Relu", "MaxPool", "Reshape", "MatMul"]
    assert sorted(t.name for t in m.graph.initializer) == ["conv1_b_0", "conv1_w_1", "fc_w", "flat"]
    onnx.checker.check_model(m)
    got = ort.InferenceSession(m.SerializeToString()).run(None, {"x": x})[0]
    np.testing.assert_array_equal(ref, got)
    assert fold_constants(m) == 0  # nothing left to fold: the second pass changes nothing


@pytest.mark.parametrize("opset,target,ext", [(9, "tflite", "tflite"), (17, "tflite", "tflite"),
                                               (9, "torch", "pt2"), (17, "torch", "pt2")])
def test_routes_from_zoo_style_onnx_convert_with_parity(tmp_path, opset, target, ext):
    src = zoo_style(tmp_path / f"zoo{opset}.onnx", opset)
    out = str(tmp_path / f"zoo{opset}.{ext}")
    result, job = run_job("convert", {"src": src, "to": target, "out": out, "options": {}})
    assert result["output"] == out
    job.cleanup()
    cmp, job = run_job("compare", {"a": src, "b": out, "repeats": 1, "capture_map": True})
    job.cleanup()
    assert cmp["passed"] is True, cmp
    assert cmp["outputs"][0]["max_abs"] < 1e-4


def _stacked_lstm_onnx(path) -> str:
    """A two-layer nn.LSTM classifier on its last layer's final state (``h_n[-1]``), exported by torch.onnx:
    the exporter concatenates both layers' states and gathers the last."""
    import torch
    from torch import nn

    class LSTMClassifier(nn.Module):
        def __init__(self):
            super().__init__()
            self.lstm = nn.LSTM(6, 10, num_layers=2, batch_first=True)
            self.fc = nn.Linear(10, 3)

        def forward(self, x):
            _, (h, _c) = self.lstm(x)
            return self.fc(h[-1])

    torch.manual_seed(0)
    torch.onnx.export(LSTMClassifier().eval(), (torch.randn(1, 7, 6),), str(path), dynamo=True,
                      input_names=["x"], output_names=["y"])
    return str(path)


def test_stacked_rnn_state_pick_is_rewritten_without_changing_results(tmp_path):
    from converters.onnx_fold import pick_from_concat

    src = _stacked_lstm_onnx(tmp_path / "lstm.onnx")
    model = onnx.load(src)
    gathers = [n for n in model.graph.node if n.op_type == "Gather"]
    assert gathers and any(n.op_type == "Concat" for n in model.graph.node)
    assert pick_from_concat(model) == 1
    assert not any(n.op_type == "Concat" for n in model.graph.node)  # the concat fed only the gather
    onnx.checker.check_model(model)
    fixed = tmp_path / "fixed.onnx"
    onnx.save(model, str(fixed))
    x = np.random.default_rng(0).standard_normal((1, 7, 6)).astype(np.float32)
    want = ort.InferenceSession(src).run(None, {"x": x})[0]
    got = ort.InferenceSession(str(fixed)).run(None, {"x": x})[0]
    np.testing.assert_array_equal(got, want)
    assert pick_from_concat(model) == 0  # nothing left to rewrite


def test_stacked_lstm_to_tflite_keeps_its_batch(tmp_path):
    """onnx2tf alone gives this model the layer count as batch (2 x 3 instead of 1 x 3); the route does not."""
    src = _stacked_lstm_onnx(tmp_path / "lstm.onnx")
    out = str(tmp_path / "lstm.tflite")
    _, job = run_job("convert", {"src": src, "to": "tflite", "out": out, "options": {}})
    job.cleanup()
    res, job = run_job("compare", {"a": src, "b": out, "repeats": 1})
    job.cleanup()
    assert res["passed"] is True, res
    assert res["outputs"][0]["shape"] == [1, 3]
