"""What the comparison machinery costs on top of the runtimes themselves.

1. Infer-loop overhead: the same model and inputs, called through ``Runner.infer`` (feed validation,
   timing, output naming) versus the runtime's own call (``InferenceSession.run``, the torch module,
   the TFLite interpreter's set_tensor/invoke/get_tensor, a traced Keras call), each ending in numpy
   arrays. Reported as the ratio of medians; target <= 1.05.
2. Worker start-up: a fresh ``run_model`` worker per model — interpreter start, framework import and
   model load — and one whole ``compare`` of two models versus doing the same work in one process.

Models: the test suite's tiny CNN (16×16 input, ~0.05 ms per run) and a mid-size CNN built here
(3×128×128 input, 5 convolutions, ~ms per run), in ONNX, torch .pt2, Keras and TFLite.

    .venv/bin/python benchmarks/bench_compare.py [--iters 300] [--json]
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)


def _mid_torch():
    import torch
    from torch import nn

    torch.manual_seed(0)
    layers, c = [], 3
    for out in (16, 32, 32, 64, 64):
        layers += [nn.Conv2d(c, out, 3, padding=1), nn.BatchNorm2d(out), nn.ReLU()]
        if out != 64 or c != 64:
            layers.append(nn.MaxPool2d(2))
        c = out
    model = nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(64, 100)).eval()
    return model


def _mid_keras():
    import keras
    inp = keras.Input((128, 128, 3), name="x")
    h, c = inp, 3
    for out in (16, 32, 32, 64, 64):
        h = keras.layers.Conv2D(out, 3, padding="same")(h)
        h = keras.layers.BatchNormalization()(h)
        h = keras.layers.ReLU()(h)
        if out != 64 or c != 64:
            h = keras.layers.MaxPooling2D(2)(h)
        c = out
    h = keras.layers.GlobalAveragePooling2D()(h)
    m = keras.Model(inp, keras.layers.Dense(100, name="logits")(h))
    m(np.zeros((1, 128, 128, 3), np.float32))
    return m


def build_models(folder: str) -> dict[str, dict]:
    """Both sizes in every format; returns {label: {format: path}} plus input shapes."""
    import tensorflow as tf
    import torch

    from tests.models import compare_models as cm

    out: dict[str, dict] = {"tiny": {}, "mid": {}}
    for name, fn in (("cnn.onnx", cm.build_onnx), ("cnn.pt2", cm.build_pt2), ("keras_twin.keras", cm.build_keras)):
        fn(os.path.join(folder, name))
    sm = os.path.join(folder, "keras_twin_savedmodel")
    cm.build_tflite(os.path.join(folder, "keras_twin.tflite"))
    out["tiny"] = {"onnx": os.path.join(folder, "cnn.onnx"), "pt2": os.path.join(folder, "cnn.pt2"),
                   "keras": os.path.join(folder, "keras_twin.keras"),
                   "tflite": os.path.join(folder, "keras_twin.tflite"),
                   "nchw": (1, 3, 16, 16), "nhwc": (1, 16, 16, 3)}
    m = _mid_torch()
    x = torch.rand(1, 3, 128, 128)
    ep = torch.export.export(m, (x,))
    torch.export.save(ep, os.path.join(folder, "mid.pt2"))
    torch.onnx.export(m, (x,), os.path.join(folder, "mid.onnx"), dynamo=True, external_data=False,
                      input_names=["x"], output_names=["logits"])
    k = _mid_keras()
    k.save(os.path.join(folder, "mid.keras"))
    k.export(os.path.join(folder, "mid_sm"), format="tf_saved_model", verbose=False)
    with open(os.path.join(folder, "mid.tflite"), "wb") as f:
        f.write(tf.lite.TFLiteConverter.from_saved_model(os.path.join(folder, "mid_sm")).convert())
    out["mid"] = {"onnx": os.path.join(folder, "mid.onnx"), "pt2": os.path.join(folder, "mid.pt2"),
                  "keras": os.path.join(folder, "mid.keras"), "tflite": os.path.join(folder, "mid.tflite"),
                  "nchw": (1, 3, 128, 128), "nhwc": (1, 128, 128, 3)}
    del sm
    return out


def _raw_callable(fmt: str, runner, x: np.ndarray):
    """The runtime's own call on the runner's loaded model, returning numpy arrays."""
    if fmt == "onnx":
        sess = runner.session
        feed = {"x": x}
        return lambda: sess.run(None, feed)
    if fmt == "pt2":
        import torch
        mod = runner.module
        t = torch.from_numpy(x)

        def call():
            with torch.inference_mode():
                out = mod(t)
            return [o.numpy() for o in (out if isinstance(out, (tuple, list)) else [out])]
        return call
    if fmt == "tflite":
        it = runner._interp
        i_in = it.get_input_details()[0]["index"]
        outs = [d["index"] for d in it.get_output_details()]
        if tuple(it.get_input_details()[0]["shape"]) != x.shape:
            it.resize_tensor_input(i_in, list(x.shape))
            it.allocate_tensors()

        def call():
            it.set_tensor(i_in, x)
            it.invoke()
            return [it.get_tensor(o) for o in outs]
        return call
    if fmt == "keras":
        import tensorflow as tf
        model = runner.keras_model
        fn = tf.function(lambda inp: model(inp, training=False), reduce_retracing=True)

        def call():
            out = fn(x)
            vals = out.values() if isinstance(out, dict) else (out if isinstance(out, (list, tuple)) else [out])
            return [v.numpy() for v in vals]
        return call
    raise ValueError(fmt)


def _median_per_call(fn, iters: int) -> float:
    t0 = time.perf_counter()
    for _ in range(iters):
        fn()
    return (time.perf_counter() - t0) / iters


def infer_overhead(models: dict, iters: int) -> list[dict]:
    from converters.runners import runner_for

    rows = []
    for size, paths in models.items():
        for fmt in ("onnx", "pt2", "tflite", "keras"):
            x = np.random.default_rng(0).random(paths["nhwc" if fmt in ("tflite", "keras") else "nchw"],
                                                 dtype=np.float32)
            print(f"  timing {size} {fmt}", file=sys.stderr, flush=True)
            with runner_for(paths[fmt]) as r:
                name = r.input_specs()[0].name
                feeds = {name: x}
                raw = _raw_callable(fmt, r, x)
                wrapped = lambda: r.infer(feeds)  # noqa: E731
                n = iters * 5 if size == "tiny" else max(100, iters)
                for f in (raw, wrapped):  # warm both paths (traces, allocations)
                    _median_per_call(f, max(5, n // 20))
                # alternate call by call: both paths see the same machine load, which on a shared
                # machine drifts far more than the difference being measured
                raw_t, run_t = [], []
                clock = time.perf_counter
                for _ in range(n):
                    t0 = clock()
                    raw()
                    t1 = clock()
                    wrapped()
                    t2 = clock()
                    raw_t.append(t1 - t0)
                    run_t.append(t2 - t1)
                r_raw, r_run = statistics.median(raw_t), statistics.median(run_t)
                paired = statistics.median([b - a for a, b in zip(raw_t, run_t)])
                rows.append({"model": size, "runtime": r.runtime, "format": fmt, "raw_ms": r_raw * 1e3,
                             "runner_ms": r_run * 1e3, "ratio": r_run / r_raw, "overhead_us": paired * 1e6,
                             "calls": n})
    return rows


def startup(models: dict) -> dict:
    from converters.compare import CompareOptions, compare_models
    from converters.jobs import run_job

    out = {"run_model": []}
    paths = models["mid"]
    for fmt in ("onnx", "pt2", "tflite", "keras"):
        t0 = time.perf_counter()
        res, job = run_job("run_model", {"path": paths[fmt], "generate": {"seed": 0}, "repeats": 1, "warmup": 0,
                                         "spawned_at": time.monotonic()})
        wall = time.perf_counter() - t0
        job.cleanup()
        out["run_model"].append({"format": fmt, "wall_s": wall, "boot_s": res.get("boot_s"),
                                 "open_s": res.get("open_s"), "infer_ms": res["timing"]["median_ms"]})
    # a whole comparison in workers vs the same work in this (already warm) process
    t0 = time.perf_counter()
    res = compare_models(paths["pt2"], paths["onnx"], CompareOptions(repeats=5))
    out["compare_wall_s"] = time.perf_counter() - t0
    out["compare_passed"] = bool(res)
    out["compare_boot_s"] = [res.a.startup_s, res.b.startup_s]
    out["compare_open_s"] = [res.a.open_s, res.b.open_s]
    # warm: each side handed to a worker that has already imported its framework
    from converters.jobs import WorkerPool
    with WorkerPool(("torch", "onnx")) as pool:
        time.sleep(8)  # let the spares finish importing, as they do while the window is idle
        t0 = time.perf_counter()
        res = compare_models(paths["pt2"], paths["onnx"], CompareOptions(repeats=5), pool=pool)
        out["compare_warm_wall_s"] = time.perf_counter() - t0
        out["compare_warm_open_s"] = [res.a.open_s, res.b.open_s]
    from converters.compare import compare_outputs
    from converters.inputs import random_inputs
    from converters.runners import runner_for
    t0 = time.perf_counter()
    with runner_for(paths["pt2"]) as a, runner_for(paths["onnx"]) as b:
        feeds = random_inputs(a.input_specs(), seed=0)
        feeds_b = {b.input_specs()[0].name: next(iter(feeds.values()))}
        for _ in range(6):
            oa = a.infer(feeds)
        for _ in range(6):
            ob = b.infer(feeds_b)
        compare_outputs(oa, ob)
    out["in_process_warm_s"] = time.perf_counter() - t0
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--iters", type=int, default=300, help="timed calls per model (x5 for the tiny one)")
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    with tempfile.TemporaryDirectory(prefix="bench-compare-") as tmp:
        t0 = time.perf_counter()
        models = build_models(tmp)
        build_s = time.perf_counter() - t0
        rows = infer_overhead(models, args.iters)
        if not args.json:
            print(f"models built in {build_s:.1f} s\n")
            print("Infer loop: runner vs the runtime's own call, alternated call by call (medians; +µs = median of the"
          " paired differences)")
            print(f"{'model':<6}{'runtime':<13}{'raw ms':>10}{'runner ms':>11}{'ratio':>8}{'+µs/call':>10}")
            for r in rows:
                flag = "" if r["ratio"] <= 1.05 else "  (> 1.05)"
                print(f"{r['model']:<6}{r['runtime']:<13}{r['raw_ms']:>10.4f}{r['runner_ms']:>11.4f}"
                      f"{r['ratio']:>8.3f}{r['overhead_us']:>10.1f}{flag}", flush=True)
        st = startup(models)
    if args.json:
        print(json.dumps({"infer": rows, "startup": st, "build_s": build_s}, indent=1))
        return 0
    print("\nWorker start-up (fresh process per side, mid-size model)")
    print(f"{'format':<8}{'wall s':>8}{'boot s':>8}{'open s':>8}{'infer ms':>10}")
    for r in st["run_model"]:
        print(f"{r['format']:<8}{r['wall_s']:>8.2f}{(r['boot_s'] or 0):>8.2f}{r['open_s']:>8.2f}{r['infer_ms']:>10.3f}")
    print(f"\ncompare pt2 vs onnx, fresh workers: {st['compare_wall_s']:.2f} s (passed: {st['compare_passed']}; "
          f"boot A/B {st['compare_boot_s'][0]:.2f}/{st['compare_boot_s'][1]:.2f} s, "
          f"open A/B {st['compare_open_s'][0]:.2f}/{st['compare_open_s'][1]:.2f} s)")
    print(f"compare pt2 vs onnx, warm workers (WorkerPool): {st['compare_warm_wall_s']:.2f} s "
          f"(open A/B {st['compare_warm_open_s'][0]:.2f}/{st['compare_warm_open_s'][1]:.2f} s)")
    print(f"same work in this process, frameworks already imported: {st['in_process_warm_s']:.2f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
