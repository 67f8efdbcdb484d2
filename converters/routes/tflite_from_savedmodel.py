"""TensorFlow SavedModel -> TFLite with ``tf.lite.TFLiteConverter.from_saved_model``."""
from __future__ import annotations

from ._tf import pair_io, savedmodel_io, tflite_convert, tflite_io
from ..tbmap import write_map
from .common import tool_version
from .options import ConvertOptions


def run(src: str, out: str, opts: ConvertOptions, *, log=print, **_) -> dict:
    import os

    import tensorflow as tf

    from ..safety.savedmodel import check_savedmodel

    folder = os.path.dirname(src) if os.path.isfile(src) else src
    check_savedmodel(folder, trust=opts.trust)  # the converter loads it: its initializers would run
    conv = tf.lite.TFLiteConverter.from_saved_model(folder)
    data = tflite_convert(conv, opts, src)
    with open(out, "wb") as f:
        f.write(data)
    io = tflite_io(out)
    sm = savedmodel_io(folder, trust=True)  # checked above
    write_map(out, hop="tflite_from_savedmodel", tool=tool_version("tensorflow-cpu"), source=folder,
                  source_format="savedmodel", target_format="tflite", inputs=pair_io(sm["inputs"], io["inputs"]),
                  outputs=pair_io(sm["outputs"], io["outputs"]), fp16=opts.fp16,
                  notes=["TFLite fuses activations and renames tensors; only inputs and outputs are mapped"])
    return {"output": out, "extra": []}
