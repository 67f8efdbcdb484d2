"""Comparison: statistics and verdicts on arrays, and side-by-side runs of real models in worker processes
(each side its own process), the report, the saved results and the CLI."""
from __future__ import annotations

import json
from pathlib import Path
import os
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

from converters.compare import (CompareOptions, CompareResult, compare_arrays, compare_models, compare_outputs,
                                tolerance)

M = "compare_models"
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


# ---- arrays --------------------------------------------------------------------------------------
def test_statistics_and_worst_location():
    rng = np.random.default_rng(0)
    a = rng.random((4, 6)).astype(np.float32)
    b = a.copy()
    b[2, 5] += 0.25
    b[1, 0] -= 0.01
    d = compare_arrays(a, b, tolerance("fp32"), name="y")
    assert not d and not d.passed
    assert d.mismatches == 2 and d.numel == 24 and d.mismatch_fraction == pytest.approx(2 / 24)
    assert d.worst[0]["index"] == [2, 5] and d.worst[0]["abs"] == pytest.approx(0.25, rel=1e-5)
    assert d.worst[1]["index"] == [1, 0]
    assert d.max_abs == pytest.approx(0.25, rel=1e-5)
    assert d.mean_abs == pytest.approx(0.26 / 24, rel=1e-4)
    assert d.median_abs == 0.0
    assert d.max_rel == pytest.approx(0.25 / a[2, 5], rel=1e-4)
    assert 0.9 < d.cosine < 1.0
    assert d.topk["top1"] <= 1.0 and "top5" in d.topk  # 2-D with 6 classes: classifier-like
    assert sum(d.histogram) == 24
    assert any("worst at [2, 5]" in r for r in d.reasons)
    same = compare_arrays(a, a.copy(), tolerance("fp32"))
    assert same and same.max_abs == 0 and same.cosine == pytest.approx(1.0) and same.topk["top1"] == 1.0


def test_nan_and_inf_handling():
    a = np.array([1.0, np.nan, np.inf, -np.inf, 2.0], np.float32)
    ok = compare_arrays(a, a.copy(), tolerance("fp32"))
    assert ok and ok.nan_a == 1 and ok.inf_a == 2 and ok.nonfinite_mismatches == 0
    b = a.copy()
    b[0] = np.nan          # NaN on one side only
    b[3] = np.inf          # Inf of the other sign
    bad = compare_arrays(a, b, tolerance("fp32"))
    assert not bad and bad.nonfinite_mismatches == 2
    assert any("NaN/Inf" in r for r in bad.reasons)
    assert {tuple(w["index"]) for w in bad.worst if w["mismatch"]} == {(0,), (3,)}


def test_result_json_roundtrip_keeps_nan_and_inf(tmp_path):
    from converters.compare import SideInfo
    a = np.array([1.0, np.nan, 3.0], np.float32)
    d = compare_arrays(a, np.array([np.nan, np.nan, 3.0], np.float32), tolerance("fp32"))
    res = CompareResult(SideInfo("a.onnx"), SideInfo("b.onnx", "B"), [d])
    path = res.save_json(str(tmp_path / "r.json"))
    def no_constants(token):
        raise AssertionError(f"non-standard JSON token {token}")
    json.loads(open(path).read(), parse_constant=no_constants)  # strict JSON: no bare NaN/Infinity
    back = CompareResult.load(path)
    assert not back and back.outputs[0].max_abs == float("inf") and np.isnan(back.outputs[0].worst[0]["b"])


def test_presets_and_overrides_change_the_verdict():
    a = np.linspace(-3, 3, 50, dtype=np.float32).reshape(5, 10)
    b = a + np.float32(2e-3)  # borderline: beyond fp32 rounding, within fp16's
    assert not compare_arrays(a, b, tolerance("fp32"))
    assert compare_arrays(a, b, tolerance("fp16"))
    assert compare_arrays(a, b, tolerance("fp32", atol=3e-3))
    assert not compare_arrays(a, a + np.float32(0.2), tolerance("bf16"))
    # int8 allows a small fraction of elements off
    c = a.copy()
    c[0, 0] += 1.0
    big = np.tile(a, (20, 1))
    big_c = big.copy()
    big_c[0, 0] += 1.0
    assert not compare_arrays(a, c, tolerance("int8"))            # 1 of 50 = 2% > 1%
    assert compare_arrays(big, big_c, tolerance("int8"))          # 1 of 1000
    diffs = compare_outputs({"p": a, "q": a}, {"p": b, "q": b}, tolerance=tolerance("fp32"),
                            overrides={"q": tolerance("fp16")})
    assert [bool(d) for d in diffs] == [False, True]
    with pytest.raises(ValueError, match="unknown tolerance preset"):
        tolerance("fp8")


