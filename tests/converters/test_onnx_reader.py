"""The ONNX reader on real exported models: counts, I/O, scopes, shapes, subgraphs, external data."""
from __future__ import annotations

import shutil

import numpy as np
import pytest

from converters.formats import detect, load

M = "onnx_models"
NAMES = ["cnn_dynamo.onnx", "cnn_legacy.onnx", "encoder_external.onnx", "if_subgraph.onnx", "keras_tf2onnx.onnx"]


@pytest.mark.parametrize("name", NAMES)
def test_counts_and_io_match_the_file(model_file, name):
    mf = model_file(M, name)
    assert detect(mf.path) == "onnx"
    m = load(mf.path)
    assert m.format == "onnx"
    assert m.node_count == mf.facts["node_count"]
    assert m.param_count == mf.facts["param_count"]
    assert [n.name for n in m.graph.nodes] == mf.facts["node_names"]
    for got, want in zip(m.graph.input_values, mf.facts["inputs"], strict=True):
        assert (got.name, list(got.shape), got.dtype) == (want["name"], want["shape"], want["dtype"])
    assert [v.name for v in m.graph.output_values] == [o["name"] for o in mf.facts["outputs"]]


def test_every_edge_has_a_shape(model_file):
    m = load(model_file(M, "cnn_dynamo.onnx").path)
    for node in m.graph.nodes:
        for out in node.outputs:
            v = m.graph.value(out)
            assert v.shape is not None and v.dtype in ("float32", "int64"), (node.name, v)


def test_dynamo_metadata_gives_module_scopes(model_file):
    m = load(model_file(M, "encoder_external.onnx").path)
    scopes = {n.scope for n in m.graph.nodes}
    assert "encoder/layers.0/self_attn" in scopes
    assert "encoder/layers.1/norm2" in scopes
    assert "embed" in scopes and "head" in scopes


def test_legacy_names_give_scopes_and_dynamic_dims(model_file):
    m = load(model_file(M, "cnn_legacy.onnx").path)
    assert m.graph.input_values[0].shape == ("batch", 3, 32, 32)
    conv = next(n for n in m.graph.nodes if n.op_type == "Conv")
    assert conv.name.startswith("/0/") and conv.scope == "0"
    assert conv.attrs["kernel_shape"] == [3, 3]


def test_tf2onnx_names_give_layer_scopes(model_file):
    m = load(model_file(M, "keras_tf2onnx.onnx").path)
    assert any(s.startswith("kcnn_1/fc_1") for s in {n.scope for n in m.graph.nodes})


def test_if_subgraphs_and_shape_inference(model_file):
    m = load(model_file(M, "if_subgraph.onnx").path)
    node = next(n for n in m.graph.nodes if n.op_type == "If")
    assert set(node.subgraphs) == {"then_branch", "else_branch"}
    assert node.subgraphs["else_branch"].nodes[0].op_type == "Neg"
    # the file declares z as [?, ?]; shape inference works it out through the If and the MatMul
    assert m.graph.value("z").shape == (2, 4)
    assert sorted(n.op_type for n in m.graph.walk()) == ["Greater", "If", "MatMul", "Neg", "ReduceSum", "Relu"]


def test_external_data_is_read_lazily_and_missing_data_is_a_warning(model_file, tmp_path):
    mf = model_file(M, "encoder_external.onnx")
    assert mf.facts["data_files"], "the exporter should have written an external data file"
    m = load(mf.path)
    assert m.extra.get("external_data") is True
    t = max(m.graph.initializers.values(), key=lambda t: t.numel)   # a real weight matrix
    assert t._cache is None                      # nothing read yet
    arr = t.numpy()
    assert arr.shape == t.shape and len(arr.shape) == 2 and np.isfinite(arr).all() and arr.std() > 0
    stats = t.stats()
    assert stats["min"] < stats["mean"] < stats["max"]
    # the same model without its data file still opens (graph, shapes), with a warning
    lone = tmp_path / "lonely.onnx"
    shutil.copy(mf.path, lone)
    m2 = load(str(lone))
    assert m2.node_count == mf.facts["node_count"]
    assert any("external data" in w for w in m2.warnings)


def test_json_round_trip(model_file):
    from converters.graph import Model

    m = load(model_file(M, "encoder_external.onnx").path)
    back = Model.from_json(m.to_json())
    assert back.node_count == m.node_count
    assert back.param_count == m.param_count
    assert [n.scope for n in back.graph.nodes] == [n.scope for n in m.graph.nodes]
    assert back.graph.value(m.graph.outputs[0]).shape == (1, 8, 5)
