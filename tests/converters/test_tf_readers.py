"""TF-family readers (.keras, .h5, SavedModel, .tflite) against tiny real models built by Keras/TF themselves."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from converters.errors import TensorbridgeError
from converters.formats import load

ROOT = Path(__file__).resolve().parents[2]
M = "tf_models"


def _shapes(values):
    return [None if v.shape is None else list(v.shape) for v in values]


def _check_keras_facts(model, facts):
    g = model.graph
    assert model.node_count == facts["node_count"]
    assert [n.op_type for n in g.nodes] == facts["layer_classes"]
    assert [n.name for n in g.nodes] == facts["layer_names"]
    assert model.param_count == facts["param_count"]
    assert _shapes(g.input_values) == [i["shape"] for i in facts["inputs"]]
    assert _shapes(g.output_values) == [o["shape"] for o in facts["outputs"]]
    assert [v.dtype for v in g.output_values] == [o["dtype"] for o in facts["outputs"]]
    json.dumps(model.to_dict())  # the whole graph travels as JSON to the window


@pytest.mark.parametrize("name,fmt", [("cnn.keras", "keras"), ("cnn.h5", "keras.h5")])
def test_keras_functional_cnn(model_file, name, fmt):
    mf = model_file(M, name)
    model = load(mf.path)
    assert model.format == fmt
    _check_keras_facts(model, mf.facts)
    g = model.graph
    by_name = {n.name: n for n in g.nodes}
    # edges follow the functional graph: the residual Add reads relu1 and proj
    assert by_name["add"].inputs[:2] == ["relu1", "proj"]
    assert g.value("pool").shape == (None, 8, 8, 4)
    # every stored weight is an initializer with Keras's own shape, wired into its layer's node
    for wpath, shape in mf.facts["weights"].items():
        assert list(g.initializers[wpath].shape) == shape, wpath
        assert wpath in by_name[wpath.split("/")[0]].inputs
    assert set(g.initializers) == set(mf.facts["weights"])
    t = g.initializers["conv1/kernel"]
    assert t._cache is None  # lazy until asked
    np.testing.assert_allclose(t.numpy().ravel()[:5], mf.facts["kernel_conv1"], rtol=1e-6)
    assert by_name["bn1"].attrs["epsilon"] == pytest.approx(0.001)
    assert "kernel_initializer" not in by_name["conv1"].attrs


def test_keras_sequential_mlp(model_file):
    mf = model_file(M, "mlp.keras")
    model = load(mf.path)
    _check_keras_facts(model, mf.facts)
    g = model.graph
    chain = [g.inputs[0]] + [n.outputs[0] for n in g.nodes]
    for prev, n in zip(chain, g.nodes):
        assert n.inputs[0] == prev
    assert g.value("fc1").shape == (None, 16)


def test_keras_nested_models_become_scopes(model_file):
    mf = model_file(M, "nested.keras")
    model = load(mf.path)
    g = model.graph
    assert [n.name for n in g.nodes] == mf.facts["leaf_nodes"]
    assert [n.scope for n in g.nodes] == ["inner_seq", "inner_func", ""]
    assert model.param_count == mf.facts["param_count"]
    assert _shapes(g.output_values) == [o["shape"] for o in mf.facts["outputs"]]
    assert g.nodes[1].inputs[0] == g.nodes[0].outputs[0]  # inner_func reads inner_seq's output
    assert g.initializers["inner_seq/d1/kernel"].shape == (8, 5)


def test_legacy_tf_keras_h5_infers_shapes(model_file):
    """A Keras 2 config records no tensor shapes: they are inferred layer by layer."""
    mf = model_file(M, "tk_cnn.h5")
    model = load(mf.path)
    assert model.format == "keras.h5" and model.extra["keras_version"].startswith("2.")
    assert model.node_count == mf.facts["node_count"]
    assert model.param_count == mf.facts["param_count"]
    assert model.graph.value("bn1").shape == tuple(mf.facts["bn_shape"])
    assert _shapes(model.graph.output_values) == [o["shape"] for o in mf.facts["outputs"]]
    assert "bn1/moving_variance" in model.graph.initializers
    assert not model.warnings


def test_tf_keras_keras_archive_weights_go_to_the_right_layers(model_file):
    mf = model_file(M, "tk_cnn.keras")
    model = load(mf.path)
    g = model.graph
    assert {k: list(t.shape) for k, t in g.initializers.items()} == mf.facts["weights"]
    assert model.param_count == mf.facts["param_count"]
    assert _shapes(g.output_values) == mf.facts["outputs"]


def test_weights_only_h5(model_file):
    mf = model_file(M, "weights_only.h5")
    model = load(mf.path)
    assert model.is_weights_only
    assert len(model.weights) == mf.facts["weight_count"]
    assert model.param_count == mf.facts["param_count"]
    w = {e.name: e.tensor for e in model.weights}
    assert w["fc1/kernel"].shape == (8, 16)
    assert w["fc1/kernel"].numpy().shape == (8, 16)


def test_lambda_layer_runs_only_with_trust(model_file):
    mf = model_file(M, "lambda.keras")
    marker = mf.facts["marker"]
    if os.path.exists(marker):
        os.remove(marker)
    model = load(mf.path)
    assert not os.path.exists(marker), "opening without trust ran the Lambda's stored code"
    assert [n.op_type for n in model.graph.nodes] == ["Dense", "Lambda"]
    assert model.graph.value("fc").shape == (None, 3)
    assert model.graph.output_values[0].shape is None  # only running the lambda could tell
    assert any("trust" in w for w in model.warnings)
    assert model.extra["code_layers"] == "double"
    assert model.param_count == mf.facts["param_count"]
    try:
        trusted = load(mf.path, trust=True)
        assert os.path.exists(marker), "with trust the Lambda is deserialised and called to infer shapes"
        assert _shapes(trusted.graph.output_values) == [o["shape"] for o in mf.facts["outputs"]]
    finally:
        if os.path.exists(marker):
            os.remove(marker)


def test_custom_layer_is_shown_not_run(model_file):
    mf = model_file(M, "custom.keras")
    model = load(mf.path)
    g = model.graph
    assert [n.op_type for n in g.nodes] == ["Dense", "Dense", "Scale", "Dense"]
    assert [n.name for n in g.nodes] == ["shared", "shared#1", "scale", "out"]
    # a layer called twice: two nodes reading the same weights, chained
    assert g.nodes[1].inputs[0] == g.nodes[0].outputs[0]
    assert "shared/kernel" in g.nodes[0].inputs and "shared/kernel" in g.nodes[1].inputs
    assert g.nodes[2].attrs["untrusted"] and g.nodes[2].attrs["factor"] == 2.0
    assert any("custom classes" in w and "not run" in w for w in model.warnings)
    # shapes recorded in the Keras 3 config are used even around the custom layer
    assert g.value("scale").shape == (None, 5)
    assert _shapes(g.output_values) == [o["shape"] for o in mf.facts["outputs"]]
    assert model.param_count == mf.facts["param_count"]
    weights = load(str(Path(mf.path).with_name("custom.weights.h5")))
    assert weights.is_weights_only and len(weights.weights) == mf.facts["weight_count"]
    assert weights.param_count == mf.facts["param_count"]


def test_subclassed_model_shows_its_layers(model_file):
    mf = model_file(M, "subclassed.keras")
    model = load(mf.path)
    assert sorted(n.name for n in model.graph.nodes) == mf.facts["layers"]
    assert model.param_count == mf.facts["param_count"]
    assert any("subclassed" in w for w in model.warnings)


def test_tf_keras_nested_h5(model_file):
    mf = model_file(M, "tk_nested.h5")
    model = load(mf.path)
    assert [n.name for n in model.graph.nodes] == mf.facts["leaf_nodes"]
    assert model.graph.nodes[1].inputs[0] == "inner/d1"
    assert _shapes(model.graph.output_values) == mf.facts["outputs"]
    assert model.param_count == mf.facts["param_count"]
    assert not model.warnings


def test_keras_application_counts(model_file):
    mf = model_file(M, "mobilenet_v2.keras")
    model = load(mf.path)
    _check_keras_facts(model, mf.facts)
    assert len(model.graph.initializers) == len(mf.facts["weights"])


def test_savedmodel_from_keras_export(model_file):
    mf = model_file(M, "exported_savedmodel")
    model = load(mf.path)
    assert model.format == "savedmodel"
    assert set(model.signatures) == set(mf.facts["signatures"])
    assert model.graph is model.signatures["serving_default"]
    for name, sig in mf.facts["signatures"].items():
        g = model.signatures[name]
        assert {v.name: list(v.shape) for v in g.input_values} == sig["inputs"]
        assert {v.name: list(v.shape) for v in g.output_values} == sig["outputs"]
    g = model.graph
    # function calls are inlined: the user sees the layers' ops, not one call node
    ops = {n.op_type for n in g.nodes}
    assert {"Conv2D", "MatMul", "Relu", "MaxPool"} <= ops
    assert not ops & {"StatefulPartitionedCall", "PartitionedCall", "NoOp"}
    conv = [n for n in g.nodes if n.op_type == "Conv2D"]
    assert len(conv) == 2 and conv[0].scope.endswith("conv1_1")
    assert g.value(conv[0].outputs[0]).shape == (None, 16, 16, 4)
    assert sorted(g.initializers) == mf.facts["variables"]
    assert model.param_count == mf.facts["param_count"]
    k = g.initializers["conv1/kernel"]
    assert k._cache is None and k.numpy().shape == (3, 3, 3, 4)
    # every node input is produced by a node, a graph input or a weight
    known = set(g.inputs) | set(g.initializers) | {o for n in g.nodes for o in n.outputs}
    assert all(i in known for n in g.nodes for i in n.inputs if i)
    json.dumps(model.to_dict())


def test_savedmodel_without_stored_shapes_gets_inferred_ones(model_file):
    """Every `_output_shapes` attribute removed: TF's static shape inference recovers the same shapes."""
    full = load(model_file(M, "exported_savedmodel").path).graph
    mf = model_file(M, "stripped_savedmodel")
    assert mf.facts["removed"] > 50
    g = load(mf.path).graph
    outs = [o for n in g.nodes for o in n.outputs]
    assert len(g.nodes) == len(full.nodes) and outs
    for o in outs:
        assert g.value(o).shape == full.value(o).shape, o
    pool = next(n for n in g.nodes if n.op_type == "MaxPool")
    assert list(g.value(pool.outputs[0]).shape) == mf.facts["pool_shape"]


