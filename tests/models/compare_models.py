"""Tiny real models for the comparison tests: one small CNN in several formats, its Keras twin, and
perturbed ONNX copies.

The torch CNN (input ``x`` 1×3×16×16 NCHW, dynamic batch) returns ``logits`` (N×10) and ``features``
(N×16×8×8). ``keras_twin.keras`` is the same network in Keras (NHWC input and feature map) holding the
torch weights, so comparing the two exercises layout handling on a real pair.
"""
from __future__ import annotations

import os

_SEED = 0


_CLASSES: dict = {}


def __getattr__(name):
    # the torch module class is made on first use (importing this module must not import torch), and
    # stays one object, so a pickled instance finds it again as tests.models.compare_models.SmallCNN
    if name != "SmallCNN":
        raise AttributeError(name)
    if name not in _CLASSES:
        import torch
        from torch import nn

        class SmallCNN(nn.Module):
            def __init__(self):
                super().__init__()
                self.conv1 = nn.Conv2d(3, 8, 3, padding=1)
                self.bn1 = nn.BatchNorm2d(8)
                self.pool = nn.MaxPool2d(2)
                self.conv2 = nn.Conv2d(8, 16, 3, padding=1)
                self.head = nn.Linear(16, 10)

            def forward(self, x):
                x = self.pool(torch.relu(self.bn1(self.conv1(x))))
                features = torch.relu(self.conv2(x))
                logits = self.head(features.mean(dim=(2, 3)))
                return logits, features

        SmallCNN.__module__ = __name__
        SmallCNN.__qualname__ = "SmallCNN"
        _CLASSES[name] = SmallCNN
    return _CLASSES[name]


def _torch_cnn():
    import torch

    SmallCNN = __getattr__("SmallCNN")
    torch.manual_seed(_SEED)
    m = SmallCNN()
    with torch.no_grad():  # non-trivial BN statistics and biases, so a wrong mapping shows up
        m.bn1.running_mean.uniform_(-0.5, 0.5)
        m.bn1.running_var.uniform_(0.5, 1.5)
        m.bn1.weight.uniform_(0.5, 1.5)
        m.bn1.bias.uniform_(-0.2, 0.2)
    return m.eval()


def _example():
    import torch
    torch.manual_seed(1)
    return torch.rand(2, 3, 16, 16)


def _facts_io():
    return {"inputs": [{"name": "x", "shape": ["batch", 3, 16, 16], "dtype": "float32"}],
            "outputs": [{"name": "logits", "shape": ["batch", 10]},
                        {"name": "features", "shape": ["batch", 16, 8, 8]}]}


def build_pt2(out):
    import torch
    m = _torch_cnn()
    batch = torch.export.Dim("batch", min=1, max=1024)
    ep = torch.export.export(m, (_example(),), dynamic_shapes={"x": {0: batch}})
    torch.export.save(ep, out)
    return _facts_io()


def build_torchscript(out):
    import torch
    m = _torch_cnn()
    ts = torch.jit.trace(m, (_example(),))
    ts.save(out)
    return _facts_io()


def build_state_dict(out):
    # weights only: detected as a torch pickle, but there is no architecture to run
    import torch
    torch.save(_torch_cnn().state_dict(), out)
    return {}


def build_pickled(out):
    # a whole pickled module: runnable only with trust (unpickling runs code)
    import torch
    torch.save(_torch_cnn(), out)
    return _facts_io()


def build_tf_keras_h5(out):
    # a Keras 2 (tf_keras) HDF5 model, as onnx2tf writes them
    import numpy as np
    import tf_keras
    inp = tf_keras.Input((6,), name="v")
    y = tf_keras.layers.Dense(3, name="dense")(inp)
    m = tf_keras.Model(inp, y)
    m.layers[-1].set_weights([np.arange(18, dtype=np.float32).reshape(6, 3) / 10, np.ones(3, np.float32)])
    m.save(out)
    return {"inputs": [{"name": "v", "shape": [None, 6]}], "outputs": [{"name": "dense", "shape": [None, 3]}]}


