"""Per-layer parity: layers are paired across two models, compared, and the first layer that is wrong itself
is named, with the layers after it marked as inheriting the error."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

from converters.graph import Graph, Node, Value
from converters.parity import is_layout_op, judge_layers, plan_from_graphs


# ---- the plan and the verdicts, on graphs made by hand -------------------------------------------------

def _chain(ops: list[str], names: list[str]) -> Graph:
    nodes, prev = [], "x"
    for op, name in zip(ops, names):
        nodes.append(Node(name=f"n_{name}", op_type=op, inputs=[prev, f"w_{name}"], outputs=[name]))
        prev = name
    values = {n: Value(n, "float32", [1, 4]) for n in ["x"] + names}
    return Graph(nodes=nodes, inputs=["x"], outputs=[names[-1]], values=values)


class _Diff:
    def __init__(self, name, passed, max_abs):
        self.name, self.name_b, self.passed, self.max_abs = name, name, passed, max_abs
        self.shape, self.perm_b, self.mean_abs, self.max_rel, self.cosine, self.noise = [1, 4], None, max_abs, 0, 1, 0
        self.reasons = [] if passed else ["outside"]


def _map(names):
    from converters.tbmap import Entry, TensorMap

    return TensorMap(tensors=[Entry(n, n) for n in names])


def test_shared_tensor_names_pair_layers_in_graph_order_with_their_upstream():
    ops, names = ["Conv", "Relu", "Reshape", "Gemm", "Softmax"], ["c", "r", "s", "g", "y"]
    plan = plan_from_graphs(_chain(ops, names), _chain(ops, names))
    # a layout-only op is not paired by name (exporters renumber them); the walk up passes through it
    assert [(p.a, p.b, p.method) for p in plan.pairs] == [(n, n, "name") for n in ("c", "r", "g", "y")]
    assert [p.upstream for p in plan.pairs] == [[], [0], [1], [2]]
    # the converter's map is trusted first, layout ops included
    plan = plan_from_graphs(_chain(ops, names), _chain(ops, names), sidecar=_map(names))
    assert [(p.a, p.method) for p in plan.pairs] == [(n, "map") for n in names]
    assert [p.upstream for p in plan.pairs] == [[], [0], [1], [2], [3]]
    assert [p.layout_only for p in plan.pairs] == [False, False, True, False, False]


def test_module_paths_of_a_converter_map_are_placed_on_the_reader_scopes():
    g = _chain(["linear", "relu", "linear"], ["linear", "relu", "linear_1"])
    for n, scope in zip(g.nodes, ["encoder/layers.0/linear1", "encoder/layers.0", "head"]):
        n.scope = scope
    plan = plan_from_graphs(g, g, sidecar=_map(["encoder.layers.0.linear1", "head"]))
    placed = {p.a: p.depth for p in plan.pairs if p.method == "map"}
    assert placed == {"encoder.layers.0.linear1": 0, "head": 2}


def test_the_first_failing_layer_whose_inputs_match_is_the_source():
    ops, names = ["Conv", "Relu", "Reshape", "Gemm", "Softmax"], ["c", "r", "s", "g", "y"]
    plan = plan_from_graphs(_chain(ops, names), _chain(ops, names), sidecar=_map(names))
    fails = {"r", "s", "g", "y"}
    layers, first = judge_layers(plan, {(n, n): _Diff(n, n not in fails, 0.1 if n in fails else 0) for n in names})
    assert [r.status for r in layers] == ["ok", "source", "inherited", "inherited", "inherited"]
    assert first.a == "r"
    # a layout-only op failing on matching inputs is a layout suspect, not a source
    layers, first = judge_layers(plan, {(n, n): _Diff(n, n != "s", 0.1 if n == "s" else 0) for n in names})
    assert [r.status for r in layers] == ["ok", "ok", "layout", "ok", "ok"] and first.a == "s"
    # a pair one side could not capture is looked through: the error still comes from upstream of it
    diffs = {(n, n): _Diff(n, n not in ("r", "g", "y"), 0.1) for n in names if n != "s"}
    layers, first = judge_layers(plan, diffs)
    assert [r.status for r in layers] == ["ok", "source", "missing", "inherited", "inherited"]


def test_layout_ops_are_known_in_every_spelling():
    for op in ("Reshape", "Transpose", "aten.view.default", "permute", "TRANSPOSE", "Cast", "getitem"):
        assert is_layout_op(op), op
    for op in ("Conv", "aten.convolution.default", "MatMul", "CONV_2D", "relu"):
        assert not is_layout_op(op), op


# ---- real models -----------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def cnn(tmp_path_factory):
    """A torch CNN with BatchNorm (exported .pt2), its ONNX through the route (with the converter map) and
    the same ONNX with the second convolution's weights scaled by 5 %."""
    import onnx
    import torch
    from onnx import numpy_helper
    from torch import nn

    from converters.jobs import run_job

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv1, self.bn1 = nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8)
            self.conv2, self.bn2 = nn.Conv2d(8, 8, 3, padding=1), nn.BatchNorm2d(8)
            self.fc = nn.Linear(8 * 4 * 4, 5)

        def forward(self, x):
            x = torch.max_pool2d(torch.relu(self.bn1(self.conv1(x))), 2)
            x = torch.max_pool2d(torch.relu(self.bn2(self.conv2(x))), 2)
            return self.fc(torch.flatten(x, 1))

    torch.manual_seed(0)
    net = Net().eval()
    for bn in (net.bn1, net.bn2):
        bn.running_mean.uniform_(-0.5, 0.5)
        bn.running_var.uniform_(0.5, 1.5)
    d = tmp_path_factory.mktemp("per_layer")
    src = str(d / "cnn.pt2")
    torch.export.save(torch.export.export(net, (torch.randn(1, 3, 16, 16),)), src)
    good = str(d / "cnn.onnx")
    _, job = run_job("convert", {"src": src, "to": "onnx", "out": good, "options": {}})
    job.cleanup()
    m = onnx.load(good)
    conv2 = [n for n in m.graph.node if n.op_type == "Conv"][1]
    for t in m.graph.initializer:
        if t.name == conv2.input[1]:
            t.CopyFrom(numpy_helper.from_array((numpy_helper.to_array(t) * 1.05).astype(np.float32), t.name))
    bad = str(d / "cnn_bad.onnx")
    onnx.save(m, bad)
    shutil.copy(good + ".tbmap.json", bad + ".tbmap.json")  # the map still says which layer is which
    return {"src": src, "good": good, "bad": bad, "conv2_out": conv2.output[0], "dir": d}