def test_savedmodel_two_signatures(model_file):
    mf = model_file(M, "module_savedmodel")
    model = load(mf.path)
    assert set(model.signatures) == {"serving_default", "count"}
    for name, sig in mf.facts["signatures"].items():
        g = model.signatures[name]
        assert {v.name: list(v.shape) for v in g.input_values} == sig["inputs"]
        assert {v.name: list(v.shape) for v in g.output_values} == sig["outputs"]
    assert model.param_count == mf.facts["param_count"]
    np.testing.assert_allclose(model.graph.initializers["w"].numpy(), np.full((3, 2), 0.5))
    count = model.signatures["count"]
    assert "Sum" in {n.op_type for n in count.nodes} and not count.initializers
    assert model.signatures["count"].value("ids").dtype == "int32"


def test_tflite(model_file):
    mf = model_file(M, "cnn.tflite")
    model = load(mf.path)
    g = model.graph
    assert model.format == "tflite"
    assert [n.op_type for n in g.nodes] == mf.facts["op_types"]
    assert model.node_count == mf.facts["op_count"]
    for vals, facts in ((g.input_values, mf.facts["inputs"]), (g.output_values, mf.facts["outputs"])):
        assert [v.name for v in vals] == [f["name"] for f in facts]
        assert [list(v.shape) for v in vals] == [[None if d < 0 else d for d in f["shape_signature"]] for f in facts]
        assert [v.dtype for v in vals] == [f["dtype"] for f in facts]
    assert len(g.values) >= mf.facts["tensor_count"] - 1
    assert len(g.initializers) == mf.facts["const_count"]
    # integer constants (Reshape's shape) are stored tensors but not parameters
    assert model.param_count + model.buffer_count == mf.facts["const_elements"]
    assert model.buffer_count == sum(t.numel for t in g.initializers.values() if t.dtype.startswith("int"))
    assert list(model.signatures) == mf.facts["signatures"]
    conv = g.nodes[0]
    assert conv.attrs["padding"] == "SAME" and conv.attrs["fusedActivationFunction"] == "RELU"
    assert conv.scope.startswith("cnn_1/")
    w = g.initializers[conv.inputs[1]]
    assert w._cache is None and w.numpy().shape == w.shape and w.numpy().dtype == np.float32
    json.dumps(model.to_dict())