def _keras_single(out):
    import keras
    import numpy as np
    inp = keras.Input((4,), name="v")
    m = keras.Model(inp, keras.layers.Dense(2, name="out")(inp))
    m(np.zeros((1, 4), np.float32))
    m.save(out)
    return {"outputs": [{"name": "out", "shape": [None, 2]}]}


def build_onnx(out):
    import torch
    m = _torch_cnn()
    batch = torch.export.Dim("batch", min=1, max=1024)
    torch.onnx.export(m, (_example(),), out, dynamo=True, external_data=False,
                      input_names=["x"], output_names=["logits", "features"],
                      dynamic_shapes={"x": {0: batch}})
    return _facts_io()


def _perturbed(out, scale_fn, describe):
    import numpy as np
    import onnx
    from onnx import numpy_helper

    src = os.path.join(os.path.dirname(out), "cnn.onnx")
    if not os.path.exists(src):
        build_onnx(src)
    model = onnx.load(src)
    # the head's bias: changes logits[:, 3] only, so the mismatch has one known location
    inits = {i.name: i for i in model.graph.initializer}
    gemm = next(n for n in model.graph.node if n.op_type == "Gemm")
    bias = inits[gemm.input[2]]
    arr = numpy_helper.to_array(bias).copy()
    arr = scale_fn(arr)
    bias.CopyFrom(numpy_helper.from_array(arr.astype(np.float32), bias.name))
    onnx.save(model, out)
    return dict(_facts_io(), **describe)


def build_perturbed(out):
    def f(a):
        a[3] += 0.5
        return a
    return _perturbed(out, f, {"perturbed_output": "logits", "perturbed_index": 3, "delta": 0.5})


def build_conv1_changed(out):
    # the first convolution changed: every tensor after it diverges (first divergence: its ReLU)
    import numpy as np
    import onnx
    from onnx import numpy_helper

    model = onnx.load(os.path.join(os.path.dirname(out), "cnn.onnx"))
    w = next(i for i in model.graph.initializer if i.name == "conv1.weight")
    a = numpy_helper.to_array(w).copy()
    a[0] += 0.5
    w.CopyFrom(numpy_helper.from_array(a.astype(np.float32), w.name))
    onnx.save(model, out)
    return _facts_io()


def build_pixel(out):
    # features[:, 5, 2, 6] + 1.0 on the output edge only (logits unchanged): one wrong pixel of a feature map
    import numpy as np
    import onnx
    from onnx import helper, numpy_helper

    src = os.path.join(os.path.dirname(out), "cnn.onnx")
    if not os.path.exists(src):
        build_onnx(src)
    model = onnx.load(src)
    g = model.graph
    for n in g.node:
        n.output[:] = ["features_raw" if o == "features" else o for o in n.output]
        n.input[:] = ["features_raw" if i == "features" else i for i in n.input]
    bump = np.zeros((1, 16, 8, 8), np.float32)
    bump[0, 5, 2, 6] = 1.0
    g.initializer.append(numpy_helper.from_array(bump, "pixel_bump"))
    g.node.append(helper.make_node("Add", ["features_raw", "pixel_bump"], ["features"], name="bump_pixel"))
    onnx.save(model, out)
    return dict(_facts_io(), perturbed_output="features", perturbed_index=[0, 5, 2, 6], delta=1.0)


def build_nudged(out):
    # a borderline copy: logits[:, 3] off by 2e-3 — outside fp32 tolerance, inside fp16's
    def f(a):
        a[3] += 2e-3
        return a
    return _perturbed(out, f, {"perturbed_output": "logits", "perturbed_index": 3, "delta": 2e-3})


