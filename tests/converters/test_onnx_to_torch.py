"""ONNX -> PyTorch on the files onnx2torch itself handles: old opsets (upgraded first), shape inputs."""
from __future__ import annotations

import json

import numpy as np
import pytest
import onnx
from onnx import TensorProto, helper, numpy_helper

from converters.jobs import run_job


def _save(tmp_path, name, nodes, inputs, outputs, inits, opset):
    g = helper.make_graph(nodes, "g", inputs, outputs, inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])
    m.ir_version = 4 if opset < 13 else 8
    onnx.checker.check_model(m)
    path = tmp_path / name
    onnx.save(m, str(path))
    return str(path)


def _convert_and_compare(src, out, **compare):
    res, job = run_job("convert", {"src": src, "to": "torch", "out": out, "options": {}})
    log = "\n".join(res.get("log") or [])
    job.cleanup()
    cmp, job = run_job("compare", dict({"a": src, "b": out, "repeats": 1}, **compare))
    job.cleanup()
    return log, cmp


def test_opset9_upsample_is_upgraded_then_converted(tmp_path):
    src = _save(tmp_path, "up9.onnx",
                [helper.make_node("Upsample", ["x", "scales"], ["u"], mode="nearest"),
                 helper.make_node("Clip", ["u"], ["y"], min=0.0, max=0.5)],
                [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2, 4, 4])],
                [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 2, 8, 8])],
                [numpy_helper.from_array(np.array([1, 1, 2, 2], np.float32), "scales")], 9)
    log, cmp = _convert_and_compare(src, str(tmp_path / "up9.pt2"))
    assert "upgraded the model from opset 9 to 17" in log
    assert cmp["passed"] is True and cmp["outputs"][0]["max_abs"] == 0.0


def test_integer_shape_input_traces_with_a_shape_that_fits(tmp_path):
    src = _save(tmp_path, "expand.onnx", [helper.make_node("Expand", ["x", "shape"], ["y"])],
                [helper.make_tensor_value_info("x", TensorProto.FLOAT, [3, 1]),
                 helper.make_tensor_value_info("shape", TensorProto.INT64, [2])],
                [helper.make_tensor_value_info("y", TensorProto.FLOAT, [3, None])], [], 13)
    feeds = tmp_path / "feeds.npz"
    np.savez(feeds, x=np.arange(3, dtype=np.float32).reshape(3, 1), shape=np.array([1, 1], np.int64))
    _log, cmp = _convert_and_compare(src, str(tmp_path / "expand.pt2"), inputs=[str(feeds)])
    assert cmp["passed"] is True, json.dumps(cmp)[:2000]


@pytest.mark.parametrize("opset", [13, 18])
def test_global_max_pool_converts_as_a_reduction(tmp_path, opset):
    """Keras' GlobalMaxPooling2D (VGG16 with pooling="max") reaches ONNX as GlobalMaxPool, which onnx2torch
    has no converter for."""
    src = _save(tmp_path, f"gmp{opset}.onnx",
                [helper.make_node("Relu", ["x"], ["r"]), helper.make_node("GlobalMaxPool", ["r"], ["y"], name="gmp")],
                [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4, 5, 6])],
                [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4, 1, 1])], [], opset)
    _log, cmp = _convert_and_compare(src, str(tmp_path / f"gmp{opset}.pt2"))
    assert cmp["passed"] is True and cmp["outputs"][0]["max_abs"] == 0.0
    assert cmp["outputs"][0]["shape"] == [1, 4, 1, 1]


def test_node_names_with_commas_and_semicolons_give_a_readable_pt2(tmp_path):
    """tf2onnx names fused nodes ``a/Relu6;a/batchnorm/add_1;a/convolution`` (MobileNetV2 from TFLite); the
    .pt2 keeps module paths in text joined with those characters."""
    rng = np.random.default_rng(0)
    w = rng.standard_normal((4, 3, 3, 3)).astype(np.float32)
    src = _save(tmp_path, "fused.onnx",
                [helper.make_node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1],
                                  name="m/Conv1_relu/Relu6;m/bn_Conv1/batchnorm/add_1;m/Conv1/convolution"),
                 helper.make_node("Relu", ["c"], ["y"], name="m/out,relu")],
                [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8])],
                [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4, 8, 8])],
                [numpy_helper.from_array(w, "w")], 13)
    _log, cmp = _convert_and_compare(src, str(tmp_path / "fused.pt2"))
    assert cmp["passed"] is True, cmp
    assert cmp["outputs"][0]["max_abs"] < 1e-5


def test_an_ir3_file_whose_weights_are_not_listed_as_inputs_is_upgraded(tmp_path):
    """IR 3 wants every initializer among the graph inputs; files written without that run in onnxruntime, and
    their old ops (Flatten-1) need the opset upgrade, which must not stop at the first unlisted weight."""
    rng = np.random.default_rng(1)
    g = helper.make_graph(
        [helper.make_node("Conv", ["x", "W", "B"], ["c"], pads=[1, 1, 1, 1]),
         helper.make_node("Flatten", ["c"], ["f"], axis=1),
         helper.make_node("Gemm", ["f", "FW", "FB"], ["y"], transB=1)], "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2, 4, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3])],
        [numpy_helper.from_array(rng.standard_normal((4, 2, 3, 3)).astype(np.float32), "W"),
         numpy_helper.from_array(np.zeros(4, np.float32), "B"),
         numpy_helper.from_array(rng.standard_normal((3, 64)).astype(np.float32), "FW"),
         numpy_helper.from_array(np.zeros(3, np.float32), "FB")])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 8)])
    m.ir_version = 3
    src = str(tmp_path / "ir3.onnx")
    onnx.save(m, src)
    log, cmp = _convert_and_compare(src, str(tmp_path / "ir3.pt2"))
    assert "upgraded the model from opset 8 to 17" in log
    assert cmp["passed"] is True and cmp["outputs"][0]["max_abs"] < 1e-5