def test_tflite_int8_quantization_params(model_file):
    mf = model_file(M, "int8.tflite")
    model = load(mf.path)
    g = model.graph
    assert [n.op_type for n in g.nodes][0] == "QUANTIZE" and g.nodes[-1].op_type == "DEQUANTIZE"
    seen = {}
    for n in g.nodes:
        seen.update(n.attrs.get("quantization", {}))
    assert set(mf.facts["quantized"]) <= set(seen)
    for name, q in mf.facts["quantized"].items():
        np.testing.assert_allclose(seen[name]["scale"], q["scale"], rtol=1e-6)
        assert seen[name]["zero_point"] == q["zero_point"]
        assert g.value(name).dtype == q["dtype"]
    conv = next(n for n in g.nodes if n.op_type == "CONV_2D")
    w = g.initializers[conv.inputs[1]]
    assert w.dtype == "int8" and w.numpy().dtype == np.int8 and w.numpy().shape == (4, 3, 3, 3)
    assert len(seen[conv.inputs[1]]["scale"]) == 4  # per output channel


def test_tflite_while_subgraphs(model_file):
    mf = model_file(M, "while.tflite")
    model = load(mf.path)
    assert [n.op_type for n in model.graph.nodes] == mf.facts["main_ops"]
    assert 1 + len(model.functions) == mf.facts["subgraph_count"]
    assert list(model.functions) == mf.facts["sub_names"][1:]
    loop = model.graph.nodes[0]
    assert loop.subgraphs["cond"] is model.functions["while_cond"]
    assert loop.subgraphs["body"] is model.functions["while_body"]
    assert "LESS" in [n.op_type for n in loop.subgraphs["cond"].nodes]
    assert model.graph.output_values[0].shape == (1, 4)
    json.dumps(model.to_dict())


