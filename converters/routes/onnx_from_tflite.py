"""TFLite -> ONNX with tf2onnx's TFLite reader (``tf2onnx.convert.from_tflite``).

Inputs and outputs get the TFLite tensor names without the ``serving_default_`` prefix and ``:0``
suffix; layouts are kept (a TFLite NHWC model gives an NHWC ONNX model).
"""
from __future__ import annotations

from ..errors import UnsupportedOp, first_line
from ._tf import onnx_io, pair_io, tflite_io
from ..tbmap import write_map
from .common import tool_version
from .onnx_from_keras import rename_io
from .options import ConvertOptions


def _clean(name: str) -> str:
    n = name.split(":")[0]
    return n[len("serving_default_"):] if n.startswith("serving_default_") else n


def run(src: str, out: str, opts: ConvertOptions, *, log=print, **_) -> dict:
    import onnx
    from tf2onnx.convert import from_tflite

    from keras.src.export.tf2onnx_lib import patch_tf2onnx
    patch_tf2onnx()

    tio = tflite_io(src)
    try:
        mp, _ = from_tflite(src, opset=opts.opset)  # in memory: renamed and checked, then written once
    except Exception as exc:
        text = first_line(exc, 300) or type(exc).__name__
        raise UnsupportedOp(f"{src}: tf2onnx could not convert the TFLite model: {text}") from exc
    # Friendlier I/O names unless the user chose some.
    if not opts.input_names and not opts.output_names:
        from .options import ConvertOptions as CO
        io0 = onnx_io(mp)
        cleaned_in = [_clean(i["name"]) for i in io0["inputs"]]
        cleaned_out = [_clean(o["name"]) if not o["name"].startswith("StatefulPartitionedCall")
                       else f"output_{k}" for k, o in enumerate(io0["outputs"])]
        if len(set(cleaned_in + cleaned_out)) == len(cleaned_in + cleaned_out):
            rename_io(mp, None, CO(input_names=cleaned_in, output_names=cleaned_out))
    else:
        rename_io(mp, None, opts)
    io = onnx_io(mp)
    unsupported = sorted({n.op_type for n in mp.graph.node if n.domain not in ("", "ai.onnx", "ai.onnx.ml")})
    if unsupported:
        raise UnsupportedOp(f"{src}: TFLite op(s) {', '.join(unsupported)} have no ONNX equivalent in tf2onnx")
    onnx.save(mp, out)
    write_map(out, hop="onnx_from_tflite", tool=tool_version("tf2onnx"), source=src, source_format="tflite",
                  target_format="onnx", inputs=pair_io(tio["inputs"], io["inputs"]),
                  outputs=pair_io(tio["outputs"], io["outputs"]),
                  notes=["only inputs and outputs are mapped"])
    return {"output": out, "extra": []}
