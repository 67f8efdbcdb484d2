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


# ---- layout rewrites before onnx2tf, on the forms tf2onnx writes for Keras models ------------------------------
def _run(model, feeds):
    return ort.InferenceSession(model.SerializeToString()).run(None, feeds)


def _keras_conv1d_layernorm(tail: str, opset: int = 15):
    """A Keras ``Conv1D`` + ``LayerNormalization``'s mean in tf2onnx's form, from a TFLite file (``tail="tflite"``:
    ``Transpose`` + ``Reshape`` back to 3-D) or a SavedModel (``"savedmodel"``: ``Squeeze``, then ``Transpose``):
    ``Unsqueeze`` of the ``[N, T, F]`` sequence at -3, ``Transpose`` to NCHW, a ``[1, 3]`` Conv, the mean as a
    3-D ``GlobalAveragePool``."""
    rng = np.random.default_rng(3)
    t, f, c = 16, 8, 12
    w = rng.standard_normal((c, f, 1, 3)).astype(np.float32)
    b = rng.standard_normal(c).astype(np.float32)
    inits = [numpy_helper.from_array(w, "w"), numpy_helper.from_array(b, "b"),
             numpy_helper.from_array(np.array([-3], np.int64), "ax"),
             numpy_helper.from_array(np.array([2], np.int64), "sq"),
             numpy_helper.from_array(np.array([-1, t, c], np.int64), "shape3")]
    nodes = [helper.make_node("Unsqueeze", ["x", "ax"], ["u"], name="expand"),
             helper.make_node("Transpose", ["u"], ["nchw"], perm=[0, 3, 1, 2], name="to_nchw"),
             helper.make_node("Conv", ["nchw", "w", "b"], ["conv"], kernel_shape=[1, 3], pads=[0, 1, 0, 1],
                              strides=[1, 1], dilations=[1, 1], group=1, name="conv1d")]
    if tail == "tflite":
        nodes += [helper.make_node("Relu", ["conv"], ["relu"], name="relu"),
                  helper.make_node("Transpose", ["relu"], ["nhwc"], perm=[0, 2, 3, 1], name="to_nhwc"),
                  helper.make_node("Reshape", ["nhwc", "shape3"], ["seq"], name="squeeze")]
    else:
        nodes += [helper.make_node("Squeeze", ["conv", "sq"], ["sqz"], name="squeeze"),
                  helper.make_node("Relu", ["sqz"], ["relu"], name="relu"),
                  helper.make_node("Transpose", ["relu"], ["seq"], perm=[0, 2, 1], name="to_ntc")]
    nodes += [helper.make_node("GlobalAveragePool", ["seq"], ["mean"], name="mean"),
              helper.make_node("Sub", ["seq", "mean"], ["y"], name="centre")]
    g = helper.make_graph(nodes, "conv1d", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", t, f])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n", t, c])], inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])
    onnx.checker.check_model(m)
    return m


@pytest.mark.parametrize("tail", ["tflite", "savedmodel"])
def test_keras_conv1d_from_tf2onnx_becomes_a_1d_conv_with_the_same_results(tail):
    from converters.onnx_fold import conv1d_from_unit_conv2d, global_pool_as_reduce

    m = _keras_conv1d_layernorm(tail)
    x = np.random.default_rng(0).standard_normal((2, 16, 8)).astype(np.float32)
    want = _run(m, {"x": x})[0]
    assert conv1d_from_unit_conv2d(m) == 1
    assert global_pool_as_reduce(m) == 1
    ops = [n.op_type for n in m.graph.node]
    assert "Unsqueeze" not in ops and "Squeeze" not in ops and "Reshape" not in ops and "GlobalAveragePool" not in ops
    conv = next(n for n in m.graph.node if n.op_type == "Conv")
    assert list(next(a for a in conv.attribute if a.name == "kernel_shape").ints) == [3]
    onnx.checker.check_model(m, full_check=True)
    np.testing.assert_allclose(_run(m, {"x": x})[0], want, rtol=0, atol=1e-5)
    assert conv1d_from_unit_conv2d(m) == 0 and global_pool_as_reduce(m) == 0  # nothing left to rewrite


