"""``tensorbridge reduce``: a fault planted in one mid-graph layer of an exported ONNX model is cut out as a
repro that fails the same way, at least ten times smaller than the model, while the same subgraph of the
clean model passes."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]
CLI = str(Path(sys.executable).with_name("tensorbridge"))


# ---- the search and the verdict, without any model -----------------------------------------------------

@pytest.mark.fast
def test_the_nearest_cut_is_tried_first_and_kept_when_it_fails():
    from converters.parity.reduce import search_cut

    seen = []
    fed, how = search_cut(["a", "b", "c"], lambda f: seen.append(list(f)) or True)
    assert fed == ["a", "b", "c"] and seen == [["a", "b", "c"]] and how.startswith("nearest")


@pytest.mark.fast
def test_bisection_then_shrinking_finds_the_smallest_failing_cut():
    from converters.parity.reduce import search_cut

    cands = [f"t{k}" for k in range(16)]
    # the failure needs t5's upstream error: a cut fails while t5 is not fed (t5 left to be computed)
    fed, how = search_cut(cands, lambda f: "t5" not in f)
    assert fed == [c for c in cands if c != "t5"] and "bisection" in how
    # nothing fails, not even the whole cone: no repro
    assert search_cut(cands, lambda f: False) == (None, "")
    # a bounded search stops early with a cut that still fails
    calls = []
    fed, _ = search_cut(cands, lambda f: calls.append(1) or "t5" not in f, max_checks=6)
    assert len(calls) <= 6 and "t5" not in fed


@pytest.mark.fast
def test_fails_the_same_way_needs_the_same_tolerance_and_the_same_order_of_error():
    from converters.parity.reduce import same_way
    from converters.parity.tasks import judge

    tol = {"atol": 1e-5, "rtol": 1e-4}
    a = np.linspace(-1, 1, 100, dtype=np.float32)
    assert judge(a, a + 1e-6, tol)["passed"]
    v = judge(a, a * 1.05, tol)
    assert not v["passed"] and v["max_abs"] == pytest.approx(0.05, rel=1e-3)
    assert same_way(v, 0.05) and same_way(v, 0.3)
    assert not same_way(v, 1.0)  # a twentieth of the model's error: another failure
    assert not same_way(judge(a, a + 1e-6, tol), 1e-6)
    assert judge(a, a + 2e-5, tol, allowance=1e-4)["passed"]  # the reference's rounding allowance applies
    assert not judge(a, a.reshape(10, 10)[:5], tol)["passed"]
    assert not same_way(judge(a, a[:50], tol), None)  # a shape change is not this failure


@pytest.mark.fast
def test_a_cut_is_a_standalone_model_with_the_original_names(tmp_path):
    import onnx
    import onnxruntime as ort
    from onnx import TensorProto, helper, numpy_helper

    from converters.parity.tasks import Graph

    w = numpy_helper.from_array(np.full((4, 4), 0.5, np.float32), "w")
    nodes = [helper.make_node("MatMul", ["x", "w"], ["h1"], name="mm1"),
             helper.make_node("Relu", ["h1"], ["h2"], name="relu"),
             helper.make_node("MatMul", ["h2", "w"], ["h3"], name="mm2"),
             helper.make_node("Add", ["h3", "h1"], ["y"], name="add")]
    g = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])], [w])
    graph = Graph(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]))
    assert graph.cone("y", set()) == [0, 1, 2, 3]
    assert graph.cone("y", {"h1"}) == [1, 2, 3] and graph.boundary([1, 2, 3]) == ["h1"]
    assert graph.cone("y", {"h1", "h2"}) == [2, 3] and graph.boundary([2, 3]) == ["h2", "h1"]
    h1 = np.ones((1, 4), np.float32)
    m = graph.model_of([2, 3], {"h2": h1, "h1": h1}, "y")
    onnx.checker.check_model(m)
    assert [t.name for t in m.graph.initializer] == ["w"]
    got = ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"]).run(
        None, {"h2": h1, "h1": h1})[0]
    np.testing.assert_allclose(got, h1 @ np.full((4, 4), 0.5) + h1)


@pytest.mark.fast
def test_a_repro_folder_never_replaces_an_existing_one(tmp_path):
    from converters.parity.reduce import fresh_folder

    assert fresh_folder(str(tmp_path / "r")) == str(tmp_path / "r")
    (tmp_path / "r").mkdir()
    (tmp_path / "r_1").mkdir()
    assert fresh_folder(str(tmp_path / "r")) == str(tmp_path / "r_2")


@pytest.mark.slow
def test_a_failure_made_upstream_of_the_first_divergence_is_found_by_bisection(tmp_path):
    """A bias shifted by 5e-6 passes where it is made and fails only after a x1000 scale: the nearest cut
    (the scale alone, on A's values) passes, so the cut grows upstream until it holds the shifted bias."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    from converters.parity.reduce import ReduceOptions, reduce_failure

    def chain(shift: float) -> onnx.ModelProto:
        nodes, inits, x = [], [], "x"
        for k in range(10):  # a stack of affine layers that keep values in [0, 1)
            inits += [numpy_helper.from_array(np.full((1, 16), 0.9, np.float32), f"w{k}"),
                      numpy_helper.from_array(np.full((1, 16), 0.05, np.float32), f"b{k}")]
            nodes += [helper.make_node("Mul", [x, f"w{k}"], [f"m{k}"], name=f"mul{k}"),
                      helper.make_node("Add", [f"m{k}", f"b{k}"], [f"a{k}"], name=f"add{k}")]
            x = f"a{k}"
        inits += [numpy_helper.from_array(np.full((1, 16), 1e-3, np.float32), "small"),
                  numpy_helper.from_array(np.full((1, 16), shift, np.float32), "shift"),
                  numpy_helper.from_array(np.full((1, 16), 1e3, np.float32), "big")]
        nodes += [helper.make_node("Mul", [x, "small"], ["tiny"], name="to_small"),
                  helper.make_node("Add", ["tiny", "shift"], ["shifted"], name="shift_bias"),
                  helper.make_node("Mul", ["shifted", "big"], ["scaled"], name="scale"),
                  helper.make_node("Relu", ["scaled"], ["y"], name="out")]
        for k in range(4):
            nodes.insert(len(nodes) - 1, helper.make_node("Sigmoid", ["scaled" if k == 0 else f"s{k - 1}"], [f"s{k}"],
                                                          name=f"sig{k}"))
        nodes[-1].input[0] = "s3"
        g = helper.make_graph(nodes, "chain", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 16])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 16])], inits)
        m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
        return onnx.shape_inference.infer_shapes(m)

    onnx.save(chain(0.0), str(tmp_path / "a.onnx"))
    onnx.save(chain(5e-6), str(tmp_path / "b.onnx"))
    res = reduce_failure(str(tmp_path / "a.onnx"), str(tmp_path / "b.onnx"), ReduceOptions(out=str(tmp_path / "r")))
    assert res.target == "scaled" and "bisection" in res.how, res
    assert "shift_bias" in res.nodes and "scale" in res.nodes and res.nodes_after <= 3, res.nodes
    assert res.nodes_before >= 10 * res.nodes_after
    assert res.max_abs >= 0.1 * res.layer_max_abs


