"""ONNX -> Keras: onnx2tf's tf_keras model (TFOpLambda layers name TF ops, no Python code) runs without trust."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from converters.compare.params import parity_after_conversion
from converters.jobs import run_job

SAMPLE = Path(__file__).resolve().parents[2] / "resources" / "samples" / "tiny_cnn.onnx"


def test_the_windows_parity_check_of_a_keras_result_needs_no_trust(tmp_path):
    src = tmp_path / "tiny_cnn.onnx"
    shutil.copy(SAMPLE, src)
    out = tmp_path / "tiny_cnn.h5"
    res, job = run_job("convert", {"src": str(src), "to": "keras", "out": str(out), "options": {}})
    job.cleanup()
    from converters.formats.keras.files import h5_layer_classes

    assert "TFOpLambda" in h5_layer_classes(str(out)) and "Lambda" not in h5_layer_classes(str(out))
    cmp, job = run_job("compare", parity_after_conversion(str(src), str(out), {}))
    job.cleanup()
    assert cmp.get("error") is None, cmp.get("error")
    assert cmp["passed"] is True


def test_capturing_inner_tensors_does_not_change_a_keras_models_outputs(model_file, tmp_path):
    """With or without the converter map, side A computes its outputs the same way (traced)."""
    src = model_file("tf_models", "cnn.keras").path
    out = tmp_path / "cnn.onnx"
    res, job = run_job("convert", {"src": src, "to": "onnx", "out": str(out), "options": {}})
    job.cleanup()
    results = []
    for capture in (False, True):
        cmp, job = run_job("compare", {"a": src, "b": str(out), "repeats": 1, "capture_map": capture})
        job.cleanup()
        results.append({o["name"]: o["max_abs"] for o in cmp["outputs"] if not o.get("intermediate")})
    assert results[0] == results[1]
    assert len(results[0]) >= 1


def test_safe_mode_refusals_say_what_would_run():
    import inspect

    from keras.src.layers.core import lambda_layer
    from keras.src.utils import torch_utils

    from converters.formats.keras.files import safe_mode_refusal

    # Keras' own refusal texts, taken from its source, so a change in Keras shows here
    torch_src = inspect.getsource(torch_utils.TorchModuleWrapper.from_config)
    lambda_src = inspect.getsource(lambda_layer.Lambda._raise_for_lambda_deserialization)
    assert "torch.nn.Module" in torch_src and "Lambda" in lambda_src
    torch_msg = ValueError("Requested the deserialization of a `torch.nn.Module` object via `torch.load()`. "
                           "... passing `safe_mode=False` to the loading function")
    assert safe_mode_refusal(torch_msg) == "a pickled torch module (a TorchModuleWrapper layer, unpickled with torch.load)"
    lambda_msg = ValueError("Requested the deserialization of a `Lambda` layer whose `function` is a Python lambda. "
                            "... passing `safe_mode=False` to the loading function")
    assert safe_mode_refusal(lambda_msg) == "Python code (a Lambda layer)"
    assert safe_mode_refusal(ValueError("Unknown layer: 'TFOpLambda'")) is None


def test_an_empty_keras_file_from_onnx2tf_is_recognised(tmp_path):
    import h5py

    from converters.routes.savedmodel_from_onnx import _has_model_config

    empty = tmp_path / "empty.h5"
    with h5py.File(empty, "w"):
        pass
    assert _has_model_config(str(empty)) is False
    full = tmp_path / "full.h5"
    with h5py.File(full, "w") as f:
        f.attrs["model_config"] = '{"class_name": "Functional"}'
    assert _has_model_config(str(full)) is True


def test_keras_normalization_constants_do_not_become_onnx_inputs(tmp_path):
    """EfficientNet's Normalization layer: Keras' export leaves its constants as graph inputs; the route
    converts with tf2onnx instead, so the ONNX takes the image alone and matches."""
    import keras
    import numpy as np
    import onnx

    inp = keras.Input((8, 8, 3), name="image")
    x = keras.layers.Normalization(mean=[0.5, 0.4, 0.3], variance=[0.2, 0.3, 0.4])(inp)
    x = keras.layers.Conv2D(4, 3)(x)
    out = keras.layers.GlobalAveragePooling2D()(x)
    m = keras.Model(inp, out)
    src = tmp_path / "norm.keras"
    m.save(src)
    dst = tmp_path / "norm.onnx"
    res, job = run_job("convert", {"src": str(src), "to": "onnx", "out": str(dst), "options": {}})
    job.cleanup()
    mp = onnx.load(str(dst))
    inits = {t.name for t in mp.graph.initializer}
    assert [i.name for i in mp.graph.input if i.name not in inits] == ["image"]
    cmp, job = run_job("compare", parity_after_conversion(str(src), str(dst), {}))
    job.cleanup()
    assert cmp.get("error") is None and cmp["passed"] is True, cmp.get("error")
    assert np.isfinite(cmp["outputs"][0]["max_abs"])


def test_a_recurrent_model_that_onnx2tf_cannot_save_as_h5_says_which_layer(tmp_path):
    """onnx2tf writes an empty .h5 when tf_keras cannot serialise its model; the error says what could not be
    saved and what to convert to instead."""
    import torch
    from torch import nn

    from converters.jobs import JobFailed, run_job

    class Tagger(nn.Module):
        def __init__(self):
            super().__init__()
            self.gru = nn.GRU(4, 8, batch_first=True)
            self.out = nn.Linear(8, 3)

        def forward(self, x):
            y, _ = self.gru(x)
            return self.out(y)

    torch.manual_seed(0)
    src = tmp_path / "gru.pt2"
    torch.export.save(torch.export.export(Tagger().eval(), (torch.randn(1, 5, 4),)), src)
    with pytest.raises(JobFailed) as info:
        run_job("convert", {"src": str(src), "to": "keras", "out": str(tmp_path / "gru.h5"), "options": {}})
    msg = info.value.message
    assert "recurrent layer's cell cannot be saved" in msg and "convert it to tf (SavedModel) or tflite" in msg
    assert "\n" not in msg and "\x1b" not in msg
    assert not (tmp_path / "gru.h5").exists()