def _keras_twin():
    import keras
    import numpy as np

    t = _torch_cnn()
    sd = {k: v.detach().numpy() for k, v in t.state_dict().items()}
    inp = keras.Input((16, 16, 3), name="x")
    h = keras.layers.Conv2D(8, 3, padding="same", name="conv1")(inp)
    h = keras.layers.BatchNormalization(epsilon=1e-5, name="bn1")(h)
    h = keras.layers.ReLU(name="relu1")(h)
    h = keras.layers.MaxPooling2D(2, name="pool")(h)
    feats = keras.layers.Conv2D(16, 3, padding="same", activation="relu", name="features")(h)
    g = keras.layers.GlobalAveragePooling2D(name="gap")(feats)
    logits = keras.layers.Dense(10, name="logits")(g)
    model = keras.Model(inp, {"logits": logits, "features": feats}, name="small_cnn")
    model.get_layer("conv1").set_weights([sd["conv1.weight"].transpose(2, 3, 1, 0), sd["conv1.bias"]])
    model.get_layer("bn1").set_weights([sd["bn1.weight"], sd["bn1.bias"], sd["bn1.running_mean"],
                                        sd["bn1.running_var"]])
    model.get_layer("features").set_weights([sd["conv2.weight"].transpose(2, 3, 1, 0), sd["conv2.bias"]])
    model.get_layer("logits").set_weights([sd["head.weight"].T, sd["head.bias"]])
    model(np.zeros((1, 16, 16, 3), np.float32))  # exporters refuse a model that was never called
    return model


_KERAS_FACTS = {"inputs": [{"name": "x", "shape": [None, 16, 16, 3], "dtype": "float32"}],
                "outputs": [{"name": "logits", "shape": [None, 10]},
                            {"name": "features", "shape": [None, 8, 8, 16]}]}


def build_keras(out):
    _keras_twin().save(out)
    return dict(_KERAS_FACTS)


def build_keras_onnx(out):
    m = _keras_twin()
    m.export(out, format="onnx", verbose=False)
    return dict(_KERAS_FACTS)


def build_savedmodel(out):
    m = _keras_twin()
    m.export(out, format="tf_saved_model", verbose=False)
    return dict(_KERAS_FACTS)


def build_tflite(out):
    import tensorflow as tf
    sm = os.path.join(os.path.dirname(out), "keras_twin_savedmodel")
    if not os.path.exists(sm):
        build_savedmodel(sm)
    conv = tf.lite.TFLiteConverter.from_saved_model(sm)
    with open(out, "wb") as f:
        f.write(conv.convert())
    return dict(_KERAS_FACTS)


def build_multi_io(out):
    # two inputs with an int64 one: exercises per-dtype generation and name/position matching
    import torch
    from torch import nn

    class TwoIn(nn.Module):
        def __init__(self):
            super().__init__()
            self.emb = nn.Embedding(10, 4)

        def forward(self, tokens, scale):
            return (self.emb(tokens) * scale).sum(dim=1)

    torch.manual_seed(0)
    m = TwoIn().eval()
    torch.onnx.export(m, (torch.tensor([[1, 2, 3]]), torch.ones(1, 1, 4)), out, dynamo=True,
                      external_data=False, input_names=["tokens", "scale"], output_names=["y"])
    return {"inputs": [{"name": "tokens", "shape": [1, 3], "dtype": "int64"},
                       {"name": "scale", "shape": [1, 1, 4], "dtype": "float32"}],
            "outputs": [{"name": "y", "shape": [1, 4]}]}


MODELS = {
    "cnn.pt2": build_pt2,
    "cnn_ts.pt": build_torchscript,
    "cnn.onnx": build_onnx,
    "cnn_state_dict.pt": build_state_dict,
    "cnn_pickled.pt": build_pickled,
    "tfk_dense.h5": build_tf_keras_h5,
    "keras_single.keras": _keras_single,
    "cnn_perturbed.onnx": build_perturbed,
    "cnn_nudged.onnx": build_nudged,
    "cnn_pixel.onnx": build_pixel,
    "cnn_conv1_changed.onnx": build_conv1_changed,
    "multi_io.onnx": build_multi_io,
    "keras_twin.keras": build_keras,
    "keras_twin.onnx": build_keras_onnx,
    "keras_twin_savedmodel": build_savedmodel,
    "keras_twin.tflite": build_tflite,
}
