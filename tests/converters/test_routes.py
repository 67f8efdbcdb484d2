"""Conversion routes on tiny real models: every hop, both multi-hop routes, the job, the CLI.

Each converted model is reopened by its own runtime (onnxruntime, tf.saved_model / tf_keras, the LiteRT
interpreter, torch.export.load) and its output compared with the source framework's output on the same
input (stored by tests/models/convert_models.py), undoing the NHWC layout onnx2tf introduces.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from converters.errors import TensorbridgeError, TrustRequired, UnsupportedOp
from converters.routes.planner import NoRoute, plan

ROOT = Path(__file__).resolve().parents[2]
FP32 = dict(rtol=1e-4, atol=1e-4)


# ---- helpers -------------------------------------------------------------------------------------------
@pytest.fixture
def src(model_file, tmp_path):
    """Copy a built model into a fresh folder (outputs land beside it); return (path, x, y)."""

    def get(name: str):
        mf = model_file("convert_models", name)
        dst = tmp_path / name
        if os.path.isdir(mf.path):
            shutil.copytree(mf.path, dst)
        else:
            shutil.copy(mf.path, dst)
        io = np.load(mf.path + ".io.npz")
        return str(dst), io["x"], io["y"]

    return get


def digest(path: str) -> str:
    h = hashlib.sha256()
    paths = [path] if os.path.isfile(path) else sorted(
        os.path.join(d, f) for d, _, fs in os.walk(path) for f in fs)
    for p in paths:
        h.update(p.encode())
        h.update(Path(p).read_bytes())
    return h.hexdigest()


def leftovers(folder) -> list[str]:
    return [n for n in os.listdir(folder) if ".partial-" in n]


def run_onnx(path, x):
    import onnxruntime as ort

    s = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    return s.run(None, {s.get_inputs()[0].name: x})[0]


def run_tflite(path, x):
    from ai_edge_litert.interpreter import Interpreter

    it = Interpreter(model_path=path)
    it.allocate_tensors()
    d = it.get_input_details()[0]
    assert list(d["shape"]) == list(x.shape), (d["shape"], x.shape)
    it.set_tensor(d["index"], x.astype(np.float32))
    it.invoke()
    return it.get_tensor(it.get_output_details()[0]["index"])


def run_savedmodel(path, x):
    import tensorflow as tf

    fn = tf.saved_model.load(path).signatures["serving_default"]
    (_, spec), = fn.structured_input_signature[1].items()
    assert list(spec.shape)[1:] == list(x.shape)[1:], (spec.shape, x.shape)
    out = fn(**{next(iter(fn.structured_input_signature[1])): tf.constant(x)})
    return next(iter(out.values())).numpy()


def run_pt2(path, x):
    import torch

    ep = torch.export.load(path)
    with torch.no_grad():
        out = ep.module()(torch.from_numpy(x))
    return (out[0] if isinstance(out, (tuple, list)) else out).numpy()


def nhwc(x):
    return np.transpose(x, (0, 2, 3, 1)) if x.ndim == 4 else np.transpose(x, (0, 2, 1))


def sidecar(path):
    with open(path + ".tbmap.json") as f:
        return json.load(f)


def convert(*a, **k):
    from converters.routes.run import convert as _convert
    return _convert(*a, **k)


# ---- planner -------------------------------------------------------------------------------------------
def test_planner_routes_without_framework_imports(tmp_path):
    code = (
        "import sys, json\n"
        "from converters.routes.planner import plan\n"
        "pairs = [('torch.export','tflite'),('torch.export','tf'),('keras','torch'),('tflite','torch'),"
        "('savedmodel','keras'),('onnx','tflite'),('keras','tflite'),('tflite','onnx')]\n"
        "print(json.dumps({'routes': {f'{s}>{t}': plan(s, t).names for s, t in pairs},"
        " 'heavy': [m for m in ('torch','tensorflow','onnx','keras','onnx2tf') if m in sys.modules]}))\n")
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    res = json.loads(proc.stdout)
    assert res["heavy"] == []
    r = res["routes"]
    assert r["torch.export>tflite"] == ["onnx_from_torch", "savedmodel_from_onnx"]
    assert r["torch.export>tf"] == ["onnx_from_torch", "savedmodel_from_onnx"]
    assert r["keras>torch"] == ["onnx_from_keras", "torch_from_onnx"]
    assert r["tflite>torch"] == ["onnx_from_tflite", "torch_from_onnx"]
    assert r["savedmodel>keras"] == ["onnx_from_savedmodel", "savedmodel_from_onnx"]
    assert r["onnx>tflite"] == ["savedmodel_from_onnx"]
    assert r["keras>tflite"] == ["tflite_from_keras"]
    assert r["tflite>onnx"] == ["onnx_from_tflite"]


def test_planner_errors_and_detection(src):
    with pytest.raises(NoRoute, match="already"):
        plan("onnx", "onnx")
    with pytest.raises(NoRoute, match="weights only"):
        plan("safetensors", "onnx")
    with pytest.raises(NoRoute, match="choose one of"):
        plan("onnx", "caffe")
    path, _, _ = src("kcnn.tflite")
    route = plan(path, "torch")  # detected from content
    assert route.source_format == "tflite" and route.names == ["onnx_from_tflite", "torch_from_onnx"]
    assert "onnx2torch" in route.describe()


# ---- torch sources -------------------------------------------------------------------------------------
def test_torch_to_onnx_keeps_module_scopes(src):
    path, x, y = src("cnn.pt2")
    before = digest(path)
    res = convert(path, "onnx", options={"opset": 18})
    out = res["output"]
    assert out == str(Path(path).with_suffix(".onnx"))
    np.testing.assert_allclose(run_onnx(out, x), y, **FP32)
    import onnx
    m = onnx.load(out)
    assert next(o.version for o in m.opset_import if o.domain == "") == 18
    assert not os.path.exists(out + ".data")  # one file
    doc = sidecar(out)
    mods = {e["source"]: e for e in doc["tensors"]}
    produced = {o for n in m.graph.node for o in n.output}
    # The optimiser folds BatchNorm into Conv: the fused Conv carries the BatchNorm's scope.
    assert {"bn1", "bn2", "relu", "pool", "fc"} <= set(mods) and "conv1" not in mods
    assert mods["bn1"].get("fused_by") == "FuseBatchNormIntoConv"
    assert all(e["target"] in produced for e in mods.values())
    assert doc["inputs"][0]["target"] == m.graph.input[0].name
    assert digest(path) == before
    assert [h["name"] for h in res["hops"]] == ["onnx_from_torch"] and res["hops"][0]["seconds"] > 0


def test_torch_to_onnx_unoptimised_keeps_every_module(src):
    path, x, y = src("cnn.pt2")
    out = convert(path, "onnx", options={"onnx_optimize": False})["output"]
    np.testing.assert_allclose(run_onnx(out, x), y, **FP32)
    import onnx
    ops = [n.op_type for n in onnx.load(out).graph.node]
    assert ops.count("BatchNormalization") == 2
    mods = {e["source"] for e in sidecar(out)["tensors"]}
    assert {"conv1", "bn1", "conv2", "bn2", "fc"} <= mods


def test_torch_to_onnx_dynamic_batch_and_names(src):
    path, x, y = src("cnn.pt2")  # exported with a fixed batch of 1
    out = convert(path, "onnx", options={"dynamic_batch": True, "input_names": ["images"],
                                         "output_names": ["logits"]})["output"]
    import onnxruntime as ort
    s = ort.InferenceSession(out, providers=["CPUExecutionProvider"])
    assert [i.name for i in s.get_inputs()] == ["images"] and [o.name for o in s.get_outputs()] == ["logits"]
    assert s.get_inputs()[0].shape == ["batch", 3, 16, 16]
    x3 = np.concatenate([x, x * 0.5, -x])
    y3 = s.run(None, {"images": x3})[0]
    np.testing.assert_allclose(y3[:1], y, **FP32)
    assert y3.shape == (3, 5) and not np.allclose(y3[1], y3[0])


def test_torch_to_tflite_via_onnx_all_products(src):
    """torch -> ONNX -> onnx2tf: SavedModel, tf_keras .h5 and fp32/fp16 TFLite from one run."""
    path, x, y = src("cnn.pt2")
    folder = os.path.dirname(path)
    mine = os.path.join(folder, "cnn_fp16.tflite")  # a user's file named like one of the products
    Path(mine).write_bytes(b"not to be replaced")
    before = digest(path)
    res = convert(path, "tflite", options={"all_outputs": True})
    assert [h["name"] for h in res["hops"]] == ["onnx_from_torch", "savedmodel_from_onnx"]
    assert res["output"] == os.path.join(folder, "cnn_1.tflite")  # every product name was free
    assert Path(mine).read_bytes() == b"not to be replaced"
    for name in ("cnn_1.tflite", "cnn_1.tf", "cnn_1_fp16.tflite", "cnn_1.tf_keras.h5"):
        assert os.path.join(folder, name) in res["outputs"]
        assert os.path.exists(os.path.join(folder, name + ".tbmap.json"))
    xt = nhwc(x)  # onnx2tf made the image input NHWC
    np.testing.assert_allclose(run_tflite(res["output"], xt), y, **FP32)
    np.testing.assert_allclose(run_tflite(os.path.join(folder, "cnn_1_fp16.tflite"), xt), y, rtol=2e-2, atol=2e-2)
    np.testing.assert_allclose(run_savedmodel(os.path.join(folder, "cnn_1.tf"), xt), y, **FP32)
    import tf_keras
    km = tf_keras.models.load_model(os.path.join(folder, "cnn_1.tf_keras.h5"), compile=False)
    np.testing.assert_allclose(km(xt).numpy(), y, **FP32)
    # onnx2tf's tf_keras file is itself a source: back to ONNX through tf2onnx (Keras 3 cannot load it).
    back = convert(os.path.join(folder, "cnn_1.tf_keras.h5"), "onnx")["output"]
    assert os.path.basename(back) == "cnn_1.onnx"
    np.testing.assert_allclose(run_onnx(back, xt), y, **FP32)
    # The composed map goes from torch modules to TF layers, with the layout change on the input.
    doc = sidecar(res["output"])
    assert doc["inputs"][0]["layout"] == [0, 2, 3, 1]
    tf_doc = sidecar(os.path.join(folder, "cnn_1.tf"))
    assert tf_doc["inputs"][0]["layout"] == [0, 2, 3, 1]
    assert {"bn2", "relu", "fc"} <= {e["source"] for e in tf_doc["tensors"]}
    # Per-hop rows: [source, target, layout, layout_known]; dynamo names ReLU outputs relu, relu_1, …
    relu = [r for r in tf_doc["hops"][1]["tensors"] if r[0].startswith("relu")]
    assert relu and all(r[2] == [0, 2, 3, 1] for r in relu)
    # TFLite: fused tensors mapped back to ONNX outputs through onnx2tf's layer names.
    from ai_edge_litert.interpreter import Interpreter
    names = {d["name"] for d in Interpreter(model_path=res["output"]).get_tensor_details()}
    tfl = {r[0]: r for r in doc["hops"][1]["tensors"]}
    relu_names = {r[0] for r in relu}
    assert relu_names <= set(tfl) and all(r[1] in names for r in tfl.values())
    assert all(tfl[n][2] == [0, 2, 3, 1] for n in relu_names)
    # Readers that take every {source, target} object find only the composed torch -> TFLite pairs.
    objs = []
    def walk(x):
        if isinstance(x, dict):
            if isinstance(x.get("source"), str) and isinstance(x.get("target"), str):
                objs.append(x["source"])
            for v in x.values():
                walk(v)
        elif isinstance(x, list):
            for v in x:
                walk(v)
    walk(doc)
    assert sorted(objs) == sorted(e["source"] for k in ("inputs", "outputs", "tensors") for e in doc[k])
    assert {"relu", "fc"} <= {e["source"] for e in doc["tensors"]}  # torch modules -> TFLite tensors
    assert digest(path) == before and leftovers(folder) == []
    assert not [n for n in os.listdir(folder) if n.startswith("step")]


def test_onnx_to_tf_keep_nchw(src):
    path, x, y = src("cnn.pt2")
    onnx_path = convert(path, "onnx")["output"]
    before = digest(onnx_path)
    res = convert(onnx_path, "tf", options={"keep_nchw": True})
    assert res["output"].endswith("cnn.tf") and os.path.isfile(os.path.join(res["output"], "saved_model.pb"))
    np.testing.assert_allclose(run_savedmodel(res["output"], x), y, **FP32)  # NCHW input kept
    assert sidecar(res["output"])["inputs"][0]["layout"] is None
    assert digest(onnx_path) == before  # onnx2tf worked on a copy


def test_transformer_torch_to_onnx_to_torch(src):
    """Dynamo ONNX (opset 18+, Reshape allowzero=1) rebuilt by onnx2torch and saved as .pt2."""
    path, x, y = src("encoder.pt2")
    onnx_path = convert(path, "onnx")["output"]
    np.testing.assert_allclose(run_onnx(onnx_path, x), y, **FP32)
    res = convert(onnx_path, "torch")
    assert os.path.basename(res["output"]) == "encoder_1.pt2"  # never over the source
    np.testing.assert_allclose(run_pt2(res["output"], x), y, **FP32)
    doc = sidecar(res["output"])
    assert len(doc["tensors"]) > 20 and all(e["target_kind"] == "module" for e in doc["tensors"])


def test_gru_torch_to_onnx_and_tflite_work_and_onnx2torch_reports_gru(src):
    path, x, y = src("gru.pt2")
    onnx_path = convert(path, "onnx")["output"]
    np.testing.assert_allclose(run_onnx(onnx_path, x), y, **FP32)
    res = convert(onnx_path, "tflite")
    layout = sidecar(res["output"])["inputs"][0]["layout"]
    assert layout == [0, 2, 1]  # onnx2tf read the (N, T, C) sequence as NCW and made it NWC
    np.testing.assert_allclose(run_tflite(res["output"], np.transpose(x, layout)), y, **FP32)
    folder = os.path.dirname(path)
    with pytest.raises(UnsupportedOp) as ei:
        convert(onnx_path, "torch")
    msg = ei.value.message
    assert "'GRU'" in msg and "onnx2torch" in msg and "gru.onnx" in msg and "\n" not in msg
    assert leftovers(folder) == [] and not os.path.exists(os.path.join(folder, "gru_1.pt2"))


def test_torchscript_needs_input_shapes(src):
    path, x, y = src("cnn_ts.pt")
    with pytest.raises(TensorbridgeError, match="--input-shape"):
        convert(path, "onnx")
    out = convert(path, "onnx", options={"input_shapes": {"x": [1, 3, 16, 16]}})["output"]
    np.testing.assert_allclose(run_onnx(out, x), y, **FP32)


# ---- Keras / TF / TFLite sources -----------------------------------------------------------------------
def test_keras_to_torch_via_onnx(src):
    path, x, y = src("kcnn.keras")
    before = digest(path)
    res = convert(path, "torch", options={"keep_intermediates": True})
    folder = os.path.dirname(path)
    assert [h["name"] for h in res["hops"]] == ["onnx_from_keras", "torch_from_onnx"]
    np.testing.assert_allclose(run_pt2(res["output"], x), y, **FP32)
    kept = os.path.join(folder, "kcnn.onnx")
    assert kept in res["outputs"]
    np.testing.assert_allclose(run_onnx(kept, x), y, **FP32)
    onnx_doc = sidecar(kept)
    layers = {e["source"]: e for e in onnx_doc["tensors"]}
    assert {"conv2", "fc"} <= set(layers)
    # tf2onnx folds bn1 into conv1; the only node still named after bn1 is a Transpose its optimizer moved,
    # which can carry another layer's tensor: bn1 gets no entry rather than a wrong one
    assert "bn1" not in layers
    assert layers["conv2"]["layout"] == [0, 3, 1, 2]  # Keras NHWC -> NCHW inside the ONNX graph
    doc = sidecar(res["output"])
    assert {"conv2", "fc"} <= {e["source"] for e in doc["tensors"]}  # Keras layer -> torch module
    assert digest(path) == before and leftovers(folder) == []


def test_keras_lstm_to_onnx_and_tflite_work_and_onnx2torch_reports_lstm(src):
    path, x, y = src("klstm.keras")
    np.testing.assert_allclose(run_onnx(convert(path, "onnx")["output"], x), y, **FP32)
    tfl = convert(path, "tflite")["output"]  # the LSTM loop lowers to builtins with a fixed batch
    np.testing.assert_allclose(run_tflite(tfl, x), y, **FP32)
    assert any("fixed batch of 1" in n for n in sidecar(tfl)["notes"])
    with pytest.raises(UnsupportedOp) as ei:
        convert(path, "torch")
    msg = ei.value.message
    assert "'LSTM'" in msg and "klstm.keras (as ONNX from onnx_from_keras)" in msg
    assert ".partial-" not in msg
    assert leftovers(os.path.dirname(path)) == []


def test_keras_to_tflite_fp32_and_fp16(src):
    path, x, y = src("kcnn.keras")
    out = convert(path, "tflite")["output"]
    np.testing.assert_allclose(run_tflite(out, x), y, **FP32)
    out16 = convert(path, "tflite", options={"fp16": True})["output"]
    assert out16.endswith("kcnn_fp16.tflite")
    np.testing.assert_allclose(run_tflite(out16, x), y, rtol=2e-2, atol=2e-2)
    assert os.path.getsize(out16) < os.path.getsize(out)
    assert sidecar(out16)["fp16"] is True


def test_keras_to_savedmodel(src):
    path, x, y = src("kcnn.keras")
    out = convert(path, "tf")["output"]
    np.testing.assert_allclose(run_savedmodel(out, x), y, **FP32)


def test_savedmodel_to_onnx_and_tflite(src):
    path, x, y = src("kcnn_sm")
    before = digest(path)
    out = convert(path, "onnx")["output"]
    assert out.endswith("kcnn_sm.onnx")
    np.testing.assert_allclose(run_onnx(out, x), y, **FP32)
    assert sidecar(out)["inputs"][0]["target"] == "image"
    tfl = convert(path, "tflite")["output"]
    np.testing.assert_allclose(run_tflite(tfl, x), y, **FP32)
    assert digest(path) == before


def test_tflite_to_onnx(src):
    path, x, y = src("kcnn.tflite")
    out = convert(path, "onnx")["output"]
    np.testing.assert_allclose(run_onnx(out, x), y, **FP32)
    import onnx
    assert [i.name for i in onnx.load(out).graph.input] == ["image"]


# ---- errors, names, the job, the CLI -------------------------------------------------------------------
def test_onnx2tf_unsupported_op_is_one_line(tmp_path):
    import onnx
    from onnx import TensorProto, helper

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])
    like = helper.make_tensor("like", TensorProto.FLOAT, [1], [0.0])
    g = helper.make_graph([helper.make_node("Relu", ["x"], ["r"], name="relu0"),
                           helper.make_node("CastLike", ["r", "like"], ["y"], name="cast_like0")],
                          "g", [x], [y], [like])
    path = str(tmp_path / "castlike.onnx")
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]), path)
    with pytest.raises(UnsupportedOp) as ei:
        convert(path, "tflite")
    assert ei.value.message == (f"{path}: ONNX op 'CastLike' (node cast_like0) is not supported by onnx2tf; "
                                f"replace it in the source model")
    assert sorted(os.listdir(tmp_path)) == ["castlike.onnx"]
    from converters.routes.options import BadOption
    with pytest.raises(BadOption) as ei:
        convert(path, "tf", options={"input_shapes": {"x": [1, 4], "nope": [2]}})
    assert ei.value.message == f"{path}: 'nope' is not an input of the model; its inputs are x"
    assert sorted(os.listdir(tmp_path)) == ["castlike.onnx"]


def test_output_names_never_overwrite(src):
    path, _, _ = src("kcnn.tflite")
    first = convert(path, "onnx")["output"]
    second = convert(path, "onnx")["output"]
    assert os.path.basename(first) == "kcnn.onnx" and os.path.basename(second) == "kcnn_1.onnx"
    stamp = digest(first)
    with pytest.raises(TensorbridgeError, match="already exists"):
        convert(path, "onnx", first)
    assert digest(first) == stamp
    assert convert(path, "onnx", first, overwrite=True)["output"] == first


def test_pickled_module_requires_trust(tmp_path):
    path = tmp_path / "model.pt"
    code = ("import torch, sys\nm = torch.nn.Sequential(torch.nn.Linear(4, 2))\n"
            f"torch.save(m, {str(path)!r})\n")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)
    with pytest.raises(TrustRequired, match="--trust"):
        convert(str(path), "onnx", options={"input_shapes": {"x": [1, 4]}})
    out = convert(str(path), "onnx", options={"input_shapes": {"x": [1, 4]}, "trust": True})["output"]
    x = np.ones((1, 4), np.float32)
    assert run_onnx(out, x).shape == (1, 2)


def test_convert_job_result_and_cancel_leaves_nothing(src):
    from converters.jobs import Job, run_job

    path, x, y = src("kcnn.keras")
    before = digest(path)
    result, job = run_job("convert", {"src": path, "to": "onnx"}, timeout=300)
    job.cleanup()
    assert set(result) >= {"output", "outputs", "route", "hops", "log"}
    assert result["route"]["hops"][0]["name"] == "onnx_from_keras"
    np.testing.assert_allclose(run_onnx(result["output"], x), y, **FP32)
    assert digest(path) == before

    cnn, _, _ = src("cnn.pt2")
    folder = os.path.dirname(cnn)
    names_before = set(os.listdir(folder))
    job = Job("convert", {"src": cnn, "to": "tflite"}).start()
    for ev in job.events(timeout=300):
        if ev.kind == "progress" and ev.data.get("message", "").startswith("1/2"):
            break
    time.sleep(1.0)  # inside torch.onnx.export by now
    assert leftovers(folder), "the conversion should be writing into its staging folder"
    job.cancel(grace=0.5)
    assert job._done.wait(30)
    assert job.error_kind == "JobCancelled"
    deadline = time.monotonic() + 15
    while leftovers(folder) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert leftovers(folder) == []
    assert set(os.listdir(folder)) - names_before == set()
    job.cleanup()


def test_cli_convert_and_plan(src):
    path, x, y = src("kcnn.tflite")
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    cmd = [sys.executable, "-m", "app", "convert", path, "--to", "torch", "--plan"]
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and "onnx_from_tflite" in proc.stdout and "torch_from_onnx" in proc.stdout
    out = os.path.join(os.path.dirname(path), "k.onnx")
    cmd = [sys.executable, "-m", "app", "convert", path, "--to", "onnx", "-o", out, "--json"]
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["output"] == out
    np.testing.assert_allclose(run_onnx(out, x), y, **FP32)
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2
    assert proc.stderr.strip() == f"tensorbridge: error: {out}: already exists; choose another output or pass --overwrite"


def test_onnx_with_identity_shared_weights_to_torch(tmp_path):
    """The legacy torch exporter shares equal weights through Identity nodes; onnx2torch needs them inlined."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    w = numpy_helper.from_array(rng.standard_normal((4, 3, 3, 3)).astype(np.float32), "w")
    b = numpy_helper.from_array(rng.standard_normal(4).astype(np.float32), "b")
    nodes = [helper.make_node("Identity", ["b"], ["onnx::Conv_7"], name="Identity_0"),
             helper.make_node("Conv", ["x", "w", "onnx::Conv_7"], ["c"], name="/conv/Conv", pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["c"], ["y"], name="/relu/Relu")]
    g = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4, 8, 8])], initializer=[w, b])
    src = tmp_path / "shared.onnx"
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]), src)
    x = rng.random((1, 3, 8, 8)).astype(np.float32)
    res = convert(str(src), "torch")
    np.testing.assert_allclose(run_pt2(res["output"], x), run_onnx(str(src), x), **FP32)


