"""A TFLite result that needs TensorFlow Select ops is said so when it is written, and when it is run."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import onnx
from onnx import TensorProto, helper

ROOT = Path(__file__).resolve().parents[2]
TB = [sys.executable, "-m", "app"]


def test_select_ops_are_named_at_conversion_and_at_run(tmp_path):
    g = helper.make_graph([helper.make_node("MaxPool", ["x"], ["y"], kernel_shape=[2, 2, 2], strides=[2, 2, 2])],
                          "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2, 4, 4, 4])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 2, 2, 2, 2])])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])
    m.ir_version = 8
    src = tmp_path / "pool3d.onnx"
    onnx.save(m, str(src))
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    out = tmp_path / "pool3d.tflite"
    conv = subprocess.run(TB + ["convert", str(src), "--to", "tflite", "-o", str(out)], capture_output=True,
                          text=True, env=env, timeout=600)
    assert conv.returncode == 0, conv.stderr
    warn = [ln for ln in conv.stderr.splitlines() if ln.startswith("warning:")]
    assert warn == [f"warning: {out}: uses TensorFlow Select ops (MaxPool3D), which the plain TFLite / LiteRT "
                    f"interpreter cannot run; it needs a TFLite runtime with the Flex delegate (on Android: "
                    f"tensorflow-lite-select-tf-ops), or a source that needs no TF ops (float64 tensors and 3-D "
                    f"pooling are the usual causes)"]
    run = subprocess.run(TB + ["compare", str(src), str(out)], capture_output=True, text=True, env=env, timeout=600)
    assert run.returncode == 2
    assert "needs TensorFlow Select ops (MaxPool3D)" in run.stderr.strip().splitlines()[-1]
