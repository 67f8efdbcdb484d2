"""Keras -> TFLite with ``tf.lite.TFLiteConverter.from_keras_model`` (fp16 weights with ``fp16``)."""
from __future__ import annotations

from ._tf import keras_input_specs, load_keras, pair_io, tflite_convert, tflite_io
from .common import tool_version, write_sidecar
from .options import ConvertOptions


def run(src: str, out: str, opts: ConvertOptions, *, family: str = "keras", log=print, **_) -> dict:
    import tensorflow as tf

    model, flavour = load_keras(src, family, opts.trust)
    specs = keras_input_specs(model, opts)
    if opts.input_shapes or opts.dynamic_batch:
        fn = tf.function(lambda *xs: model(list(xs) if len(xs) > 1 else xs[0]), input_signature=specs)
        conv = tf.lite.TFLiteConverter.from_concrete_functions([fn.get_concrete_function()], model)
    else:
        conv = tf.lite.TFLiteConverter.from_keras_model(model)
    data = tflite_convert(conv, opts, src)
    with open(out, "wb") as f:
        f.write(data)
    io = tflite_io(out)
    ins = pair_io([{"name": s.name, "shape": list(s.shape)} for s in specs], io["inputs"])
    outs = pair_io([{"name": t.name.split(":")[0], "shape": list(t.shape)} for t in model.outputs], io["outputs"])
    write_sidecar(out, hop="tflite_from_keras", tool=tool_version("tensorflow-cpu") if _has("tensorflow-cpu")
                  else tool_version("tensorflow"), source=src, source_format=family, target_format="tflite",
                  inputs=ins, outputs=outs, fp16=opts.fp16,
                  notes=["TFLite fuses activations and renames tensors; only inputs and outputs are mapped"])
    return {"output": out, "extra": []}


def _has(dist: str) -> bool:
    try:
        from importlib.metadata import version
        version(dist)
        return True
    except Exception:
        return False