def _per_layer(a, b):
    from converters.jobs import run_job

    res, job = run_job("compare", {"a": a, "b": b, "repeats": 1, "per_layer": True})
    job.cleanup()
    return res


def test_a_faithful_conversion_matches_at_every_layer(cnn):
    res = _per_layer(cnn["src"], cnn["good"])
    assert res["passed"] is True
    assert res["layer_first"] is None
    statuses = {r["status"] for r in res["layers"]}
    assert statuses <= {"ok", "missing"} and res["layer_counts"]["ok"] >= 6
    assert {"map", "name"} <= {r["method"] for r in res["layers"]}


def test_a_planted_weight_fault_is_found_at_its_layer_and_later_layers_inherit_it(cnn):
    res = _per_layer(cnn["src"], cnn["bad"])
    assert res["passed"] is False
    first = res["layer_first"]
    assert first is not None and first["status"] == "source"
    assert first["a"] == "bn2" and first["b"] == cnn["conv2_out"]  # BN folded into the scaled conv
    layers = res["layers"]
    k = first["index"]
    assert all(r["status"] == "ok" for r in layers[:k])
    assert [r["status"] for r in layers[k + 1:] if r["status"] != "missing"] and \
        all(r["status"] == "inherited" for r in layers[k + 1:] if r["status"] != "missing")
    assert res["first_divergence"] == "bn2"
    # B's layers re-run alone on A's tensors: the planted one is off by itself, the ones after it are not
    assert first["local_passed"] is False and first["local_max_abs"] == pytest.approx(first["max_abs"], rel=1e-3)
    after = [r for r in layers[k + 1:] if r["local_passed"] is not None]
    assert after and all(r["local_passed"] for r in after)