def test_a_2d_conv_on_images_and_a_4d_global_pool_are_left_alone():
    from converters.onnx_fold import conv1d_from_unit_conv2d, global_pool_as_reduce

    rng = np.random.default_rng(1)
    nodes = [helper.make_node("Unsqueeze", ["x", "ax"], ["u"]),
             helper.make_node("Conv", ["u", "w"], ["c"], kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
             helper.make_node("GlobalAveragePool", ["c"], ["y"])]
    g = helper.make_graph(nodes, "img", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [3, 8, 8])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4, 1, 1])],
                          [numpy_helper.from_array(rng.standard_normal((4, 3, 3, 3)).astype(np.float32), "w"),
                           numpy_helper.from_array(np.array([0], np.int64), "ax")])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 15)])
    before = m.SerializeToString()
    assert conv1d_from_unit_conv2d(m) == 0 and global_pool_as_reduce(m) == 0
    assert m.SerializeToString() == before


def test_a_batch_norm_left_after_a_depthwise_conv_is_folded_into_it():
    from converters.onnx_fold import fold_scale_into_conv

    rng = np.random.default_rng(2)
    c = 6
    inits = [numpy_helper.from_array(rng.standard_normal((c, 1, 3, 3)).astype(np.float32), "dw"),
             numpy_helper.from_array(rng.random((1, c, 1, 1)).astype(np.float32) + 0.5, "scale"),
             numpy_helper.from_array(rng.standard_normal((1, c, 1, 1)).astype(np.float32), "shift")]
    nodes = [helper.make_node("Conv", ["x", "dw"], ["d"], group=c, kernel_shape=[3, 3], pads=[1, 1, 1, 1], name="dw"),
             helper.make_node("Mul", ["d", "scale"], ["m"], name="bn_mul"),
             helper.make_node("Add", ["m", "shift"], ["a"], name="bn_add"),
             helper.make_node("Relu", ["a"], ["y"])]
    g = helper.make_graph(nodes, "dw", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", c, 10, 10])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n", c, 10, 10])], inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])
    x = rng.standard_normal((2, c, 10, 10)).astype(np.float32)
    want = _run(m, {"x": x})[0]
    assert fold_scale_into_conv(m) == 2
    assert [n.op_type for n in m.graph.node] == ["Conv", "Relu"]
    assert sorted(t.name for t in m.graph.initializer) == ["dw__b_folded", "dw__w_folded"]
    onnx.checker.check_model(m, full_check=True)
    np.testing.assert_allclose(_run(m, {"x": x})[0], want, rtol=1e-5, atol=1e-5)
    assert fold_scale_into_conv(m) == 0


def test_gather_elements_from_an_all_zero_buffer_becomes_zeros():
    """transformers' RoBERTa embeddings: token types gathered from a registered all-zero buffer."""
    from converters.onnx_fold import uniform_gather_elements

    for static in (True, False):
        dims = [1, 8] if static else ["n", 8]
        nodes = [helper.make_node("GatherElements", ["buf", "pos"], ["tt"], axis=1, name="gather"),
                 helper.make_node("Gather", ["emb", "tt"], ["y"], axis=0)]
        inits = [numpy_helper.from_array(np.zeros((1, 66), np.int64), "buf"),
                 numpy_helper.from_array(np.arange(12, dtype=np.float32).reshape(2, 6), "emb")]
        g = helper.make_graph(nodes, "tt", [helper.make_tensor_value_info("pos", TensorProto.INT64, dims)],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, dims + [6])], inits)
        m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
        pos = np.arange(2, 10, dtype=np.int64).reshape(1, 8)
        want = _run(m, {"pos": pos})[0]
        assert uniform_gather_elements(m) == 1
        assert "GatherElements" not in [n.op_type for n in m.graph.node]
        assert "buf" not in {t.name for t in m.graph.initializer}
        onnx.checker.check_model(m, full_check=True)
        np.testing.assert_array_equal(_run(m, {"pos": pos})[0], want)
        assert uniform_gather_elements(m) == 0