def test_outputs_paired_by_name_then_position_and_layout_undone():
    rng = np.random.default_rng(1)
    feat = rng.random((1, 4, 6, 5), dtype=np.float32)
    logits = rng.random((1, 7), dtype=np.float32)
    warnings: list[str] = []
    diffs = compare_outputs({"logits": logits, "feat": feat},
                            {"out0": feat.transpose(0, 2, 3, 1), "logits": logits}, warnings=warnings)
    assert [(d.name, d.name_b, d.matched_by) for d in diffs] == [("logits", "logits", "name"),
                                                                   ("feat", "out0", "position")]
    assert all(diffs) and diffs[1].perm_b == [0, 3, 1, 2]
    assert any("by position" in w for w in warnings) and any("transposed" in w for w in warnings)
    # same shape, layout changed (H == W == C): found by value search, and said so
    sq = rng.random((1, 3, 3, 3), dtype=np.float32)
    warnings = []
    d = compare_outputs({"t": sq}, {"t": sq.transpose(0, 2, 3, 1)}, warnings=warnings)[0]
    assert d and d.perm_b is not None and any("value search" in w for w in warnings)


def test_sidecar_map_pairs_outputs(tmp_path):
    from converters.tbmap import read_map
    a = np.arange(24, dtype=np.float32).reshape(1, 2, 3, 4)
    model = tmp_path / "m.tflite"
    model.write_bytes(b"x")
    # the conversion engine's format (converters.tbmap)
    (tmp_path / "m.tflite.tbmap.json").write_text(json.dumps(
        {"format": "tensorbridge.correspondence", "version": 1, "hop": "savedmodel_from_onnx",
         "source": {"path": "/x/m.onnx", "format": "onnx"}, "target": {"path": str(model), "format": "tflite"},
         "inputs": [{"source": "x", "target": "serving_x", "layout": [0, 2, 3, 1]}],
         "outputs": [{"source": "feat", "target": "Identity_1", "layout": [0, 2, 3, 1]}],
         "tensors": [{"source": "relu", "target": "tf.nn.relu", "layout": None, "layout_known": False}]}))
    sc = read_map(str(model))
    assert sc.pairs == {"x": ("serving_x", (0, 2, 3, 1)), "feat": ("Identity_1", (0, 2, 3, 1)),
                        "relu": ("tf.nn.relu", None)}
    assert sc.target_perms() == {"serving_x": (0, 2, 3, 1), "Identity_1": (0, 2, 3, 1)}
    d = compare_outputs({"feat": a}, {"Identity": a[:, 0], "Identity_1": a.transpose(0, 2, 3, 1)}, sidecar=sc)
    assert d[0].name_b == "Identity_1" and d[0].matched_by == "map" and d[0]


# ---- real models, each side in its own worker ------------------------------------------------------
def _run(model_file, a, b, **kw) -> CompareResult:
    return compare_models(model_file(M, a).path, model_file(M, b).path, CompareOptions(repeats=3, **kw))


def test_model_vs_itself_passes_and_is_reproducible(model_file, tmp_path):
    res = _run(model_file, "cnn.onnx", "cnn.onnx", seed=5, batch=3, save_dir=str(tmp_path / "s"))
    assert res and res.error is None
    assert [d.name for d in res.outputs] == ["logits", "features"]
    assert all(d.max_abs == 0 for d in res.outputs)
    assert res.inputs["x"]["shape"] == [3, 3, 16, 16]
    assert res.a.timing["repeats"] == 3 and res.a.timing["median_ms"] > 0
    assert res.a.runtime == res.b.runtime == "onnxruntime"
    with np.load(res.files["npz"]) as z:
        x1 = z["inputs/x"]
        assert set(z.files) == {"inputs/x", "a/logits", "a/features", "b/logits", "b/features"}
    back = CompareResult.load(res.files["json"])
    assert back.passed and back.outputs[0].max_abs == 0 and back.seed == 5
    res2 = _run(model_file, "cnn.onnx", "cnn.onnx", seed=5, batch=3, save_dir=str(tmp_path / "s2"))
    with np.load(res2.files["npz"]) as z:
        np.testing.assert_array_equal(z["inputs/x"], x1)  # same seed, same inputs


