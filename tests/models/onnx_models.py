"""ONNX models for the reader tests: from torch (both exporters), from Keras via tf2onnx, and hand-built
ones for features exporters rarely emit (If subgraphs, missing shapes, external data)."""
from __future__ import annotations

import math
import os


def _facts_from_onnx(path):
    """Facts read by the onnx package itself, independently of Tensorbridge's reader."""
    import onnx

    m = onnx.load(path, load_external_data=False)
    inits = {t.name for t in m.graph.initializer}

    def vi(v):
        dims = [d.dim_value if d.HasField("dim_value") else (d.dim_param or None) for d in v.type.tensor_type.shape.dim]
        return {"name": v.name, "shape": dims, "dtype": str(onnx.helper.tensor_dtype_to_np_dtype(v.type.tensor_type.elem_type))}

    return {
        "node_count": len(m.graph.node),
        # ONNX does not tell parameters from buffers: float initializers are weights, integer ones
        # (shapes, indices, step counters) and batch-norm running statistics are not
        "param_count": sum(math.prod(t.dims) for t in m.graph.initializer
                           if t.data_type in (1, 10, 11, 16, 14, 15)
                           and t.name.rsplit(".", 1)[-1] not in ("running_mean", "running_var")),
        "inputs": [vi(v) for v in m.graph.input if v.name not in inits],
        "outputs": [vi(v) for v in m.graph.output],
        "node_names": [n.name for n in m.graph.node],
    }


def _cnn():
    import torch
    from torch import nn

    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(8, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(16, 10)).eval()


def cnn_dynamo(out):
    import torch

    m = _cnn()
    torch.onnx.export(m, (torch.randn(1, 3, 32, 32),), out, input_names=["image"], output_names=["logits"],
                      dynamo=True, external_data=False, optimize=False)
    f = _facts_from_onnx(out)
    f["torch_state_numel"] = sum(v.numel() for k, v in m.state_dict().items() if "num_batches" not in k)
    return f


def cnn_legacy(out):
    import torch

    m = _cnn()
    torch.onnx.export(m, (torch.randn(1, 3, 32, 32),), out, input_names=["image"], output_names=["logits"],
                      dynamo=False, dynamic_axes={"image": {0: "batch"}, "logits": {0: "batch"}})
    return _facts_from_onnx(out)


def encoder_external(out):
    """A transformer encoder exported with its weights in an external data file."""
    import torch
    from torch import nn

    torch.manual_seed(0)

    class Enc(nn.Module):
        def __init__(self):
            super().__init__()
            self.embed = nn.Linear(16, 32)
            layer = nn.TransformerEncoderLayer(32, 4, 64, dropout=0.0, batch_first=True)
            self.encoder = nn.TransformerEncoder(layer, 2, enable_nested_tensor=False)
            self.head = nn.Linear(32, 5)

        def forward(self, x):
            return self.head(self.encoder(self.embed(x)))

    m = Enc().eval()
    torch.onnx.export(m, (torch.randn(1, 8, 16),), out, input_names=["tokens"], output_names=["out"],
                      dynamo=True, external_data=True, optimize=True)
    f = _facts_from_onnx(out)
    f["data_files"] = sorted(p for p in os.listdir(os.path.dirname(out)) if p.startswith(os.path.basename(out) + "."))
    return f


def if_subgraph(out):
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    then_g = helper.make_graph([helper.make_node("Relu", ["x"], ["y_then"], name="then/relu")], "then_branch", [],
                               [helper.make_tensor_value_info("y_then", TensorProto.FLOAT, [2, 3])])
    else_g = helper.make_graph([helper.make_node("Neg", ["x"], ["y_else"], name="else/neg")], "else_branch", [],
                               [helper.make_tensor_value_info("y_else", TensorProto.FLOAT, [2, 3])])
    nodes = [
        helper.make_node("ReduceSum", ["x"], ["s"], name="cond/sum", keepdims=0),
        helper.make_node("Greater", ["s", "zero"], ["c"], name="cond/greater"),
        helper.make_node("If", ["c"], ["y"], name="branch/if", then_branch=then_g, else_branch=else_g),
        helper.make_node("MatMul", ["y", "w"], ["z"], name="proj/matmul"),
    ]
    g = helper.make_graph(nodes, "if_model", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3])],
                          [helper.make_tensor_value_info("z", TensorProto.FLOAT, [None, None])],
                          initializer=[numpy_helper.from_array(np.zeros((), np.float32), "zero"),
                                       numpy_helper.from_array(np.ones((3, 4), np.float32), "w")])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    onnx.checker.check_model(m)
    onnx.save(m, out)
    f = _facts_from_onnx(out)
    f["z_shape"] = [2, 4]
    return f


def keras_tf2onnx(out):
    """A Keras 3 CNN converted by tf2onnx: node names like 'model/conv/BiasAdd' give the scopes."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras
    import tensorflow as tf
    import tf2onnx

    keras.utils.set_random_seed(0)
    inp = keras.Input((16, 16, 3), name="image", batch_size=1)
    x = keras.layers.Conv2D(4, 3, padding="same", name="conv")(inp)
    x = keras.layers.BatchNormalization(name="bn")(x)
    x = keras.layers.ReLU(name="relu")(x)
    x = keras.layers.GlobalAveragePooling2D(name="gap")(x)
    y = keras.layers.Dense(5, name="fc")(x)
    model = keras.Model(inp, y, name="kcnn")
    spec = (tf.TensorSpec((1, 16, 16, 3), tf.float32, name="image"),)
    tf2onnx.convert.from_keras(model, input_signature=spec, opset=17, output_path=out)
    f = _facts_from_onnx(out)
    f["keras_params"] = model.count_params()
    return f


MODELS = {
    "cnn_dynamo.onnx": cnn_dynamo,
    "cnn_legacy.onnx": cnn_legacy,
    "encoder_external.onnx": encoder_external,
    "if_subgraph.onnx": if_subgraph,
    "keras_tf2onnx.onnx": keras_tf2onnx,
}
