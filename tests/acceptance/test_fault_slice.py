"""A slice of the per-layer fault-injection suite (``benchmarks/faults.py``): a fault planted in one layer of a
converted model must be named as the first divergence, with the failing layers after it marked inherited."""
from __future__ import annotations

import pytest

from benchmarks import faults

SLICE = [
    "onnx->tflite:cnn:Conv#1 weights x1.05",           # TFLite fuses ops: the map finds the layer
    "torch->tflite:cnn:Relu#1 -> Sigmoid",              # two hops, maps composed
    "keras->onnx:kcnn:Conv#1 weights x1.05",            # tf2onnx names
    "onnx~onnx (no map):transformer:LayerNormalization#1 epsilon 0.3",  # no map: tensor names alone
]


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    d = tmp_path_factory.mktemp("faults")
    out = {}
    for m in sorted({c.split(":")[1] for c in SLICE}):
        fn, fname = faults.MODELS[m]
        out[m] = fn(str(d / fname))
    return str(d), out


@pytest.mark.parametrize("case_id", SLICE)
def test_a_planted_fault_is_found_at_its_layer(built, case_id):
    work, models = built
    case = next(c for c in faults.cases() if c.id == case_id)
    rec = faults.run_case(case, work, models)
    assert rec.get("ok"), rec.get("why")
    assert rec["first"]["status"] in ("source", "layout")
    assert rec["downstream_inherited"], rec
