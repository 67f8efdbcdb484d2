"""ONNX files that lie: text that is not UTF-8, external weights that point outside the model's folder."""
from __future__ import annotations

import os

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper

from converters.errors import CorruptFile
from converters.formats import load


def _model(tmp_path, location: str):
    w = numpy_helper.from_array(np.ones((2, 2), np.float32), "w")
    w.data_location = TensorProto.EXTERNAL
    w.ClearField("raw_data")
    for k, v in (("location", location), ("offset", "0"), ("length", "16")):
        e = w.external_data.add()
        e.key, e.value = k, v
    n = helper.make_node("MatMul", ["x", "w"], ["y"])
    g = helper.make_graph([n], "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 2])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 2])], [w])
    path = tmp_path / "m.onnx"
    path.write_bytes(helper.make_model(g).SerializeToString())
    return path


@pytest.mark.parametrize("location", ["../secret.bin", "/etc/passwd", "sub/../../secret.bin"])
def test_external_data_outside_the_folder_is_refused(tmp_path, location):
    (tmp_path.parent / "secret.bin").write_bytes(b"\x00" * 16)
    path = _model(tmp_path, location)
    with pytest.raises(CorruptFile, match="outside the model's folder"):
        load(str(path))


def test_external_data_fifo_is_refused(tmp_path):
    os.mkfifo(tmp_path / "w.bin")
    path = _model(tmp_path, "w.bin")
    with pytest.raises(CorruptFile, match="not a regular file"):
        load(str(path))


def test_external_data_beside_the_model_still_loads(tmp_path):
    (tmp_path / "w.bin").write_bytes(np.full((2, 2), 3, np.float32).tobytes())
    model = load(str(_model(tmp_path, "w.bin")))
    assert model.graph.initializers["w"].numpy().tolist() == [[3.0, 3.0], [3.0, 3.0]]


def test_text_that_is_not_utf8_is_one_clear_line(tmp_path):
    n = helper.make_node("Relu", ["x"], ["y"], name="NODEQQQQ")
    g = helper.make_graph([n], "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])])
    data = helper.make_model(g).SerializeToString().replace(b"NODEQQQQ", b"NODE\xff\xfe\xfd\xfc")
    path = tmp_path / "bad.onnx"
    path.write_bytes(data)
    with pytest.raises(CorruptFile, match="not valid UTF-8"):
        load(str(path))
