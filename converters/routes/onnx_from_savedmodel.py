"""TensorFlow SavedModel -> ONNX with tf2onnx (in process; the same steps as ``python -m tf2onnx.convert
--saved-model``). The serving signature's inputs and outputs keep their signature names. tf2onnx names
ONNX nodes after the TF ops, so TF tensors that survive keep their names: the sidecar maps those."""
from __future__ import annotations

import os

from ..errors import UnsupportedOp, first_line
from ._tf import onnx_io
from ..tbmap import write_map
from .common import tool_version
from .onnx_from_keras import rename_io
from .options import ConvertOptions


def run(src: str, out: str, opts: ConvertOptions, *, log=print, **_) -> dict:
    import onnx
    from tf2onnx import tf_loader
    from tf2onnx.convert import _convert_common

    from keras.src.export.tf2onnx_lib import patch_tf2onnx
    patch_tf2onnx()  # tf2onnx 1.17 still uses numpy aliases removed in numpy 2

    folder = os.path.dirname(src) if os.path.isfile(src) else src
    from ..safety.savedmodel import check_savedmodel
    check_savedmodel(folder, trust=opts.trust)  # tf2onnx loads it: its initializers would run
    try:
        graph_def, inputs, outputs, tables, renames = tf_loader.from_saved_model(
            folder, None, None, None, None, None, False,
            return_initialized_tables=True, return_tensors_to_rename=True)
        shape_override = None
        if opts.input_shapes:
            shape_override = {}
            for idx, name in enumerate(inputs):
                s = opts.shape_for(name.split(":")[0], idx, len(inputs))
                if s:
                    shape_override[name] = s
        _convert_common(graph_def, name=folder, opset=opts.opset, input_names=inputs, output_names=outputs,
                        tensors_to_rename=renames, initialized_tables=tables, shape_override=shape_override,
                        output_path=out)
    except Exception as exc:
        text = first_line(exc, 300) or type(exc).__name__
        raise UnsupportedOp(f"{src}: tf2onnx could not convert the SavedModel: {text}") from exc
    mp = onnx.load(out)
    rename_io(mp, out, opts)
    mp = onnx.load(out)
    io = onnx_io(mp)
    ins = [{"source": renames.get(i, i), "source_tensor": i, "target": t["name"], "layout": None}
           for i, t in zip(inputs, io["inputs"])]
    outs = [{"source": renames.get(o, o), "source_tensor": o, "target": t["name"], "layout": None}
            for o, t in zip(outputs, io["outputs"])]
    produced = {x for n in mp.graph.node for x in n.output}
    tf_ops = {n.name for n in graph_def.node}
    graph_outputs = {o["name"] for o in io["outputs"]}
    tensors = [{"source": name, "target": name, "layout": None} for name in sorted(produced)
               if name.split(":")[0] in tf_ops and name not in graph_outputs]
    write_map(out, hop="onnx_from_savedmodel", tool=tool_version("tf2onnx"), source=folder,
                  source_format="savedmodel", target_format="onnx", inputs=ins, outputs=outs, tensors=tensors,
                  notes=["tensors are matched by name (tf2onnx keeps TF op names); layout changes inside "
                         "the graph are not recorded"])
    return {"output": out, "extra": []}