def test_two_onnx_files_without_a_map_pair_by_tensor_names(cnn, tmp_path):
    """The altered copy of a file converted elsewhere: no converter map, the tensor names pair the layers."""
    good, bad = tmp_path / "model.onnx", tmp_path / "model_edited.onnx"
    shutil.copy(cnn["good"], good)
    shutil.copy(cnn["bad"], bad)
    res = _per_layer(str(good), str(bad))
    assert not any(r["method"] == "map" for r in res["layers"])
    first = res["layer_first"]
    assert first is not None and first["a"] == cnn["conv2_out"] and first["op"] == "Conv"
    assert all(r["status"] in ("ok", "missing") for r in res["layers"][:first["index"]])


def test_cli_per_layer_prints_the_first_divergence_and_writes_layers_to_json(cnn):
    env = dict(os.environ, PYTHONPATH=os.getcwd())
    cmd = [sys.executable, "-m", "app", "compare", cnn["src"], cnn["bad"], "--per-layer"]
    text = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert text.returncode == 1, text.stderr
    assert "first divergence: 'bn2'" in text.stdout and "inherit the error" in text.stdout
    report = cnn["dir"] / "layers.html"
    js = subprocess.run(cmd + ["--json", "--report", str(report)], capture_output=True, text=True, env=env, timeout=300)
    doc = json.loads(js.stdout)
    assert doc["layer_first"]["a"] == "bn2" and doc["layers"]
    html = report.read_text()
    assert "first divergence: <code>bn2</code>" in html and "along the layers" in html
    assert html.count("<tr class=\"failrow\"><td>") == 1  # one layer wrong itself: the rest inherit


def test_onnx_capture_piece_by_piece_gives_every_tensor_of_one_whole_run(cnn):
    """The bounded-memory capture runs the graph as small pieces; each tensor must equal what one run of
    the whole graph with every node output marked as an output gives."""
    import onnx

    from converters.runners import runner_for

    names = [o for n in onnx.load(cnn["good"]).graph.node for o in n.output if o]
    with runner_for(cnn["good"]) as r:
        x = {s.name: np.random.default_rng(0).random([1, 3, 16, 16], dtype=np.float32) for s in r.input_specs()}
        whole = r.infer(x, capture=names)
        got: dict = {}
        outs = r.capture_stream(x, names + ["no_such_tensor"], got.__setitem__, budget_bytes=4 << 10)
        assert len(r._pieces_cache[1]) > 3  # the tiny budget forced several pieces
    assert sorted(got) == sorted(names)
    for n in names:
        np.testing.assert_array_equal(got[n], whole[n])
    assert list(outs) == [o for o in whole if o not in names or o in outs]


def test_torch_capture_hands_each_tensor_over_and_keeps_none(cnn):
    from converters.runners import runner_for

    with runner_for(cnn["src"]) as r:
        x = {s.name: np.random.default_rng(0).random([1, 3, 16, 16], dtype=np.float32) for s in r.input_specs()}
        want = ["conv1", "bn2", "fc", "no_such_module"]
        assert r.capturable(want) == ["conv1", "bn2", "fc"]
        whole = r.infer(x, capture=["conv1", "bn2", "fc"])
        got: dict = {}
        outs = r.capture_stream(x, want, got.__setitem__)
    assert sorted(got) == ["bn2", "conv1", "fc"] and "conv1" not in outs
    for n in got:
        np.testing.assert_array_equal(got[n], whole[n])


def test_tensors_that_cannot_be_laid_over_each_other_are_not_called_sources():
    ops, names = ["Conv", "Relu", "Gemm"], ["c", "r", "g"]
    plan = plan_from_graphs(_chain(ops, names), _chain(ops, names), sidecar=_map(names))
    diffs = {(n, n): _Diff(n, True, 0) for n in names}
    diffs[("r", "r")].passed, diffs[("r", "r")].reasons = False, ["shapes differ: [1, 4] vs [2, 3]"]
    layers, first = judge_layers(plan, diffs)
    assert [r.status for r in layers] == ["ok", "missing", "ok"] and first is None