# ---- a real model: torch CNN -> ONNX (the convert route), one Conv's weights scaled -------------------

DEPTH = 12  # conv-BN-ReLU blocks: the exported ONNX has about 2 * DEPTH + 3 nodes
PLANT_AT = 6  # the Conv of block 6


def _torch_cnn(path: str) -> str:
    import torch
    from torch import nn

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.stem = nn.Conv2d(3, 8, 3, padding=1)
            self.blocks = nn.Sequential(*[nn.Sequential(nn.Conv2d(8, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU())
                                          for _ in range(DEPTH)])
            self.head = nn.Linear(8, 5)

        def forward(self, x):
            return self.head(self.blocks(self.stem(x)).mean(dim=(2, 3)))

    torch.manual_seed(0)
    m = Net().eval()
    for mod in m.modules():  # BatchNorm statistics that are not the identity
        if isinstance(mod, nn.BatchNorm2d):
            mod.running_mean.uniform_(-0.3, 0.3)
            mod.running_var.uniform_(0.5, 1.5)
    torch.export.save(torch.export.export(m, (torch.randn(1, 3, 12, 10),)), path)
    return path


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    import onnx

    from benchmarks import faults

    d = tmp_path_factory.mktemp("reduce")
    pt2 = _torch_cnn(str(d / "net.pt2"))
    clean = faults._convert(pt2, "onnx", str(d / "net.onnx"))
    bad = onnx.load(clean)
    _, plant = faults.scale_weight("Conv", PLANT_AT)
    planted = plant(bad)
    assert planted is not None
    onnx.save(bad, str(d / "planted.onnx"))
    return {"dir": d, "pt2": pt2, "clean": clean, "planted": str(d / "planted.onnx"), "node": planted.name,
            "nodes": len(bad.graph.node)}


def _cli(*args, cwd=None) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.run([CLI, *args], capture_output=True, text=True, timeout=300, env=env, cwd=cwd)


def _check_repro(out: Path, models: dict, target: str) -> None:
    """The planted node is in the repro, which is >= 10x smaller; the repro fails against A's values on its
    inputs while the clean model's same subgraph does not."""
    import onnx
    import onnxruntime as ort
    from onnx.utils import Extractor

    info = json.loads((out / "reduce.json").read_text())
    repro = onnx.load(str(out / "repro.onnx"))
    names = [n.name for n in repro.graph.node]
    assert models["node"] in names, (names, models["node"])
    assert models["nodes"] >= 10 * len(names), (models["nodes"], names)
    feeds = dict(np.load(out / "inputs.npz"))
    assert sorted(feeds) == sorted(i.name for i in repro.graph.input)
    expected = np.load(out / "expected.npz")[target]
    atol = info["tolerance"]["atol"] + info["allowance"]
    rtol = info["tolerance"]["rtol"]
    got = ort.InferenceSession(str(out / "repro.onnx"), providers=["CPUExecutionProvider"]).run(None, feeds)[0]
    assert not np.allclose(got, expected, atol=atol, rtol=rtol)
    np.testing.assert_allclose(np.load(out / "actual.npz")[target], got, rtol=1e-6, atol=1e-7)
    # the same cut of the clean model, on the same inputs, matches A
    clean = Extractor(onnx.load(models["clean"])).extract_model(list(feeds), [target])
    ref = ort.InferenceSession(clean.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, feeds)[0]
    np.testing.assert_allclose(ref, expected, atol=atol, rtol=rtol)
    readme = (out / "README.md").read_text()
    assert "python check.py" in readme and f"| nodes | {models['nodes']} | {len(names)} " in readme
    # the one command of the README reproduces the failure (exit 1 while it fails)
    chk = subprocess.run([sys.executable, "check.py"], cwd=out, capture_output=True, text=True, timeout=120)
    assert chk.returncode == 1, chk.stdout + chk.stderr


@pytest.mark.slow
def test_cli_cuts_the_planted_layer_out_of_two_onnx_files(models):
    out = models["dir"] / "cli.repro"
    p = _cli("reduce", models["clean"], models["planted"], "-o", str(out))
    assert p.returncode == 0, p.stderr
    lines = p.stdout.strip().splitlines()
    assert lines[-1] == f"written: {out}" and any(line.startswith("repro: 1 of ") for line in lines), p.stdout
    info = json.loads((out / "reduce.json").read_text())
    assert info["case"] == "onnx" and info["ratio"] >= 10 and info["max_abs"] > 1e-3
    _check_repro(out, models, info["target"])
    # a second run never replaces the first folder: it picks a fresh name, and --json says where
    p = _cli("reduce", models["clean"], models["planted"], "-o", str(out), "--json")
    assert p.returncode == 0, p.stderr
    again = json.loads(p.stdout)
    assert again["out_dir"] == f"{out}_1" and again["nodes_after"] == info["nodes_after"]
    assert (out / "repro.onnx").exists()


@pytest.mark.slow
def test_api_reduces_against_the_torch_reference(models):
    from converters.parity.reduce import ReduceOptions, reduce_failure

    b = models["dir"] / "planted_map.onnx"
    shutil.copy(models["planted"], b)
    shutil.copy(models["clean"] + ".tbmap.json", str(b) + ".tbmap.json")  # the map of the clean conversion
    res = reduce_failure(models["pt2"], str(b), ReduceOptions(out=str(models["dir"] / "api")))
    assert res.differ and res.case == "onnx" and res.out_dir == str(models["dir"] / "api")
    assert res.nodes_before == models["nodes"] and res.ratio >= 10
    assert models["node"] in res.nodes and res.target_a.startswith("blocks.")
    assert res.max_abs >= 0.1 * res.layer_max_abs
    _check_repro(Path(res.out_dir), models, res.target)


@pytest.mark.slow
def test_a_conversion_that_differs_is_cut_out_of_its_onnx_source_and_converted_again(models):
    """Case 2: B is A's conversion (ONNX -> TFLite with float16 weights, judged at fp32 tolerance): the repro
    is a cut of A that, converted again the same way (read from B's converter map), still differs."""
    import onnxruntime as ort

    from converters.jobs import run_job
    from converters.parity.reduce import ReduceOptions, reduce_failure

    b = str(models["dir"] / "net_fp16.tflite")
    _, job = run_job("convert", {"src": models["clean"], "to": "tflite", "out": b, "options": {"fp16": True}},
                     timeout=300)
    job.cleanup()
    res = reduce_failure(models["clean"], b, ReduceOptions(out=str(models["dir"] / "conv")))
    assert res.differ and res.case == "conversion" and res.convert_options == {"fp16": True}
    assert res.nodes_before == models["nodes"] and res.ratio >= 10 and 1 <= res.checks <= 8
    out = Path(res.out_dir)
    assert (out / "converted.tflite").exists() and "--fp16" in (out / "README.md").read_text()
    feeds = dict(np.load(out / "inputs.npz"))
    expected = np.load(out / "expected.npz")[res.target]
    actual = np.load(out / "actual.npz")[res.target]
    tol = dict(atol=res.tolerance["atol"] + res.allowance, rtol=res.tolerance["rtol"])
    # the cut is A's own ONNX: it gives A's values; its conversion does not
    got = ort.InferenceSession(str(out / "repro.onnx"), providers=["CPUExecutionProvider"]).run(None, feeds)[0]
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)
    assert not np.allclose(actual.reshape(expected.shape) if actual.size == expected.size else actual, expected, **tol)


