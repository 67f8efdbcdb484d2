"""Keras -> TFLite with ``tf.lite.TFLiteConverter.from_keras_model`` (fp16 weights with ``fp16``)."""
from __future__ import annotations

from ..errors import TensorbridgeError
from ._tf import keras_input_specs, load_keras, pair_io, tflite_convert, tflite_io
from ..tbmap import write_map
from .common import tool_version
from .options import ConvertOptions


def run(src: str, out: str, opts: ConvertOptions, *, family: str = "keras", log=print, **_) -> dict:
    import tensorflow as tf

    model, flavour = load_keras(src, family, opts.trust)
    specs = keras_input_specs(model, opts)
    notes = []

    def from_specs(sp):
        fn = tf.function(lambda *xs: model(list(xs) if len(xs) > 1 else xs[0]), input_signature=sp)
        # No trackable object: the variables are frozen into constants (no READ_VARIABLE at run time).
        return tf.lite.TFLiteConverter.from_concrete_functions([fn.get_concrete_function()])

    conv = from_specs(specs) if (opts.input_shapes or opts.dynamic_batch) else \
        tf.lite.TFLiteConverter.from_keras_model(model)
    try:
        data = tflite_convert(conv, opts, src)
    except TensorbridgeError as exc:
        fixed = [tf.TensorSpec([1 if (i == 0 and d is None) else d for i, d in enumerate(s.shape)], s.dtype,
                               name=s.name) for s in specs]
        if "TensorList" not in exc.message or opts.dynamic_batch or fixed == specs:
            raise
        # Recurrent layers run as a TensorList loop that TFLite lowers to builtin ops only for a fixed
        # batch size: retry with batch 1.
        log("retrying the TFLite conversion with a fixed batch of 1 (recurrent layers need it)")
        data = tflite_convert(from_specs(fixed), opts, src)
        specs = fixed
        notes.append("converted with a fixed batch of 1: TFLite lowers the recurrent loop only for a "
                     "static batch size")
    with open(out, "wb") as f:
        f.write(data)
    io = tflite_io(out)
    ins = pair_io([{"name": s.name, "shape": list(s.shape)} for s in specs], io["inputs"])
    outs = pair_io([{"name": t.name.split(":")[0], "shape": list(t.shape)} for t in model.outputs], io["outputs"])
    write_map(out, hop="tflite_from_keras", tool=tool_version("tensorflow-cpu") if _has("tensorflow-cpu")
                  else tool_version("tensorflow"), source=src, source_format=family, target_format="tflite",
                  inputs=ins, outputs=outs, fp16=opts.fp16,
                  notes=notes + ["TFLite fuses activations and renames tensors; only inputs and outputs "
                                 "are mapped"])
    return {"output": out, "extra": []}


def _has(dist: str) -> bool:
    try:
        from importlib.metadata import version
        version(dist)
        return True
    except Exception:
        return False