def test_kept_unit_axes_do_not_stop_a_comparison():
    from converters.compare import compare_outputs

    a = {"pool": np.arange(16, dtype=np.float32).reshape(1, 16)}
    b = {"pool": np.arange(16, dtype=np.float32).reshape(1, 16, 1, 1)}  # ONNX ReduceMean with keepdims
    d = compare_outputs(a, b, pairs=[("pool", "pool")], only_given=True)
    assert d[0].passed and d[0].shape == [1, 16]


def test_a_model_output_is_paired_by_the_maps_outputs_section():
    from converters.tbmap import Entry, TensorMap

    ops, names = ["Conv", "Relu"], ["c", "y"]
    ga, gb = _chain(ops, names), _chain(ops, ["c", "out"])
    gb.values["piece"] = Value("piece", "float32", [1, 4])
    m = TensorMap(tensors=[Entry("c", "c"), Entry("y", "piece")], outputs=[Entry("y", "out")])
    plan = plan_from_graphs(ga, gb, sidecar=m)
    assert [(p.a, p.b) for p in plan.pairs] == [("c", "c"), ("y", "out")]


def test_a_module_and_the_modules_around_it_are_one_layer():
    g = _chain(["linear", "gelu", "linear"], ["linear", "gelu", "linear_1"])
    for n, scope in zip(g.nodes, ["mlp/fc", "mlp/act", "mlp/out"]):
        n.scope = scope
    from converters.tbmap import Entry, TensorMap

    m = TensorMap(tensors=[Entry("mlp.act", "gelu"), Entry("mlp", "linear_1"), Entry("mlp.out", "linear_1")])
    plan = plan_from_graphs(g, g, sidecar=m)
    maps = [(p.a, p.aliases) for p in plan.pairs if p.method == "map"]
    assert maps == [("mlp.act", []), ("mlp.out", ["mlp"])]


def test_deep_network_layers_are_judged_with_the_references_rounding_sensitivity(tmp_path):
    """A deep CNN converted faithfully differs by rounding that grows along the layers; the per-layer
    comparison measures A's own sensitivity for the tensors that fail strictly and judges them with it."""
    from tests.models.zoo_models import MODELS

    from converters.jobs import run_job

    src = str(tmp_path / "mnv3.keras")
    MODELS["k_mobilenetv3small.keras"](src)
    out = str(tmp_path / "mnv3.onnx")
    _, job = run_job("convert", {"src": src, "to": "onnx", "out": out, "options": {}})
    job.cleanup()
    res = _per_layer(src, out)
    assert res["passed"] is True, res.get("outputs", [{}])[0].get("reasons")
    assert res["layer_counts"].get("ok", 0) > 100
    inner = [o for o in res["outputs"] if o["intermediate"]]
    assert any(o["strict_mismatches"] and o["noise_allowance"] for o in inner)  # the allowance was needed
    # Judged with A's sensitivity, every layer matches or (on CPUs whose oneDNN kernels round differently)
    # a few elements of a few layers land just over their allowance; the allowance is what
    # makes the many layers that differ strictly match.
    over = []
    for o in inner:
        if o["passed"]:
            continue
        t = o["tolerance"]
        w = o["worst"][0]
        over.append(w["abs"] / (t["atol"] + t["rtol"] * abs(w["a"]) + t["noise_factor"] * (o["noise"] or 0.0)))
    assert all(r < 1.25 for r in over), (over, res["layer_first"])
    absorbed = [o for o in inner if o["passed"] and o["strict_mismatches"]]
    assert len(absorbed) > 3 * len(over), (len(absorbed), over)


