"""Keras -> ONNX with Keras' own ``export(format="onnx")`` (it runs tf2onnx on the TF backend).

Keras 3 ``.keras`` / ``.h5`` files; Keras 2 (tf_keras) ``.h5`` files go through ``tf2onnx.from_keras``.
Inputs stay NHWC (as in Keras); convolution intermediates become NCHW inside the ONNX graph, which the
sidecar records per layer. Correspondence: a layer maps to the last ONNX node named
``<model>_1/<layer>_<k>/…`` (one trailing ``_N`` stripped); bias-less Conv+BN pairs that tf2onnx fuses
into a generated ``Conv__N`` node have no tensor of their own.
"""
from __future__ import annotations

import contextlib

from ..errors import UnsupportedOp, first_line
from ._tf import keras_input_specs, keras_layer_map, load_keras, onnx_io
from ..tbmap import write_map
from .common import tool_version
from .options import ConvertOptions


def run(src: str, out: str, opts: ConvertOptions, *, family: str = "keras", log=print, **_) -> dict:
    model, flavour = load_keras(src, family, opts.trust)
    specs = keras_input_specs(model, opts)
    log(f"exporting {flavour} model to ONNX (opset {opts.opset or 'default'})")
    with _graph_convolutions():
        return _run(src, out, opts, model, flavour, specs, family, log)


@contextlib.contextmanager
def _graph_convolutions():
    """Keras 3 on TensorFlow runs a grouped convolution (ConvNeXt's depthwise 7x7) inside a function
    compiled with XLA, because TF's CPU kernel lacks it; tf2onnx cannot look into that function and
    leaves a ``StatefulPartitionedCall`` node that no ONNX runtime has. Traced for export, the plain
    ``tf.nn.convolution`` is what the graph needs (ONNX's Conv has groups): use it while exporting."""
    try:
        import tensorflow as tf
        from keras.src.backend.tensorflow import nn as knn
    except Exception:  # another Keras layout: nothing to adjust
        yield
        return
    original = knn.conv

    def conv(inputs, kernel, strides=1, padding="valid", data_format=None, dilation_rate=1):
        from keras.src import backend
        fmt = knn._convert_data_format(backend.standardize_data_format(data_format), len(inputs.shape))
        return tf.nn.convolution(inputs, kernel, strides, padding.upper(), data_format=fmt, dilations=dilation_rate)

    knn.conv = conv
    try:
        yield
    finally:
        knn.conv = original


def _run(src, out, opts, model, flavour, specs, family, log) -> dict:
    import onnx

    try:
        if flavour == "keras3":
            import keras
            sig = [keras.InputSpec(shape=tuple(s.shape), dtype=s.dtype.name, name=s.name) for s in specs]
            model.export(out, format="onnx", input_signature=[sig] if len(sig) > 1 else sig,
                         opset_version=opts.opset, verbose=False)
        else:
            _tf2onnx(model, specs, opts, out)
    except Exception as exc:
        raise _export_failed(src, exc) from exc
    mp = onnx.load(out)
    inits = {t.name for t in mp.graph.initializer}
    graph_inputs = [i.name for i in mp.graph.input if i.name not in inits]
    if flavour == "keras3" and len(graph_inputs) > len(specs):
        # Keras' export can leave constants of a preprocessing layer as graph inputs (EfficientNet's
        # Normalization: .../Sub/y:0, .../Sqrt/x:0), which no caller can feed; tf2onnx on the model itself
        # folds them
        log(f"Keras export left {len(graph_inputs) - len(specs)} constant(s) as inputs "
            f"({', '.join(graph_inputs[len(specs):][:3])}); converting with tf2onnx.from_keras instead")
        try:
            _tf2onnx(model, specs, opts, out)
        except Exception as exc:
            raise _export_failed(src, exc) from exc
        mp = onnx.load(out)
    if _tf_leftovers(mp, log):
        onnx.save(mp, out)
    _rename(mp, out, opts)
    io = onnx_io(mp)
    ins = [{"source": s.name, "target": t["name"], "layout": None} for s, t in zip(specs, io["inputs"])]
    outs = [{"source": getattr(t, "name", f"output_{i}").split(":")[0], "target": o["name"], "layout": None}
            for i, (t, o) in enumerate(zip(model.outputs, io["outputs"]))]
    tensors = keras_layer_map(model, mp)
    write_map(out, hop="onnx_from_keras", tool=f"{tool_version('keras')}, {tool_version('tf2onnx')}",
                  source=src, source_format=family, target_format="onnx", inputs=ins, outputs=outs,
                  tensors=tensors,
                  notes=["layers whose ops tf2onnx fused or renamed (e.g. Conv+BatchNorm without bias "
                         "into Conv__N) have no entry"])
    return {"output": out, "extra": []}


def _tf_leftovers(mp, log) -> int:
    """TF ops tf2onnx passes through unconverted although ONNX can say them: ``Erfc`` (TF's exact GELU,
    ``0.5 * x * erfc(-x / sqrt(2))``) becomes ``1 - Erf``. Returns how many nodes were rewritten."""
    import numpy as np
    from onnx import helper, numpy_helper

    g = mp.graph
    found = [n for n in g.node if n.op_type == "Erfc" and n.domain in ("", "ai.onnx")]
    if not found:
        return 0
    one = "tb_one_f32"
    if one not in {t.name for t in g.initializer}:
        g.initializer.append(numpy_helper.from_array(np.array(1.0, np.float32), one))
    for n in found:
        pos = list(g.node).index(n)
        erf_out = n.output[0] + "__erf"
        new = [helper.make_node("Erf", [n.input[0]], [erf_out], name=n.name + "/Erf"),
               helper.make_node("Sub", [one, erf_out], list(n.output), name=n.name)]
        del g.node[pos]
        for k, m in enumerate(new):
            g.node.insert(pos + k, m)
    log(f"rewrote {len(found)} TF Erfc node(s) that tf2onnx left unconverted as 1 - Erf")
    return len(found)


def _tf2onnx(model, specs, opts: ConvertOptions, out: str) -> None:
    import tf2onnx

    tf2onnx.convert.from_keras(model, input_signature=specs, opset=opts.opset, output_path=out)


def _export_failed(src: str, exc: BaseException) -> UnsupportedOp:
    text = first_line(exc, 300) or type(exc).__name__
    return UnsupportedOp(f"{src}: export to ONNX failed: {type(exc).__name__}: {text}")


def _rename(mp, out: str | None, opts: ConvertOptions) -> None:
    """Apply user input/output names to an ONNX file written by a converter."""
    if not opts.input_names and not opts.output_names:
        return
    import onnx

    io = onnx_io(mp)
    ren = {}
    for old, new in zip([i["name"] for i in io["inputs"]], opts.input_names or []):
        ren[old] = new
    for old, new in zip([o["name"] for o in io["outputs"]], opts.output_names or []):
        ren[old] = new
    if not ren:
        return
    g = mp.graph
    for vi in list(g.input) + list(g.output):
        if vi.name in ren:
            vi.name = ren[vi.name]
    for n in g.node:
        for i, x in enumerate(n.input):
            if x in ren:
                n.input[i] = ren[x]
        for i, x in enumerate(n.output):
            if x in ren:
                n.output[i] = ren[x]
    if out:  # None: rename in memory only, the caller saves
        onnx.save(mp, out)


rename_io = _rename