@pytest.mark.parametrize("name", ["truncated.keras", "truncated.tflite", "garbage.h5", "no_savedmodel",
                                  "plain.h5", "truncated_pb_savedmodel"])
def test_corrupt_files_give_one_line_errors(model_file, name):
    mf = model_file(M, name)
    with pytest.raises(TensorbridgeError) as info:
        load(mf.path)
    msg = info.value.message
    assert mf.path in msg and "\n" not in msg and "Traceback" not in msg


def _cli(*args):
    exe = ROOT / ".venv" / "bin" / "tensorbridge"
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "app"]
    env = dict(os.environ, PYTHONPATH=str(ROOT), TF_CPP_MIN_LOG_LEVEL="2")
    return subprocess.run(cmd + list(args), capture_output=True, text=True, timeout=180, cwd=str(ROOT), env=env)


def test_cli_inspect_keras_and_corrupt(model_file):
    mf = model_file(M, "cnn.keras")
    proc = _cli("inspect", mf.path, "--json")
    assert proc.returncode == 0, proc.stderr[-2000:]
    d = json.loads(proc.stdout)
    assert d["format"] == "keras" and d["param_count"] == mf.facts["param_count"]
    assert d["node_count"] == mf.facts["node_count"]
    assert [o["shape"] for o in d["outputs"]] == [o["shape"] for o in mf.facts["outputs"]]
    bad = model_file(M, "truncated.tflite")
    proc = _cli("inspect", bad.path, "--json")
    assert proc.returncode == 2
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and bad.path in lines[0] and "Traceback" not in proc.stderr
