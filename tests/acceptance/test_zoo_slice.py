"""A representative slice of the real-architecture matrix (``benchmarks/zoo.py``), through the real CLI.

Each pair converts with ``tensorbridge convert``, then parity is checked by ``tensorbridge compare --json`` and
by the task the window runs after a conversion (``parity_after_conversion``); both must pass and agree.
The models are real architectures built offline by ``tests/models/zoo_models.py`` (random weights).
"""
from __future__ import annotations

import argparse

import pytest

from benchmarks import zoo

# (model, target): a Keras application to ONNX and TFLite, a transformers model to ONNX, a user-written torch
# CNN to TFLite (two hops), zoo-style ONNX files (the TorchScript exporter's opset 9 with initializers listed as
# inputs; an IR 3 / opset 8 file written with onnx.helper) to PyTorch and TFLite, user-written recurrent and
# tied-weight language models to TFLite and Keras.
SLICE = [
    ("k_xception.keras", "onnx"),
    ("k_xception.keras", "tflite"),
    ("hf_bert.pt2", "onnx"),
    ("t_cnn.pt2", "tflite"),
    ("o_cnn_op9.onnx", "torch"),
    ("o_helper_init_op8.onnx", "tflite"),
    ("t_lstm.pt2", "tflite"),  # a stacked LSTM's last state: onnx2tf alone gets its batch wrong
    ("t_tiedlm.pt2", "keras"),  # onnx2tf's LayerNormalization initialisers in the tf_keras .h5
]

# Pairs onnx2tf gets wrong on its own, each fixed by a rewrite of the ONNX before it (converters/onnx_fold.py):
# a Keras Conv1D + LayerNormalization from TFLite (tf2onnx's unit-axis 2-D conv and 3-D global pool), a Keras
# MobileNetV2 SavedModel (the batch norms tf2onnx leaves after depthwise convolutions), RoBERTa's token types
# (a GatherElements from an all-zero buffer, which made the tf_keras .h5 unreadable).
REWRITTEN = [
    ("tfl_attn_seq.tflite", "tf"),
    ("tfl_attn_seq.tflite", "keras"),
    ("sm_mobilenetv2", "keras"),
    ("hf_roberta.pt2", "keras"),
]


@pytest.fixture(scope="session")
def zoo_folder():
    folder = zoo.cache_dir()
    names = sorted({m for m, _ in SLICE + REWRITTEN} | {"sm_attn_seq"})
    facts = zoo.build_models(names, folder)
    bad = {n: facts.get(n, {}).get("build_error", "not built") for n in names
           if "build_error" in facts.get(n, {"build_error": 1})}
    assert not bad, f"zoo models failed to build: {bad}"
    return folder


@pytest.mark.parametrize("name,target", SLICE, ids=[f"{m}->{t}" for m, t in SLICE])
def test_zoo_pair_converts_and_both_parity_checks_pass(zoo_folder, tmp_path, name, target):
    _pair_passes(zoo_folder, tmp_path, name, target)


@pytest.mark.slow
@pytest.mark.parametrize("name,target", REWRITTEN, ids=[f"{m}->{t}" for m, t in REWRITTEN])
def test_zoo_pair_that_onnx2tf_alone_gets_wrong_passes_after_the_rewrites(zoo_folder, tmp_path, name, target):
    _pair_passes(zoo_folder, tmp_path, name, target)


def _pair_passes(zoo_folder, tmp_path, name, target):
    src = f"{zoo_folder}/{name}"
    routes = {t: (hops, dsts) for t, hops, dsts, _ in zoo.pairs_for(src)}
    assert target in routes, f"the planner offers no route {name} -> {target}: {sorted(routes)}"
    hops, dsts = routes[target]
    args = argparse.Namespace(timeout=300, compare_timeout=180, no_direct=True, keep=False)
    rec = zoo.run_pair(name, src, target, hops, dsts, str(tmp_path), args)
    assert rec["converted"], rec.get("error")
    assert len(rec["hop_seconds_list"]) == len(hops)
    cli, window = rec["parity_cli"], rec["parity_window"]
    assert cli["verdict"] == window["verdict"], (cli, window)
    assert cli["verdict"] == "pass", cli
    assert not cli.get("exit_code_mismatch"), cli
    assert cli["max_abs"] is not None and cli["max_abs"] < 1e-3
    # the window's check also captures inner tensors (the converter map); its outputs' error stays as small
    assert window["max_abs"] is not None and window["max_abs"] < 1e-3


def test_a_keras_file_that_cannot_run_is_not_handed_over(zoo_folder, tmp_path):
    """onnx2tf saves the Keras .h5 of a SavedModel attention block whose Squeeze fails when the file is loaded
    and called; the conversion must end in one line naming that layer, and leave no file behind."""
    import os
    import subprocess
    import sys

    src = os.path.join(zoo_folder, "sm_attn_seq")
    out = tmp_path / "attn.h5"
    r = subprocess.run([sys.executable, "-m", "app", "convert", src, "--to", "keras", "-o", str(out)],
                       capture_output=True, text=True, timeout=900,
                       env=dict(os.environ, PYTHONPATH=os.getcwd()))
    assert r.returncode == 2
    line = r.stderr.strip()
    assert "\n" not in line and "cannot run" in line and "layer 'tf.compat.v1.squeeze" in line
    assert "convert it to tf (SavedModel) or tflite instead" in line
    assert not out.exists() and not any(p.name.startswith(".") for p in tmp_path.iterdir())
