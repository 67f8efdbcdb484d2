"""What a conversion route costs on top of the converter it wraps.

For each route, the same source converted (a) by ``converters.routes.run.convert`` (planning, staging
folder, copy for onnx2tf, correspondence capture and sidecar, reopen checks, rename into place) and
(b) by calling the underlying converter(s) directly with the same settings (the plain calls a user
would write: ``torch.onnx.export``, ``onnx2tf.convert``, Keras ``export``, ``TFLiteConverter``,
``onnx2torch`` + ``torch.export``, tf2onnx). Both run in this process after one warm-up of each, so
import cost is excluded; reported: median wall seconds over ``--repeat`` runs and the ratio
route / direct of medians and of minima (target <= 1.1). Converter output goes to this process's
stdout/stderr; redirect it (the table is printed at the end on stdout, progress lines on stderr).

Models: the test suite's tiny CNN (torch and Keras twins, 16x16 input) and, with ``--mid``, a mid-size
CNN (3x128x128, five Conv-BN-ReLU blocks; torch, its ONNX, and a Keras twin as TFLite), where the
converter's own work dominates.

    .venv/bin/python benchmarks/bench_convert.py [--repeat 3] [--mid] [--json]
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def _mid_torch(path: str) -> None:
    import torch
    from torch import nn

    torch.manual_seed(0)
    layers, c = [], 3
    for out in (16, 32, 32, 64, 64):
        layers += [nn.Conv2d(c, out, 3, padding=1), nn.BatchNorm2d(out), nn.ReLU(), nn.MaxPool2d(2)]
        c = out
    model = nn.Sequential(*layers, nn.Flatten(), nn.Linear(64 * 4 * 4, 10)).eval()
    x = torch.randn(1, 3, 128, 128)
    torch.export.save(torch.export.export(model, (x,)), path)


# ---- direct calls ------------------------------------------------------------------------------------
def direct_onnx_from_torch(src, out):
    import torch

    ep = torch.export.load(src)
    torch.onnx.export(ep, (), f=out, dynamo=True, external_data=False, optimize=True)


def direct_onnx2tf(src_onnx, out_dir):
    import onnx2tf

    work = out_dir + ".work"
    os.makedirs(work)
    copy = os.path.join(work, "model.onnx")
    shutil.copy(src_onnx, copy)  # onnx2tf may overwrite its input
    np.save(os.path.join(work, "calibration_image_sample_data_20x128x128x3_float32.npy"),
            np.zeros((20, 128, 128, 3), np.float32))
    old = os.getcwd()
    os.chdir(work)
    try:
        onnx2tf.convert(input_onnx_file_path=copy, output_folder_path=out_dir, not_use_onnxsim=True,
                        copy_onnx_input_output_names_to_tflite=True, verbosity="info")
    finally:
        os.chdir(old)


def direct_torch_to_tflite(src, out_dir):
    tmp = out_dir + ".onnx"
    direct_onnx_from_torch(src, tmp)
    direct_onnx2tf(tmp, out_dir)


def direct_onnx_from_keras(src, out):
    import keras

    m = keras.models.load_model(src, compile=False)
    sig = [keras.InputSpec(shape=tuple(t.shape), dtype=t.dtype, name=t.name) for t in m.inputs]
    m.export(out, format="onnx", input_signature=sig, verbose=False)


def direct_tflite_from_keras(src, out):
    import keras
    import tensorflow as tf

    m = keras.models.load_model(src, compile=False)
    with open(out, "wb") as f:
        f.write(tf.lite.TFLiteConverter.from_keras_model(m).convert())


def direct_torch_from_onnx(src, out):
    import onnx
    import torch

    from converters.routes.torch_from_onnx import import_onnx2torch, _static_axes
    onnx2torch = import_onnx2torch()
    gm = onnx2torch.convert(onnx.load(src)).eval()
    _static_axes(gm)  # needed for torch.export to trace Keras-made Squeeze at all
    x = torch.rand(2, 16, 16, 3)
    ep = torch.export.export(gm, (x,), dynamic_shapes=({0: torch.export.Dim("batch", min=1, max=4096)},))
    torch.export.save(ep, out)


def _mid_tflite(path: str) -> None:
    """A Keras twin of the mid CNN (five Conv-BN-ReLU-MaxPool blocks on 128x128x3) as TFLite."""
    import keras
    import tensorflow as tf

    keras.utils.set_random_seed(0)
    inp = keras.Input((128, 128, 3), batch_size=1)
    x = inp
    for c in (16, 32, 32, 64, 64):
        x = keras.layers.Conv2D(c, 3, padding="same")(x)
        x = keras.layers.BatchNormalization()(x)
        x = keras.layers.ReLU()(x)
        x = keras.layers.MaxPooling2D()(x)
    out = keras.layers.Dense(10)(keras.layers.Flatten()(x))
    with open(path, "wb") as f:
        f.write(tf.lite.TFLiteConverter.from_keras_model(keras.Model(inp, out)).convert())


def direct_onnx_from_tflite(src, out):
    from keras.src.export.tf2onnx_lib import patch_tf2onnx
    from tf2onnx.convert import from_tflite

    patch_tf2onnx()
    from_tflite(src, output_path=out)


# ---- the benchmark -----------------------------------------------------------------------------------
def _time(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--mid", action="store_true", help="add the mid-size CNN (slower)")
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--only", metavar="TEXT", help="run only the routes whose label contains TEXT")
    args = ap.parse_args(argv)

    from converters.routes.run import convert
    from tests.models import convert_models as cm

    work = tempfile.mkdtemp(prefix="bench-convert-")
    models = os.path.join(work, "models")
    os.makedirs(models)
    p = lambda n: os.path.join(models, n)  # noqa: E731
    cm.build_cnn_pt2(p("cnn.pt2"))
    cm.build_kcnn_keras(p("kcnn.keras"))
    cm.build_kcnn_tflite(p("kcnn.tflite"))
    direct_onnx_from_keras(p("kcnn.keras"), p("kcnn.onnx"))
    direct_onnx_from_torch(p("cnn.pt2"), p("cnn.onnx"))
    cases = [
        ("torch -> onnx", p("cnn.pt2"), "onnx", direct_onnx_from_torch, ".onnx"),
        ("onnx -> tflite (onnx2tf)", p("cnn.onnx"), "tflite", direct_onnx2tf, ".tf"),
        ("torch -> tflite (2 hops)", p("cnn.pt2"), "tflite", direct_torch_to_tflite, ".tf"),
        ("keras -> onnx", p("kcnn.keras"), "onnx", direct_onnx_from_keras, ".onnx"),
        ("keras -> tflite", p("kcnn.keras"), "tflite", direct_tflite_from_keras, ".tflite"),
        ("onnx -> torch (onnx2torch)", p("kcnn.onnx"), "torch", direct_torch_from_onnx, ".pt2"),
        ("tflite -> onnx (tf2onnx)", p("kcnn.tflite"), "onnx", direct_onnx_from_tflite, ".onnx"),
    ]
    if args.mid:
        _mid_torch(p("mid.pt2"))
        direct_onnx_from_torch(p("mid.pt2"), p("mid.onnx"))
        _mid_tflite(p("mid.tflite"))
        cases += [("mid torch -> onnx", p("mid.pt2"), "onnx", direct_onnx_from_torch, ".onnx"),
                  ("mid onnx -> tflite (onnx2tf)", p("mid.onnx"), "tflite", direct_onnx2tf, ".tf"),
                  ("mid tflite -> onnx (tf2onnx)", p("mid.tflite"), "onnx", direct_onnx_from_tflite, ".onnx")]
    if args.only:
        cases = [c for c in cases if args.only in c[0]]
    rows = []
    counter = [0]

    def fresh(suffix):
        counter[0] += 1
        d = os.path.join(work, f"run{counter[0]}")
        os.makedirs(d)
        return os.path.join(d, "out" + suffix)

    for label, src, to, direct, suffix in cases:
        quiet = lambda *_a, **_k: None  # noqa: E731
        # warm-up: imports and first-call caches for both paths
        direct(src, fresh(suffix))
        convert(src, to, fresh("." + to if to != "tf" else ".tf"), log=quiet)
        d_times, r_times = [], []
        for i in range(args.repeat):
            order = [("d", direct), ("r", None)] if i % 2 == 0 else [("r", None), ("d", direct)]
            for kind, fn in order:
                if kind == "d":
                    d_times.append(_time(lambda: fn(src, fresh(suffix))))
                else:
                    out = fresh(".tflite" if to == "tflite" else {"onnx": ".onnx", "torch": ".pt2"}[to])
                    r_times.append(_time(lambda: convert(src, to, out, log=quiet)))
        d, r = statistics.median(d_times), statistics.median(r_times)
        # The minimum is the least disturbed by other work on a busy machine; both are reported.
        dm, rm = min(d_times), min(r_times)
        rows.append({"route": label, "direct_s": round(d, 3), "route_s": round(r, 3),
                     "ratio": round(r / d, 3), "ratio_min": round(rm / dm, 3),
                     "direct_all": [round(t, 3) for t in d_times], "route_all": [round(t, 3) for t in r_times]})
        print(f"{label:<30} direct {d:7.3f} s   route {r:7.3f} s   ratio {r / d:5.2f}   "
              f"(best-of: {dm:.3f} / {rm:.3f} = {rm / dm:.2f})", file=sys.stderr, flush=True)
    shutil.rmtree(work, ignore_errors=True)
    if args.json:
        print(json.dumps(rows, indent=1))
    else:
        print(f"\n{'route':<30} {'direct s':>9} {'route s':>9} {'ratio':>6} {'best-of ratio':>14}")
        for row in rows:
            print(f"{row['route']:<30} {row['direct_s']:9.3f} {row['route_s']:9.3f} {row['ratio']:6.2f} "
                  f"{row['ratio_min']:14.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