def test_torch_pt2_vs_its_onnx_passes(model_file):
    res = _run(model_file, "cnn.pt2", "cnn.onnx", batch=2)
    assert res, res.summary_lines()
    assert [(d.name, d.name_b) for d in res.outputs] == [("output_0", "logits"), ("output_1", "features")]
    assert all(d.matched_by == "position" for d in res.outputs)
    assert sum("by position" in w for w in res.warnings) == 2
    assert res.a.runtime == "torch" and res.outputs[0].max_abs < 1e-5


def test_keras_vs_its_tflite_passes(model_file):
    res = _run(model_file, "keras_twin.keras", "keras_twin.tflite")
    assert res, res.summary_lines()
    assert sorted(d.name for d in res.outputs) == ["features", "logits"]
    assert res.a.runtime == "tensorflow" and res.b.runtime == "tflite"
    assert not any("position" in w for w in res.warnings)


def test_nchw_model_vs_nhwc_twin_passes_after_layout_is_undone(model_file, tmp_path):
    report = tmp_path / "twin.html"
    res = _run(model_file, "cnn.onnx", "keras_twin.onnx", report=str(report))
    assert res, res.summary_lines()
    feats = next(d for d in res.outputs if d.name == "features")
    assert feats.shape == [1, 16, 8, 8] and feats.shape_b == [1, 8, 8, 16] and feats.perm_b == [0, 3, 1, 2]
    assert any("input 'x' transposed by [0, 2, 3, 1]" in w for w in res.warnings)
    html = report.read_text()
    assert "transposed by [0, 3, 1, 2]" in html


def test_perturbed_copy_fails_and_the_mismatch_is_located(model_file, tmp_path):
    facts = model_file(M, "cnn_perturbed.onnx").facts
    report = tmp_path / "report.html"
    res = _run(model_file, "cnn.onnx", "cnn_perturbed.onnx", batch=2, report=str(report),
               save_dir=str(tmp_path / "save"))
    assert not res and res.error is None
    failed = res.failed_outputs
    assert [d.name for d in failed] == [facts["perturbed_output"]]
    d = failed[0]
    assert d.mismatches == 2  # one class, two batch rows
    assert {tuple(w["index"]) for w in d.worst if w["mismatch"]} == {(0, facts["perturbed_index"]),
                                                                      (1, facts["perturbed_index"])}
    assert d.max_abs == pytest.approx(facts["delta"], rel=1e-4)
    assert next(x for x in res.outputs if x.name == "features").passed
    # the report: self-contained, with the figures and the numbers
    html = report.read_text()
    assert html.count("<svg") >= 5  # 2 histograms + 2 scatters + timing
    assert "FAIL" in html and f"[0, {facts['perturbed_index']}]" in html
    assert f"{d.max_abs:.4g}" in html and f"{d.cosine:.8g}" in html
    assert "http://" not in html.replace("http://www.w3.org/2000/svg", "") and "<script src" not in html
    embedded = html.split('id="result">', 1)[1].split("</script>", 1)[0]
    assert json.loads(embedded)["passed"] is False
    with np.load(res.files["npz"]) as z:
        np.testing.assert_allclose(z["b/logits"][:, 3] - z["a/logits"][:, 3], facts["delta"], rtol=1e-4)


def test_captured_intermediates_are_compared_too(model_file):
    # the head's bias was changed: the conv2 output still agrees, the logits do not
    res = _run(model_file, "cnn.pt2", "cnn_perturbed.onnx", capture=[("conv2", "conv2d_1")])
    by = {d.name: d for d in res.outputs}
    assert by["conv2"].name_b == "conv2d_1" and by["conv2"].matched_by == "given" and by["conv2"]
    assert by["conv2"].shape == [1, 16, 8, 8]
    assert not by["output_0"] and by["output_1"]
    assert [d.name for d in res.failed_outputs] == ["output_0"]