def test_several_input_samples_keep_each_layers_worst(cnn):
    from converters.compare import CompareOptions, compare_models
    from converters.compare.engine import compare_samples
    from converters.errors import TensorbridgeError

    opts = CompareOptions(per_layer=True, repeats=1, warmup=0)
    merged = compare_samples(cnn["src"], cnn["bad"], opts, samples=3)
    assert merged.samples == 3 and merged.layer_first is not None and merged.layer_first.a == "bn2"
    singles = [compare_models(cnn["src"], cnn["bad"], CompareOptions(per_layer=True, repeats=1, warmup=0, seed=s))
               for s in range(3)]
    for i, layer in enumerate(merged.layers):
        assert layer.max_abs == max(r.layers[i].max_abs or 0.0 for r in singles)
    assert "worst of 3 input samples" in "\n".join(merged.summary_lines())
    assert merged.to_dict()["samples"] == 3
    with pytest.raises(TensorbridgeError, match="one .npz batch"):
        compare_samples(cnn["src"], cnn["bad"], CompareOptions(input_files=["x.npz"]), samples=2)


def test_a_runtime_without_static_checks_skips_names_it_does_not_have(model_file):
    """TFLite has no static list of capturable names here: one run tries them all, and on failure the ones
    it has are found and captured; the rest are skipped, as with ONNX and torch."""
    from converters.formats import load
    from converters.runners import runner_for

    path = model_file("compare_models", "keras_twin.tflite").path
    names = [n.outputs[0] for n in load(path).graph.nodes[:3]]
    with runner_for(path) as r:
        x = {s.name: np.random.default_rng(0).random([d if isinstance(d, int) else 1 for d in s.shape],
                                                       dtype=np.float32) for s in r.input_specs()}
        got: dict = {}
        r.capture_stream(x, names + ["no_such_tensor"], got.__setitem__)
    assert sorted(got) == sorted(names)


# ---- the two sides at once: A's tensors through a pipe (or files), B comparing as it runs ------------

def test_tensors_through_the_pipe_and_through_files_give_the_same_verdicts(cnn, tmp_path):
    """Without ``save_dir`` A streams its tensors to B through a named pipe and only failing layers reach
    the disk; with it (every tensor kept) they go through files. Both must judge every layer alike."""
    from converters.compare import CompareOptions, compare_models

    piped = compare_models(cnn["src"], cnn["bad"], CompareOptions(per_layer=True, repeats=1))
    kept_dir = tmp_path / "kept"
    filed = compare_models(cnn["src"], cnn["bad"], CompareOptions(per_layer=True, repeats=1, save_dir=str(kept_dir)))
    assert piped.layer_first is not None and piped.layer_first.a == "bn2"
    assert [(r.a, r.b, r.status) for r in piped.layers] == [(r.a, r.b, r.status) for r in filed.layers]
    assert [r.max_abs for r in piped.layers] == pytest.approx([r.max_abs for r in filed.layers], rel=1e-6)
    assert piped.layer_first.local_passed is False  # A's tensors of failing layers were kept for the re-run
    # files kept: every tensor A captured; B's only where the pair failed
    failing = sum(1 for r in filed.layers if r.status in ("source", "inherited", "layout"))
    assert len(list((kept_dir / "layers_a").glob("*.npy"))) >= sum(1 for r in filed.layers if r.status != "missing")
    assert 0 < len(list((kept_dir / "layers_b").glob("*.npy"))) <= failing + 1
    # and the folder says which file is which tensor
    index_a, index_b = json.load(open(filed.files["layers_a"])), json.load(open(filed.files["layers_b"]))
    failed_b = {r.b for r in filed.layers if r.status in ("source", "inherited", "layout")}
    assert set(index_b) <= failed_b and set(index_b) and all(os.path.exists(f) for f in index_b.values())
    assert {r.a for r in filed.layers if r.status != "missing"} <= set(index_a)


