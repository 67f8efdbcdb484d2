"""Keras -> TensorFlow SavedModel with Keras ``export()`` (an inference-only ``serve`` signature)."""
from __future__ import annotations

from ..errors import UnsupportedOp, first_line
from ._tf import keras_input_specs, load_keras, pair_io, savedmodel_io
from ..tbmap import write_map
from .common import tool_version
from .options import ConvertOptions


def run(src: str, out: str, opts: ConvertOptions, *, family: str = "keras", log=print, **_) -> dict:
    import tensorflow as tf

    model, flavour = load_keras(src, family, opts.trust)
    specs = keras_input_specs(model, opts)
    try:
        if flavour == "keras3":
            model.export(out, format="tf_saved_model", input_signature=specs, verbose=False)
        else:
            fn = tf.function(lambda *xs: model(list(xs) if len(xs) > 1 else xs[0]), input_signature=specs)
            tf.saved_model.save(model, out, signatures=fn)
    except Exception as exc:
        text = first_line(exc, 300) or type(exc).__name__
        raise UnsupportedOp(f"{src}: Keras export to SavedModel failed: {text}") from exc
    sm = savedmodel_io(out)
    ins = pair_io([{"name": s.name, "shape": list(s.shape)} for s in specs], sm["inputs"])
    outs = pair_io([{"name": t.name.split(":")[0], "shape": list(t.shape)} for t in model.outputs], sm["outputs"])
    tensors = [{"source": layer.name, "source_kind": "layer", "target": layer.name, "layout": None}
               for layer in model.layers if type(layer).__name__ != "InputLayer"]
    write_map(out, hop="savedmodel_from_keras", tool=tool_version("keras"), source=src,
                  source_format=family, target_format="savedmodel", inputs=ins, outputs=outs,
                  tensors=tensors, notes=["the SavedModel's op names start with the Keras layer names"])
    return {"output": out, "extra": []}
