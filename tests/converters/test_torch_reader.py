"""The PyTorch readers on tiny real files written by torch (tests/models/torch_models.py)."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from converters.errors import CorruptFile, TrustRequired
from converters.formats import load
from converters.formats.pytorch import (ArchitectureMismatch, attach_architecture, load_exported_program,
                                             load_pickle)

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
M = "torch_models"
CNN = "tests.models.torch_models:SmallCNN"


@pytest.fixture(scope="module")
def tm(model_file):
    return lambda name: model_file(M, name)


def _values(vs):
    return [{"name": v.name, "shape": list(v.shape), "dtype": v.dtype} for v in vs]


def _check_wiring(graph):
    """Every node input is a graph input, a weight, or an output of an earlier node; outputs have shapes."""
    known = set(graph.inputs) | set(graph.initializers)
    for node in graph.nodes:
        for i in node.inputs:
            assert not i or i in known, f"{node.name} reads {i}, which nothing produced before it"
        known.update(o for o in node.outputs if o)
    for o in graph.outputs:
        assert o in known


# ---- torch.export ----------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["cnn.pt2", "encoder.pt2", "resnet_like.pt2", "cond.pt2"])
def test_exported_program_matches_what_torch_exported(tm, name):
    f = tm(name)
    m = load(f.path)
    g = m.graph
    assert m.format == "torch.export"
    assert _values(g.input_values) == [{k: v[k] for k in ("name", "shape", "dtype")} for v in f.facts["inputs"]]
    assert _values(g.output_values) == [{k: v[k] for k in ("name", "shape", "dtype")} for v in f.facts["outputs"]]
    assert m.node_count == f.facts["node_count"]
    assert m.param_count == f.facts["param_count"]
    assert m.buffer_count == f.facts["buffer_count"]
    assert sorted(g.initializers) == f.facts["weight_names"]
    assert sorted(n.attrs["target"] for n in g.nodes) == f.facts["targets"]
    # scopes are the module paths torch recorded, with a '/' per module call
    for n in g.nodes:
        assert n.scope.replace("/", ".") == f.facts["module_paths"][n.name], n.name
    _check_wiring(g)
    for n in g.nodes:
        for o in n.outputs:
            assert g.value(o).shape is not None and g.value(o).dtype, o
    assert m.summary()["node_count"] == f.facts["node_count"]


def test_exported_transformer_scopes_follow_the_module_tree(tm):
    m = load(tm("encoder.pt2").path)
    scopes = {n.scope for n in m.graph.nodes}
    assert "encoder/layers.0/self_attn" in scopes
    assert "encoder/layers.1/linear1" in scopes
    attn = [n for n in m.graph.nodes if n.scope == "encoder/layers.0/self_attn"]
    assert attn and all(n.attrs["module_class"] == "torch.nn.modules.activation.MultiheadAttention" for n in attn)
    assert {n.domain for n in m.graph.nodes} == {"aten"}


def test_exported_cond_keeps_both_branches_as_subgraphs(tm):
    f = tm("cond.pt2")
    m = load(f.path)
    cond = next(n for n in m.graph.nodes if n.op_type == "cond")
    assert cond.domain == "higher_order" and set(cond.subgraphs) == set(f.facts["branches"])
    for name, sub in cond.subgraphs.items():
        assert sorted(n.attrs["target"] for n in sub.nodes) == f.facts["branches"][name]
        assert sub.inputs and sub.outputs
        _check_wiring(sub)
    assert "a.weight" in cond.inputs and "b.weight" in cond.inputs


def test_exported_resnet_like_counts(tm):
    f = tm("resnet_like.pt2")
    m = load(f.path)
    assert sum(1 for n in m.graph.nodes if n.op_type == "conv2d") == f.facts["conv_count"] == 20
    assert "layer4/1/bn2" in {n.scope for n in m.graph.nodes}


def test_exported_dynamic_batch_and_weights(tm):
    m = load(tm("cnn.pt2").path)
    sd = tm("cnn_state.pth").facts["weights"]  # the same seeded model, saved as a state_dict
    x = m.graph.input_values[0]
    assert isinstance(x.shape[0], str) and m.extra["dynamic_dims"][x.shape[0]] == [1, 64]
    for name in ("features.0.weight", "features.1.running_var", "classifier.weight"):
        t = m.graph.initializers[name]
        arr = t.numpy()
        assert list(arr.shape) == sd[name]["shape"] and t.dtype == sd[name]["dtype"]
        assert arr.astype(np.float64).sum() == pytest.approx(sd[name]["sum"], rel=1e-6, abs=1e-9)
    nbt = m.graph.initializers["features.1.num_batches_tracked"]
    assert nbt.dtype == "int64" and int(nbt.numpy()) == 7
    assert m.graph.initializers["features.0.weight"].stats()["numel"] == 216


def test_reading_pt2_imports_no_torch(tm):
    code = ("import sys; from converters.formats import load; m = load(sys.argv[1]); "
            "print(m.node_count, 'torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code, tm("cnn.pt2").path], cwd=ROOT, capture_output=True,
                         text=True, timeout=120, env=dict(os.environ, PYTHONPATH=ROOT))
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == [str(tm("cnn.pt2").facts["node_count"]), "False"]


# ---- TorchScript -----------------------------------------------------------------------------------

def test_torchscript_graph_ops_scopes_and_weights(tm):
    f = tm("cnn_traced.pt")
    m = load(f.path)
    g = m.graph
    assert m.format == "torchscript"
    assert sorted(f"{n.domain}::{n.op_type}" for n in g.nodes if n.domain == "aten") == f.facts["aten_ops"]
    assert len(g.inputs) == f.facts["input_count"] and len(g.outputs) == f.facts["output_count"]
    assert m.param_count == f.facts["param_count"]
    assert m.buffer_count == f.facts["buffer_count"]
    assert sorted(g.initializers) == f.facts["weight_names"]
    by_op = {n.op_type: n for n in reversed(g.nodes)}  # the first node of each op
    assert by_op["linear"].scope == "classifier"
    assert by_op["batch_norm"].scope == "features/1"
    assert "features.1.running_mean" in by_op["batch_norm"].inputs
    assert by_op["max_pool2d"].attrs["kernel_size"] == [2, 2]
    _check_wiring(g)


def test_scripted_control_flow_becomes_subgraphs(tm):
    f = tm("gated_script.pt")
    m = load(f.path)
    g = m.graph
    assert [v.name for v in g.input_values] == ["x", "flag"] and g.value("flag").dtype == "bool"
    assert m.param_count == f.facts["param_count"] and sorted(g.initializers) == f.facts["weight_names"]
    cond = next(n for n in g.nodes if n.op_type == "If")
    assert cond.scope == "gate" and cond.inputs == ["flag"]
    branches = [[(n.op_type, n.scope, n.inputs[1:]) for n in sg.nodes] for sg in cond.subgraphs.values()]
    assert branches == [[("linear", "gate/a", ["gate.a.weight", "gate.a.bias"])],
                        [("linear", "gate/b", ["gate.b.weight", "gate.b.bias"])]]
    # ModuleList elements are named by their attribute path, as in exported programs
    assert [n.scope for n in g.nodes if n.op_type == "linear"] == ["blocks.0", "blocks.1"]


# ---- torch.save pickles ----------------------------------------------------------------------------

def _check_weights(m, facts, strip=""):
    names = [w.name for w in m.weights]
    assert names == list(facts["weights"])
    assert m.param_count == facts["param_count"]
    for w in m.weights:
        want = facts["weights"][w.name]
        assert list(w.tensor.shape) == want["shape"] and w.tensor.dtype == want["dtype"], w.name
        arr = w.tensor.numpy()
        assert list(arr.shape) == want["shape"]
        assert arr.astype(np.float64).sum() == pytest.approx(want["sum"], rel=1e-5, abs=1e-6), w.name
        assert arr.astype(np.float64).ravel()[:4].tolist() == pytest.approx(want["first"], rel=1e-6), w.name


@pytest.mark.parametrize("name", ["cnn_state.pth", "cnn_legacy.pth", "mixed.pth"])
def test_state_dicts_open_as_weights(tm, name):
    f = tm(name)
    m = load(f.path)
    assert m.format == "torch.state_dict" and m.is_weights_only
    _check_weights(m, f.facts)
    assert not m.warnings


def test_mixed_dtypes_keep_their_names_and_decode(tm):
    m = load(tm("mixed.pth").path)
    w = {e.name: e.tensor for e in m.weights}
    assert w["bf16"].dtype == "bfloat16" and w["bf16"].numpy().dtype == np.float32
    assert w["view"].shape == (3, 3)  # a strided view into the shared storage
    assert w["flag"].numpy().tolist() == [True, False, True]
    assert w["i64"].stats()["max"] == 11


def test_lightning_checkpoint_shows_weights_and_hyperparameters_without_running_code(tm):
    f = tm("cnn_lightning.ckpt")
    assert not os.path.exists(f.facts["marker"])
    m = load(f.path)
    assert not os.path.exists(f.facts["marker"]), "the checkpoint's class was unpickled for real"
    assert m.format == "torch.state_dict"
    _check_weights(m, f.facts)  # optimizer state is not counted
    assert m.extra["weights_key"] == "state_dict"
    assert m.extra["optimizer"]["optimizer_states"]["elements"] == f.facts["optimizer_elements"]
    assert m.extra["optimizer"]["optimizer_states"]["param_groups"][0]["lr"] == 1e-3
    assert m.extra["epoch"] == 3 and m.extra["global_step"] == 120
    hp = m.extra["hyper_parameters"]
    assert hp["lr"] == 1e-3 and hp["layers"] == [8, 16]
    assert hp["config"]["__class__"] == "tests.models.torch_models.HParams"
    assert hp["config"]["state"]["width"] == 8 and hp["config"]["state"]["name"] == "cnn"
    assert "tests.models.torch_models.HParams" in m.extra["pickled_classes"]
    json.dumps(m.summary())  # everything shown is plain JSON


def test_malicious_pickle_runs_nothing(tm):
    f = tm("evil.pt")
    assert not os.path.exists(f.facts["marker"])
    with pytest.raises(TrustRequired) as ei:
        load(f.path)
    msg = ei.value.message
    assert f.path in msg and "--trust" in msg and "\n" not in msg
    assert not os.path.exists(f.facts["marker"])


def test_malicious_legacy_stream_runs_nothing(tm):
    from converters.errors import TensorbridgeError

    f = tm("evil_legacy.pt")
    with pytest.raises(TensorbridgeError) as ei:
        load(f.path)
    assert f.path in ei.value.message
    assert not os.path.exists(f.facts["marker"])


def test_malicious_object_inside_a_checkpoint_is_inert_data(tm):
    f = tm("evil_nested.pth")
    m = load(f.path)
    assert not os.path.exists(f.facts["marker"])
    _check_weights(m, f.facts)
    assert m.extra["note"]["__class__"] in ("io.open", "builtins.open")
    assert m.extra["note"]["args"][0] == f.facts["marker"]


def test_pickled_module_needs_trust_then_loads(tm):
    f = tm("cnn_module.pt")
    with pytest.raises(TrustRequired) as ei:
        load(f.path)
    assert f.facts["class"] in ei.value.message
    m = load(f.path, trust=True)
    assert m.format == "torch.module"
    assert [n.name for n in m.graph.nodes] == f.facts["leaf_modules"]
    assert m.param_count == f.facts["param_count"]
    assert m.buffer_count == f.facts["buffer_count"]
    assert m.graph.nodes[0].scope == "features/0" and m.warnings
    full = load(f.path, trust=True, input_shapes=[[1, 3, 32, 32]])
    assert full.format == "torch.export" and full.path == f.path
    assert full.node_count == tm("cnn.pt2").facts["node_count"]
    assert _values(full.graph.input_values) == [{"name": "x", "shape": [1, 3, 32, 32], "dtype": "float32"}]


def test_module_stored_inside_a_checkpoint_shows_its_weights_without_trust(tm):
    f = tm("module_in_dict.pt")
    m = load(f.path)
    assert m.format == "torch.state_dict" and m.extra["epoch"] == 5 and m.extra["weights_key"] == "model"
    _check_weights(m, f.facts)
    assert "tests.models.torch_models.SmallCNN" in m.extra["pickled_classes"]


def test_safetensors_header_and_lazy_values(tm):
    f = tm("cnn.safetensors")
    m = load(f.path)
    assert m.format == "safetensors" and m.extra["metadata"] == {"format": "pt", "note": "tiny cnn"}
    facts = dict(f.facts)
    facts["weights"] = dict(sorted(facts["weights"].items()))  # safetensors stores names sorted
    _check_weights(m, facts)
    bf = next(w.tensor for w in m.weights if w.name == "extra.bf16")
    assert bf.dtype == "bfloat16" and bf.numpy()[0] == -2.0 and bf.numpy()[-1] == 2.0


@pytest.mark.parametrize("name,reader", [("truncated.pt2", load_exported_program), ("truncated.pth", load_pickle)])
def test_truncated_files_give_one_line_errors(tm, name, reader):
    path = tm(name).path
    for fn in (load, reader):
        with pytest.raises(CorruptFile) as ei:
            fn(path) if fn is load else fn(path, trust=False)
        assert path in ei.value.message and "\n" not in ei.value.message


# ---- attaching an architecture to weights ------------------------------------------------------------

def test_attach_architecture_gives_the_exported_graph(tm):
    pt2 = tm("cnn.pt2").facts
    m = attach_architecture(tm("cnn_state.pth").path, CNN, {}, [[1, 3, 32, 32]])
    assert m.format == "torch.export" and m.extra["architecture"] == CNN
    assert m.node_count == pt2["node_count"] and m.param_count == pt2["param_count"]
    sd = tm("cnn_state.pth").facts["weights"]
    w = m.graph.initializers["features.4.weight"].numpy()
    assert w.astype(np.float64).sum() == pytest.approx(sd["features.4.weight"]["sum"], rel=1e-6)
    # a Lightning checkpoint's "model." prefix is recognised
    ck = attach_architecture(tm("cnn_lightning.ckpt").path, CNN, {}, [[1, 3, 32, 32]])
    assert ck.node_count == pt2["node_count"] and any("model." in x for x in ck.warnings)
    assert not os.path.exists(tm("cnn_lightning.ckpt").facts["marker"])


def test_attach_architecture_mismatch_is_one_line(tm):
    with pytest.raises(ArchitectureMismatch) as ei:
        attach_architecture(tm("cnn_state.pth").path, CNN, {"width": 4}, [[1, 3, 32, 32]])
    msg = ei.value.message
    assert "shape mismatches" in msg and "features.0.weight" in msg and "\n" not in msg


def test_attach_architecture_worker_task(tm):
    from converters.jobs import run_job

    result, job = run_job("attach_architecture", {"path": tm("cnn_state.pth").path, "spec": CNN, "kwargs": {},
                                                  "input_shapes": [[2, 3, 32, 32]]}, timeout=300)
    try:
        assert result["format"] == "torch.export"
        assert result["node_count"] == tm("cnn.pt2").facts["node_count"]
        assert result["inputs"][0]["shape"] == [2, 3, 32, 32]
        with open(result["model_json"]) as fh:
            assert len(json.load(fh)["graph"]["nodes"]) == result["node_count"]
    finally:
        job.cleanup()


def test_cli_refuses_untrusted_pickle(tm):
    f = tm("evil.pt")
    out = subprocess.run([sys.executable, "-m", "converters.cli", "inspect", "--in-process", f.path], cwd=ROOT,
                         capture_output=True, text=True, timeout=120, env=dict(os.environ, PYTHONPATH=ROOT))
    assert out.returncode == 2
    assert "--trust" in out.stderr and len(out.stderr.strip().splitlines()) == 1
    assert not os.path.exists(f.facts["marker"])


# ---- damaged content inside intact archives ------------------------------------------------------------

def _rewrite_member(src: str, dst: str, suffix: str, mutate) -> None:
    import zipfile

    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w", zipfile.ZIP_STORED) as zout:
        for info in zin.infolist():
            data = zin.read(info.filename)
            zout.writestr(info.filename, mutate(data) if info.filename.endswith(suffix) else data)


@pytest.mark.parametrize("name,member", [("cnn_lightning.ckpt", "data.pkl"), ("cnn.pt2", "models/model.json")])
def test_damaged_members_give_a_model_or_a_one_line_error(tm, tmp_path, name, member):
    from converters.errors import TensorbridgeError

    f = tm(name)
    rng = np.random.default_rng(0)
    outcomes = set()
    for i in range(25):
        def mutate(data: bytes) -> bytes:
            b = bytearray(data)
            if i % 5 == 4:
                return bytes(b[: rng.integers(1, len(b))])
            for pos in rng.integers(0, len(b), size=int(rng.integers(1, 4))):
                b[pos] = int(rng.integers(0, 256))
            return bytes(b)

        dst = str(tmp_path / f"{i}_{os.path.basename(f.path)}")
        _rewrite_member(f.path, dst, member, mutate)
        try:
            m = load(dst)
            json.dumps(m.summary())
            outcomes.add("model")
        except TensorbridgeError as exc:
            assert dst in exc.message and "\n" not in exc.message
            outcomes.add(type(exc).__name__)
    assert "CorruptFile" in outcomes
    if "marker" in f.facts:
        assert not os.path.exists(f.facts["marker"])


def test_attach_architecture_save_to_keeps_the_pt2(tm, tmp_path):
    out = str(tmp_path / "attached.pt2")
    m = attach_architecture(tm("cnn_state.pth").path, CNN, {}, [[1, 3, 32, 32]], save_to=out)
    again = load(out)
    assert m.extra["exported_pt2"] == out and again.node_count == m.node_count
    assert again.param_count == m.param_count


def test_torchscript_shapes_from_given_input_shapes(model_file):
    """TorchScript records no shapes; given the input's, static shape analysis fills every edge."""
    mf = model_file("torch_models", "cnn_traced.pt")
    bare = load(mf.path)
    assert any("--input-shape" in w for w in bare.warnings)
    m = load(mf.path, input_shapes=[[2, 3, 32, 32]])
    g = m.graph
    assert not m.warnings
    outs = [g.value(n.outputs[0]) for n in g.nodes if n.outputs]
    assert all(v.shape is not None and None not in v.shape for v in outs)
    assert [list(g.value(o).shape) for o in g.outputs] == [[2, 10]]
    assert {g.value(o).dtype for o in g.outputs} == {"float32"}