@pytest.mark.slow
def test_a_pair_that_matches_exits_1_with_one_line(models):
    same = models["dir"] / "copy.onnx"
    shutil.copy(models["clean"], same)
    p = _cli("reduce", models["clean"], str(same), "-o", str(models["dir"] / "none"))
    assert p.returncode == 1, p.stderr
    assert p.stdout.strip().count("\n") == 0 and "nothing to reduce" in p.stdout
    assert not (models["dir"] / "none").exists()


@pytest.mark.slow
def test_a_corrupt_model_exits_2_with_one_clean_line(models):
    bad = models["dir"] / "broken.onnx"
    bad.write_bytes(Path(models["clean"]).read_bytes()[:300])
    p = _cli("reduce", models["clean"], str(bad))
    assert p.returncode == 2
    err = p.stderr.strip()
    assert err.startswith("tensorbridge: error: ") and "\n" not in err and "Traceback" not in err, err
    assert "\x1b" not in err and p.stdout == ""


# ---- the pair to reduce and a kept comparison reused -------------------------------------------------

def _kept_comparison(a: str, b: str, folder: Path) -> dict:
    from converters.compare.params import compare_params
    from converters.jobs import run_job

    res, job = run_job("compare", compare_params(a, b, per_layer=True, out_dir=str(folder)), timeout=300)
    job.cleanup()
    assert (folder / "result.json").exists() and (folder / "inputs.npz").exists()
    return res