def test_frames_read_ahead_of_need_wait_in_memory_then_on_disk(tmp_path):
    """B may need A's tensors in another order than A makes them: those read ahead are held, and past the
    buffer parked on disk, and every pair is still compared with the right tensor."""
    import threading

    from converters.compare.side import InlineCompare
    from converters.runners.stream import Sender, make_pipe

    pipe = str(tmp_path / "p")
    assert make_pipe(pipe)
    rng = np.random.default_rng(0)
    a = {f"t{i}": rng.standard_normal((256, 256)).astype(np.float32) for i in range(6)}  # 256 KiB each

    def send():
        s = Sender(pipe)
        for k, v in a.items():
            s.put(k, v)
        s.close()

    th = threading.Thread(target=send)
    th.start()
    order = ["t5", "t0", "t3", "t1", "t4", "t2"]  # B's order
    c = InlineCompare({"against_pipe": pipe, "a_dir": str(tmp_path), "buffer_mb": 0.6, "wait_s": 30,
                       "pairs": [[k, k, None] for k in order], "tolerance": {"atol": 1e-6, "rtol": 0.0}})

    class Ctx:
        def progress(self, *a):
            pass

    c.start(Ctx())
    wrong = {"t3"}  # B's t3 differs: kept (with A's), the others pass and go
    kept = [c(order[0], a[order[0]])]
    assert sorted(c._held) == ["t0", "t1"] and sorted(c._parked) == ["t2", "t3", "t4"]  # read ahead to t5
    kept += [c(k, a[k] + (np.float32(0.1) if k in wrong else np.float32(0))) for k in order[1:]]
    c.finish()
    th.join(10)
    assert kept == [k in wrong for k in order]
    assert c._parked == {} and c._held == {}  # all used
    assert [d.name for d in c.diffs] == order and [d.passed for d in c.diffs] == [k not in wrong for k in order]
    # A's t3 is kept for what comes after, and so is t0, the passed tensor just before it (what fed the
    # failing layer, for re-running it on A's tensors); t5 had left the window of recent ones
    assert set(c.a_files) == {"t3", "t0"}
    assert all(np.array_equal(np.load(c.a_files[k]), a[k]) for k in c.a_files)
    # frames parked on disk went once used, but the one still in that window (t2, B's last)
    assert sorted(os.listdir(tmp_path)) == sorted([os.path.basename(f) for f in c.a_files.values()] +
                                                  [os.path.basename(c._recent["t2"].filename), "p"])


def test_one_side_failing_mid_run_ends_the_other_instead_of_leaving_it_waiting(tmp_path):
    """A runs out of its own bounds while B waits for A's tensors on the pipe: the comparison must end with
    A's error, promptly, and no worker may be left behind."""
    import time

    import onnx
    from onnx import TensorProto, helper, numpy_helper

    from converters.compare import CompareOptions, compare_models

    def model(path, shape):
        nodes = [helper.make_node("Relu", ["x"], ["r0"], name="relu0"),
                 helper.make_node("Reshape", ["r0", "shape"], ["s"], name="reshape"),
                 helper.make_node("Relu", ["s"], ["y"], name="relu1")]
        g = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 8])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
                              [numpy_helper.from_array(np.array(shape, dtype=np.int64), "shape")])
        m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
        m.ir_version = 8
        onnx.save(m, path)
        return path

    a = model(str(tmp_path / "a.onnx"), [3, 5])  # 8 values cannot be 3 x 5: A fails at run time
    b = model(str(tmp_path / "b.onnx"), [2, 4])
    t = time.monotonic()
    res = compare_models(a, b, CompareOptions(per_layer=True, repeats=1, timeout=120))
    assert time.monotonic() - t < 60
    assert res.error and res.error.startswith("side A") and res.a.error


# ---- files converted elsewhere: weights and structure; pairs the user gives ----------------------------

def test_pairs_the_user_gives_come_first_and_correct_the_others():
    ops, names = ["Conv", "Relu", "Gemm", "Softmax"], ["c", "r", "g", "y"]
    plan = plan_from_graphs(_chain(ops, names), _chain(ops, names), user_pairs=[("r", "g", None), ("q", "y", None)])
    by_a = {p.a: (p.b, p.method) for p in plan.pairs}
    assert by_a["r"] == ("g", "user")  # the user's pair replaces the name pair
    assert "g" not in by_a or by_a["g"][0] != "g"  # B's g is taken by the user's pair
    assert by_a["q"] == ("y", "user") and any("'q'" in n for n in plan.notes)
    assert by_a["c"] == ("c", "name")