def _twin_with_map(model_file, tmp_path):
    """keras_twin.tflite (the CNN's NHWC twin) with a converter map in the conversion engine's format,
    naming the TFLite tensors the way the file stores them."""
    import shutil

    from converters.runners import runner_for
    tfl = tmp_path / "twin.tflite"
    shutil.copy(model_file(M, "keras_twin.tflite").path, tfl)
    with runner_for(str(tfl)) as r:
        raw = {key: t for t, key in r.aliases().items() if ":" in t}  # signature key -> tensor name
        names = [d["name"] for d in r._interp.get_tensor_details() if len(d["shape"]) == 4]
    relu = next(n for n in names if "relu1" in n)
    pool = next(n for n in names if n.endswith("MaxPool2d"))
    nhwc = [0, 2, 3, 1]
    (tmp_path / "twin.tflite.tbmap.json").write_text(json.dumps({
        "format": "tensorbridge.correspondence", "version": 1, "hop": "test",
        "inputs": [{"source": "x", "target": raw["x"], "layout": nhwc, "layout_known": True}],
        "outputs": [{"source": "logits", "target": raw["logits"], "layout": None, "layout_known": True},
                    {"source": "features", "target": raw["features"], "layout": nhwc, "layout_known": True}],
        "tensors": [{"source": "relu", "target": relu, "layout": nhwc, "layout_known": True},
                    {"source": "max_pool2d", "target": pool, "layout": None, "layout_known": False}]}))
    return str(tfl)


def test_converter_map_drives_layouts_and_inner_tensor_comparison(model_file, tmp_path):
    twin = _twin_with_map(model_file, tmp_path)
    res = compare_models(model_file(M, "cnn.onnx").path, twin, CompareOptions(repeats=1, capture_map=True))
    assert res, res.summary_lines()
    assert any("input 'x' transposed by [0, 2, 3, 1] to fit 'x' (converter map)" in w for w in res.warnings)
    assert [d.name for d in res.model_outputs] == ["logits", "features"]
    inner = {d.name: d for d in res.intermediates}
    assert set(inner) == {"relu", "max_pool2d"} and all(inner.values())
    assert inner["relu"].perm_b == [0, 3, 1, 2]
    assert inner["max_pool2d"].perm_b == [0, 3, 1, 2]  # 1x8x8x8: found by value, the map did not know
    assert res.first_divergence is None

    bad = compare_models(model_file(M, "cnn_conv1_changed.onnx").path, twin,
                         CompareOptions(repeats=1, capture_map=True, report=str(tmp_path / "r.html")))
    assert not bad and bad.first_divergence is not None and bad.first_divergence.name == "relu"
    assert "first divergence at '" + "relu" in "\n".join(bad.summary_lines())
    assert "first divergence at <code>relu</code>" in (tmp_path / "r.html").read_text()


def test_presets_change_the_verdict_on_a_real_borderline_model(model_file):
    fp32 = _run(model_file, "cnn.onnx", "cnn_nudged.onnx")
    fp16 = _run(model_file, "cnn.onnx", "cnn_nudged.onnx", tolerance=tolerance("fp16"))
    assert not fp32 and fp16
    assert fp32.outputs[0].max_abs == pytest.approx(2e-3, rel=1e-3)


def test_multi_input_model_with_int_inputs(model_file, tmp_path):
    path = model_file(M, "multi_io.onnx").path
    np.savez(tmp_path / "in.npz", a=np.array([[1, 2, 9]], np.int64), b=np.full((1, 1, 4), 2.0, np.float32))
    res = compare_models(path, path, CompareOptions(input_files=[str(tmp_path / "in.npz")], repeats=1))
    assert res, res.summary_lines()
    assert res.inputs["tokens"]["dtype"] == "int64"
    assert sum("by position" in w for w in res.warnings) == 2  # a -> tokens, b -> scale


def test_image_inputs_feed_both_layouts(model_file, tmp_path):
    from PIL import Image
    rgb = (np.random.default_rng(2).random((20, 24, 3)) * 255).astype(np.uint8)
    Image.fromarray(rgb).save(tmp_path / "cat.png")
    res = _run(model_file, "cnn.onnx", "keras_twin.onnx", input_files=[str(tmp_path / "cat.png")],
               image={"mean": [0.5, 0.5, 0.5], "std": [0.25, 0.25, 0.25]}, save_dir=str(tmp_path / "s"))
    assert res, res.summary_lines()
    assert res.inputs["x"]["shape"] == [1, 3, 16, 16]  # resized to the model's 16x16, NCHW for A
    with np.load(res.files["npz"]) as z:
        x = z["inputs/x"]
    assert x.min() < -1.0 and x.max() > 1.0  # (v / 255 - 0.5) / 0.25 spans [-2, 2]
    assert any("transposed by [0, 2, 3, 1]" in w for w in res.warnings)  # NHWC for B
    assert res.seed is None