@pytest.mark.slow
def test_a_kept_comparison_is_reused_and_any_failing_pair_can_be_reduced(models):
    """The window's comparison keeps its folder: reducing from it runs no comparison of its own (the jobs it
    ran are counted by task) and gives the repro a fresh run gives; a pair that only inherits error is cut
    back to where the error is made; a passing pair or another comparison's folder is refused in one line."""
    import onnxruntime as ort

    from converters.errors import TensorbridgeError
    from converters.parity.reduce import ReduceOptions, reduce_failure

    d = models["dir"]
    folder = d / "kept"
    cmp = _kept_comparison(models["clean"], models["planted"], folder)
    first = cmp["layer_first"]
    reused = reduce_failure(models["clean"], models["planted"], ReduceOptions(out=str(d / "reused"),
                                                                            result_dir=str(folder)))
    assert reused.jobs and "compare" not in reused.jobs and reused.reused == str(folder)
    assert reused.first and reused.layer == first["index"] and reused.target_a == first["a"]
    fresh = reduce_failure(models["clean"], models["planted"], ReduceOptions(out=str(d / "fresh")))
    assert fresh.jobs.get("compare") == 1 and not fresh.reused
    assert (reused.nodes, reused.inputs, reused.target) == (fresh.nodes, fresh.inputs, fresh.target)
    assert reused.max_abs == pytest.approx(fresh.max_abs, rel=1e-5)
    _check_repro(Path(reused.out_dir), models, reused.target)

    # an inherited pair further down, by its layer index: the cut holds the planted Conv above it
    inherited = [r for r in cmp["layers"] if r["status"] == "inherited" and r["depth"] > first["depth"] + 2]
    pick = inherited[len(inherited) // 2]
    res = reduce_failure(models["clean"], models["planted"], ReduceOptions(out=str(d / "inherited"),
                                                                         result_dir=str(folder), layer=pick["index"]))
    assert "compare" not in res.jobs and not res.first and res.layer == pick["index"]
    assert res.target_a == pick["a"] and res.target == pick["b"] and models["node"] in res.nodes
    assert len(res.nodes) > len(reused.nodes)
    out = Path(res.out_dir)
    feeds = dict(np.load(out / "inputs.npz"))
    expected = np.load(out / "expected.npz")[res.target]
    got = ort.InferenceSession(str(out / "repro.onnx"), providers=["CPUExecutionProvider"]).run(None, feeds)[0]
    assert not np.allclose(got, expected, atol=res.tolerance["atol"] + res.allowance, rtol=res.tolerance["rtol"])
    assert f"layer pair chosen (layer {pick['index']})" in (out / "README.md").read_text()
    assert json.loads((out / "reduce.json").read_text())["layer"] == pick["index"]

    ok = next(r for r in cmp["layers"] if r["status"] == "ok")
    with pytest.raises(TensorbridgeError, match="matches within tolerance"):
        reduce_failure(models["clean"], models["planted"], ReduceOptions(result_dir=str(folder), layer=ok["a"]))
    with pytest.raises(TensorbridgeError, match="no layer 'nope'"):
        reduce_failure(models["clean"], models["planted"], ReduceOptions(result_dir=str(folder), layer="nope"))
    with pytest.raises(TensorbridgeError, match="is a comparison of"):
        reduce_failure(models["planted"], models["clean"], ReduceOptions(result_dir=str(folder)))


@pytest.mark.slow
def test_a_second_layer_wrong_itself_is_reduced_when_named(models):
    """Two planted Convs (blocks 2 and 6): by default the repro ends at the first; named by A's tensor, the
    second one is cut out alone (the first is fed with A's values, so its error never reaches the cut)."""
    import onnx

    from benchmarks import faults
    from converters.parity.reduce import ReduceOptions, reduce_failure

    d = models["dir"]
    m = onnx.load(models["planted"])
    _, plant = faults.scale_weight("Conv", 2)
    early = plant(m)
    assert early is not None and early.name != models["node"]
    two = d / "two_faults.onnx"
    onnx.save(m, str(two))
    second = next(n for n in m.graph.node if n.name == models["node"]).output[0]
    res = reduce_failure(models["clean"], str(two), ReduceOptions(out=str(d / "second"), layer=second))
    assert res.jobs.get("compare") == 1 and not res.first and res.target_a == second
    assert models["node"] in res.nodes and early.name not in res.nodes
    assert "layer" in res.summary_lines()[0] and second in res.summary_lines()[0]