@pytest.mark.parametrize("fp16", [False, True])
def test_two_output_model_to_tflite_maps_outputs_by_name_not_by_the_interpreters_order(model_file, tmp_path, fp16):
    """The TFLite interpreter lists this model's outputs in another order than the ONNX graph (features, then
    logits); the map pairs them through the signature, whose keys are the ONNX names. With float16 weights
    the dequantized weights carry their layer's name: they are never paired with the layer's activation."""
    from ai_edge_litert.interpreter import Interpreter

    from converters.compare import compare_models
    from converters.compare.engine import CompareOptions
    from converters.compare.tolerances import tolerance
    from converters.routes.run import convert as _convert
    from converters.tbmap import map_path

    src = tmp_path / "cnn.onnx"
    shutil.copy(model_file("compare_models", "cnn.onnx").path, src)
    out = _convert(str(src), "tflite", options={"fp16": fp16})["output"]
    it = Interpreter(model_path=out)
    details = {d["name"]: d for d in it.get_tensor_details()}
    assert [d["name"] for d in it.get_output_details()] != \
        [d["name"] for d in it.get_signature_runner().get_output_details().values()]  # the orders differ
    m = json.loads(Path(map_path(out)).read_text())
    by_source = {o["source"]: o for o in m["outputs"]}
    assert set(by_source) == {"logits", "features"}
    assert list(details[by_source["logits"]["target"]]["shape"]) == [1, 10]
    assert list(details[by_source["features"]["target"]]["shape"]) == [1, 8, 8, 16]
    assert by_source["features"]["layout"] == [0, 2, 3, 1]  # NCHW -> NHWC
    # inner tensors: activations only, each of its ONNX tensor's rank
    produced_by_dequantize = {details_name for op in it._get_ops_details() if op["op_name"] == "DEQUANTIZE"
                              for details_name in (it.get_tensor_details()[i]["name"] for i in op["outputs"])}
    for t in m["tensors"]:
        assert t["target"] not in produced_by_dequantize, t
        assert len(t["target_shape"]) == len(t["source_shape"]), t
    res = compare_models(str(src), out, CompareOptions(tolerance=tolerance("fp16" if fp16 else "fp32"),
                                                       capture_map=True))
    assert res.error is None and res.passed, res.summary()
    assert all(d.passed for d in res.intermediates)