def test_pairs_file_errors_are_one_line(tmp_path):
    bad = tmp_path / "pairs.json"
    bad.write_text('[["a", "b"], 3]')
    env = dict(os.environ, PYTHONPATH=os.getcwd())
    m = str(tmp_path / "m.onnx")
    shutil.copy(os.path.join(os.getcwd(), "resources", "samples", "tiny_cnn.onnx"), m)
    r = subprocess.run([sys.executable, "-m", "app", "compare", m, m, "--per-layer", "--pairs", str(bad)],
                       capture_output=True, text=True, env=env, timeout=120)
    assert r.returncode == 2 and r.stderr.strip().count("\n") == 0
    assert "entry 1 is not a pair" in r.stderr


def test_weight_fingerprints_survive_layouts_and_half_precision():
    from converters.parity.structure import _same, fingerprint, op_kind

    w = np.random.default_rng(0).standard_normal((32, 16, 3, 3)).astype(np.float32)
    f = fingerprint(w)
    assert _same(f, fingerprint(w.transpose(0, 2, 3, 1)))  # OIHW -> OHWI (TFLite)
    assert _same(f, fingerprint(w.astype(np.float16)))
    assert not _same(f, fingerprint(w * 1.05)) and not _same(f, fingerprint(w[::-1] + 0.01))
    assert fingerprint(np.ones(64, np.float32)) is None  # a constant weight says nothing
    assert op_kind("Conv") == op_kind("CONV_2D") == op_kind("aten.conv2d.default") == "conv"
    assert op_kind("FULLY_CONNECTED") == op_kind("Gemm") == op_kind("linear") == "matmul"


@pytest.mark.slow
def test_a_tflite_converted_elsewhere_pairs_by_weights_and_structure(cnn, tmp_path):
    """ONNX -> TFLite with no converter map (as if another tool converted it): layers pair by the values of
    their weights and by structure; the fused activation and the folded batch norm are accounted for; a
    fault planted before conversion is found at its layer."""
    from converters.jobs import run_job

    outs = {}
    for tag in ("good", "bad"):
        src = tmp_path / f"{tag}.onnx"
        shutil.copy(cnn[tag], src)
        out = str(tmp_path / f"{tag}.tflite")
        _, job = run_job("convert", {"src": str(src), "to": "tflite", "out": out, "options": {}}, timeout=600)
        job.cleanup()
        os.remove(out + ".tbmap.json")
        outs[tag] = out
    clean = tmp_path / "model.onnx"
    shutil.copy(cnn["good"], clean)
    res = _per_layer(str(clean), outs["good"])
    methods = {r["method"] for r in res["layers"]}
    assert res["passed"] is True and res["layer_first"] is None
    assert {"weights", "structure"} <= methods and "map" not in methods
    assert all(r["status"] == "ok" for r in res["layers"])
    assert len(res["layers"]) == 5  # conv+relu, pool, conv+relu, pool, fc: every layer TFLite keeps
    res = _per_layer(str(clean), outs["bad"])
    first = res["layer_first"]
    assert first is not None and first["status"] == "source"
    # the planted conv's TFLite op carries its ReLU: the pair is A's tensor after that activation
    import onnx
    g = onnx.load(cnn["good"]).graph
    relu_after = [n.output[0] for n in g.node if n.op_type == "Relu" and n.input[0] == cnn["conv2_out"]]
    assert first["a"] in [cnn["conv2_out"]] + relu_after
    k = first["index"]
    assert all(r["status"] == "ok" for r in res["layers"][:k])
    assert all(r["status"] == "inherited" for r in res["layers"][k + 1:] if r["status"] != "missing")