def test_a_failing_side_is_reported_as_that_side(model_file, tmp_path):
    broken = tmp_path / "broken.onnx"
    data = open(model_file(M, "cnn.onnx").path, "rb").read()
    broken.write_bytes(data[: len(data) // 3])
    res = compare_models(model_file(M, "cnn.onnx").path, str(broken), CompareOptions(repeats=1))
    assert not res and res.error.startswith("side B (broken.onnx) failed:")
    assert res.a.error is None and res.b.error


def test_a_crashing_side_is_reported_as_a_crash(model_file, tmp_path):
    import psutil

    save = tmp_path / "crash"
    killed = []

    def kill_b():
        # side B waits for A's inputs (A loads TensorFlow); end B's process while it waits
        deadline = time.monotonic() + 60
        me = psutil.Process()
        while time.monotonic() < deadline and not killed:
            for p in me.children(recursive=True):
                try:
                    if str(save / "jobs" / "b") in " ".join(p.cmdline()):
                        p.kill()
                        killed.append(p.pid)
                except psutil.Error:
                    pass
            time.sleep(0.05)

    t = threading.Thread(target=kill_b)
    t.start()
    res = compare_models(model_file(M, "keras_twin.keras").path, model_file(M, "cnn.onnx").path,
                         CompareOptions(repeats=1, save_dir=str(save)))
    t.join()
    assert killed
    assert not res and res.b.crashed and "SIGKILL" in res.b.error
    assert res.error.startswith("side B (cnn.onnx) crashed:")


def test_compare_task_runs_in_a_worker(model_file):
    from converters.jobs import run_job

    result, job = run_job("compare", {"a": model_file(M, "cnn.onnx").path, "b": model_file(M, "cnn_nudged.onnx").path,
                                      "preset": "fp16", "repeats": 1})
    assert result["passed"] is True
    assert result["tolerance"]["name"] == "fp16"
    assert os.path.exists(result["files"]["json"])
    job.cleanup()


# ---- CLI -----------------------------------------------------------------------------------------
def _cli(*args, timeout=120, cwd=ROOT):
    env = dict(os.environ, PYTHONPATH=ROOT)
    return subprocess.run([sys.executable, "-m", "app", *args], capture_output=True, text=True, cwd=cwd,
                          env=env, timeout=timeout)


def test_cli_exit_codes(model_file, tmp_path):
    a = model_file(M, "cnn.onnx").path
    ok = _cli("compare", a, a, "--repeats", "1")
    assert ok.returncode == 0, ok.stderr
    assert "PASS" in ok.stdout
    bad = _cli("compare", a, model_file(M, "cnn_perturbed.onnx").path, "--json", "--repeats", "1")
    assert bad.returncode == 1, bad.stderr
    data = json.loads(bad.stdout)
    assert data["passed"] is False and data["outputs"][0]["worst"][0]["index"][1] == 3
    loose = _cli("compare", a, model_file(M, "cnn_nudged.onnx").path, "--atol", "0.01", "--repeats", "1")
    assert loose.returncode == 0, loose.stdout + loose.stderr
    # relative paths, from the models' folder (the workers run elsewhere)
    rel = _cli("compare", "cnn.onnx", "cnn_nudged.onnx", "--preset", "fp16", "--repeats", "1",
               "--report", "rel.html", "--save-dir", str(tmp_path / "rel"), cwd=str(tmp_path))
    assert rel.returncode == 2 and "cnn.onnx: no such file" in rel.stderr  # relative to the caller's cwd
    rel = _cli("compare", os.path.basename(a), "cnn_nudged.onnx", "--preset", "fp16", "--repeats", "1",
               "--save-dir", str(tmp_path / "rel"), cwd=os.path.dirname(a))
    assert rel.returncode == 0, rel.stdout + rel.stderr
    err = _cli("compare", a, str(tmp_path / "missing.onnx"))
    assert err.returncode == 2
    lines = err.stderr.strip().splitlines()
    assert len(lines) == 1 and "missing.onnx" in lines[0] and "Traceback" not in err.stderr


def test_cli_devices_json():
    out = _cli("devices", "--json", "--runtime", "onnxruntime")
    assert out.returncode == 0, out.stderr
    devs = json.loads(out.stdout)
    assert {"runtime": "onnxruntime", "device": "cpu"}.items() <= devs[0].items()
    assert all(d["runtime"] == "onnxruntime" for d in devs)
    assert all(d["available"] or d["reason"] for d in devs)


def test_map_tensors_a_runner_cannot_capture_are_skipped_with_a_warning(model_file, tmp_path):
    """A converter map may name tensors the saved file no longer has: those are reported, the rest compared."""
    twin = _twin_with_map(model_file, tmp_path)
    side = Path(twin + ".tbmap.json")
    m = json.loads(side.read_text())
    m["tensors"].append({"source": "relu", "target": "no/such/tensor", "layout": None, "layout_known": False})
    m["tensors"].append({"source": "no_such_source", "target": m["tensors"][0]["target"], "layout": None,
                         "layout_known": False})
    side.write_text(json.dumps(m))
    res = compare_models(model_file(M, "cnn.onnx").path, twin, CompareOptions(repeats=1, capture_map=True))
    assert res, res.summary_lines()
    assert [d.name for d in res.model_outputs] == ["logits", "features"]   # nothing mis-paired by position
    assert {d.name for d in res.intermediates} >= {"max_pool2d"}
    assert any("cannot be captured" in w for w in res.warnings)


def test_rounding_sensitivity_widens_the_tolerance_only_where_a_is_stable():
    rng = np.random.default_rng(1)
    a = rng.standard_normal((4, 50)).astype(np.float32)
    b = a + np.float32(5e-4)  # outside fp32's atol/rtol everywhere
    fp32 = tolerance("fp32")
    assert not compare_arrays(a, b, fp32)  # not measured: no allowance
    noise = 1e-3 / fp32.noise_factor  # A itself moves this much under a rounding step
    within = compare_arrays(a, b, fp32, noise=noise)
    assert within and within.noise_allowance == pytest.approx(1e-3)
    assert within.strict_mismatches == a.size and within.mismatches == 0
    assert "within A's own rounding sensitivity" in within.summary()
    assert not compare_arrays(a, b, fp32, noise=1e-6)  # B's error is far above A's own
    assert not compare_arrays(a, b, tolerance("fp32", noise_factor=0), noise=noise)  # switched off
    jumpy = compare_arrays(a, b, fp32, noise=0.5 * float(np.abs(a).max()))  # A jumps: no allowance
    assert not jumpy and jumpy.noise_unstable and "no allowance" in jumpy.reasons[0]


def test_rounding_step_moves_float_inputs_by_about_one_ulp_and_leaves_the_rest():
    from converters.runners.tasks import rounding_step

    x = np.linspace(0.5, 2.0, 1000, dtype=np.float32)
    ids = np.arange(10, dtype=np.int64)
    out = rounding_step({"x": x, "ids": ids})
    assert out["ids"] is ids
    assert out["x"].dtype == np.float32
    rel = np.abs(out["x"].astype(np.float64) - x) / x
    assert rel.max() <= 1.5 * np.finfo(np.float32).eps and (rel > 0).mean() > 0.5
    np.testing.assert_array_equal(rounding_step({"x": x, "ids": ids})["x"], out["x"])  # seeded


def test_large_arrays_are_compared_in_chunks_with_the_same_figures(monkeypatch):
    import converters.compare.diff as diff

    rng = np.random.default_rng(3)
    a = rng.standard_normal((3, 40, 50)).astype(np.float32)
    b = a + rng.standard_normal(a.shape).astype(np.float32) * 1e-6
    b[1, 7, 9] += 0.5
    b[2, 0, 0] += 2e-5  # outside atol/rtol, inside the rounding allowance below
    exact = compare_arrays(a, b, tolerance("fp32"), noise=1e-6)
    monkeypatch.setattr(diff, "LARGE", 1000)
    monkeypatch.setattr(diff, "CHUNK", 256)
    monkeypatch.setattr(diff, "SAMPLE", 10 ** 9)  # every element in the sample: percentiles exact too
    chunked = compare_arrays(a, b, tolerance("fp32"), noise=1e-6)
    for f in ("passed", "mismatches", "strict_mismatches", "noise_allowance", "reasons"):
        assert getattr(chunked, f) == getattr(exact, f), f
    for f in ("max_abs", "mean_abs", "max_rel", "mean_rel", "cosine", "median_abs", "p99_abs"):
        assert getattr(chunked, f) == pytest.approx(getattr(exact, f), rel=1e-5, abs=1e-12), f
    assert chunked.ref_range == exact.ref_range
    assert chunked.worst[0]["index"] == exact.worst[0]["index"] == [1, 7, 9]
    assert sum(chunked.histogram) == a.size
    light = compare_arrays(a, b, tolerance("fp32"), noise=1e-6, detail=False)
    assert light.passed == exact.passed and light.max_abs == chunked.max_abs and not light.histogram