def test_a_savedmodel_is_captured_layer_by_layer_against_its_onnx(model_file, tmp_path):
    """A SavedModel signature's tensors are captured from the graph TensorFlow freezes for running (the
    names tf2onnx gives the ONNX it writes); the pieces tf2onnx makes of one TF op (a batch norm's
    Rsqrt as Sqrt then Reciprocal) compare at the last piece; a planted fault is found at its layer."""
    import onnx
    from onnx import numpy_helper

    from converters.jobs import run_job

    sm = str(tmp_path / "kcnn_sm")
    shutil.copytree(model_file("convert_models", "kcnn_sm").path, sm)
    good = str(tmp_path / "kcnn.onnx")
    _, job = run_job("convert", {"src": sm, "to": "onnx", "out": good, "options": {}}, timeout=600)
    job.cleanup()
    res = _per_layer(sm, good)
    assert res["passed"] is True and res["layer_first"] is None
    counts = res["layer_counts"]
    assert counts.get("ok", 0) >= 6 and not counts.get("missing") and not counts.get("source")
    m = onnx.load(good)
    convs = [n for n in m.graph.node if n.op_type == "Conv"]
    target = convs[1]
    for t in m.graph.initializer:
        if t.name == target.input[1]:
            t.CopyFrom(numpy_helper.from_array((numpy_helper.to_array(t) * 1.05).astype(np.float32), t.name))
    bad = str(tmp_path / "kcnn_bad.onnx")
    onnx.save(m, bad)
    shutil.copy(good + ".tbmap.json", bad + ".tbmap.json")
    res = _per_layer(sm, bad)
    first = res["layer_first"]
    assert first is not None and first["status"] == "source"
    # the planted conv, or what tf2onnx folded into it (its bias add, batch norm or activation)
    feeds = {target.output[0]}
    for n in m.graph.node:
        if any(i in feeds for i in n.input) and n.op_type in ("Add", "Mul", "Relu", "BatchNormalization"):
            feeds.update(n.output)
    assert first["b"] in feeds
    k = first["index"]
    assert all(r["status"] == "inherited" for r in res["layers"][k + 1:] if r["status"] not in ("missing", "ok"))


def test_a_torch_programs_failing_layer_is_re_run_alone_on_the_references_tensors(cnn, tmp_path):
    """ONNX -> PyTorch with one conv's weights scaled: B's FX node of that layer, called alone on A's own
    tensors, is off by itself; the layers after it, called alone, are not (their error is inherited)."""
    from converters.jobs import run_job
    from converters.tbmap import read_map

    clean = tmp_path / "model.onnx"
    shutil.copy(cnn["good"], clean)
    bad = tmp_path / "planted.onnx"
    shutil.copy(cnn["bad"], bad)
    out = str(tmp_path / "planted.pt2")
    _, job = run_job("convert", {"src": str(bad), "to": "torch", "out": out, "options": {}}, timeout=600)
    job.cleanup()
    m = read_map(out)  # written for planted.onnx: say it was written for the clean one (same names)
    m.source["path"] = str(clean)
    m.write(out + ".tbmap.json")
    res = _per_layer(str(clean), out)
    first = res["layer_first"]
    assert first is not None and first["status"] == "source" and first["a"] == cnn["conv2_out"]
    assert first["local_passed"] is False and first["local_max_abs"] == pytest.approx(first["max_abs"], rel=1e-3)
    after = [r for r in res["layers"][first["index"] + 1:] if r["local_passed"] is not None]
    assert after and all(r["local_passed"] for r in after)


def test_tflite_capture_in_groups_gives_what_keeping_every_tensor_gives(model_file):
    """A per-layer TFLite run adds the wanted tensors to a copy of the model's outputs, a group of bounded
    size at a time; each tensor must equal what the interpreter keeping every tensor reads."""
    from converters.formats import load
    from converters.runners import runner_for

    path = model_file("compare_models", "keras_twin.tflite").path
    names = [n.outputs[0] for n in load(path).graph.nodes]
    with runner_for(path) as r:
        x = {s.name: np.random.default_rng(1).random([d if isinstance(d, int) else 1 for d in s.shape],
                                                       dtype=np.float32) for s in r.input_specs()}
        whole = r.infer(x, capture=names)
        got: dict = {}
        runs = []
        real = r._make
        r._make = lambda *a, **k: runs.append(1) or real(*a, **k)
        out = r.capture_stream(x, names, got.__setitem__, budget_bytes=1)  # one tensor per group
    assert sorted(got) == sorted(names) and len(runs) == len(names) > 2
    assert all(np.array_equal(got[n], whole[n]) for n in names)
    assert all(np.array_equal(out[k], whole[k]) for k in out) and out
