"""Tiny real models for the conversion tests, built by torch and Keras themselves.

Every builder writes the model and ``<file>.io.npz`` beside it: ``x`` (a random input in the source's
own layout) and ``y`` (the source framework's output for it), so a test can compare a converted model
without importing the source framework again. BatchNorm statistics and biases are randomised: with
zero biases, wrong tensor matches and dropped ops can look right.
"""
from __future__ import annotations

import os

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def _randomise_bn(model) -> None:
    import torch

    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 1.5)
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.5, 0.5)


def _torch_models():
    import torch.nn as nn

    class CNN(nn.Module):
        """Conv-BN-ReLU, Conv-BN-ReLU-MaxPool, global mean, Linear. (N, 3, 16, 16) -> (N, 5)."""

        def __init__(self):
            super().__init__()
            self.conv1 = nn.Conv2d(3, 8, 3, padding=1)
            self.bn1 = nn.BatchNorm2d(8)
            self.conv2 = nn.Conv2d(8, 12, 3, padding=1)
            self.bn2 = nn.BatchNorm2d(12)
            self.relu = nn.ReLU()
            self.pool = nn.MaxPool2d(2)
            self.fc = nn.Linear(12, 5)

        def forward(self, x):
            x = self.relu(self.bn1(self.conv1(x)))
            x = self.pool(self.relu(self.bn2(self.conv2(x))))
            return self.fc(x.mean((2, 3)))

    class Encoder(nn.Module):
        """One transformer encoder layer and a head. (N, 6, 16) -> (N, 6, 4)."""

        def __init__(self):
            super().__init__()
            self.embed = nn.Linear(16, 16)
            self.layer = nn.TransformerEncoderLayer(16, nhead=2, dim_feedforward=32, dropout=0.0,
                                                    batch_first=True)
            self.head = nn.Linear(16, 4)

        def forward(self, x):
            return self.head(self.layer(self.embed(x)))

    class GRUNet(nn.Module):
        """GRU over (N, 5, 6) and a head on the last step -> (N, 3)."""

        def __init__(self):
            super().__init__()
            self.gru = nn.GRU(6, 8, batch_first=True)
            self.head = nn.Linear(8, 3)

        def forward(self, x):
            y, _ = self.gru(x)
            return self.head(y[:, -1])

    return {"cnn": (CNN, (1, 3, 16, 16)), "encoder": (Encoder, (1, 6, 16)), "gru": (GRUNet, (1, 5, 6))}


def _build_torch(kind: str, out: str, fmt: str = "pt2") -> dict:
    import torch

    torch.manual_seed(0)
    cls, shape = _torch_models()[kind]
    model = cls().eval()
    _randomise_bn(model)
    x = torch.randn(*shape)
    with torch.no_grad():
        y = model(x)
    if fmt == "pt2":
        torch.export.save(torch.export.export(model, (x,)), out)
    else:
        torch.jit.save(torch.jit.trace(model, (x,)), out)
    np.savez(out + ".io.npz", x=x.numpy(), y=y.numpy())
    return {"input_shape": list(shape), "output_shape": list(y.shape),
            "modules": [n for n, _ in model.named_modules() if n]}


def build_cnn_pt2(out):
    return _build_torch("cnn", out)


def build_encoder_pt2(out):
    return _build_torch("encoder", out)


def build_gru_pt2(out):
    return _build_torch("gru", out)


def build_cnn_ts(out):
    return _build_torch("cnn", out, fmt="ts")


def _keras_cnn():
    import keras

    keras.utils.set_random_seed(0)
    inp = keras.Input((16, 16, 3), name="image")
    x = keras.layers.Conv2D(8, 3, padding="same", name="conv1")(inp)
    x = keras.layers.BatchNormalization(name="bn1")(x)
    x = keras.layers.ReLU(name="relu1")(x)
    x = keras.layers.Conv2D(12, 3, padding="same", name="conv2")(x)
    x = keras.layers.ReLU(name="relu2")(x)
    x = keras.layers.MaxPooling2D(name="pool")(x)
    x = keras.layers.GlobalAveragePooling2D(name="gap")(x)
    out = keras.layers.Dense(5, name="fc")(x)
    m = keras.Model(inp, out, name="kcnn")
    bn = m.get_layer("bn1")
    rng = np.random.default_rng(1)
    bn.set_weights([rng.uniform(0.5, 1.5, 8).astype("float32"), rng.uniform(-.5, .5, 8).astype("float32"),
                    rng.uniform(-.5, .5, 8).astype("float32"), rng.uniform(.5, 1.5, 8).astype("float32")])
    return m, (1, 16, 16, 3)


def _keras_lstm():
    import keras

    keras.utils.set_random_seed(0)
    inp = keras.Input((5, 6), name="seq")
    x = keras.layers.LSTM(8, name="lstm")(inp)
    out = keras.layers.Dense(3, name="fc")(x)
    return keras.Model(inp, out, name="klstm"), (1, 5, 6)


def _save_keras_io(model, shape, out) -> dict:
    x = np.random.default_rng(2).random(shape).astype("float32")
    y = np.asarray(model(x))
    np.savez(out + ".io.npz", x=x, y=y)
    return {"input_shape": list(shape), "output_shape": list(y.shape),
            "layers": [layer.name for layer in model.layers]}


def build_kcnn_keras(out):
    m, shape = _keras_cnn()
    m.save(out)
    return _save_keras_io(m, shape, out)


def build_klstm_keras(out):
    m, shape = _keras_lstm()
    m.save(out)
    return _save_keras_io(m, shape, out)


def build_kcnn_savedmodel(out):
    m, shape = _keras_cnn()
    m.export(out, verbose=False)
    return _save_keras_io(m, shape, out)


def build_kcnn_tflite(out):
    import tensorflow as tf

    m, shape = _keras_cnn()
    data = tf.lite.TFLiteConverter.from_keras_model(m).convert()
    with open(out, "wb") as f:
        f.write(data)
    return _save_keras_io(m, shape, out)


MODELS = {
    "cnn.pt2": build_cnn_pt2,
    "encoder.pt2": build_encoder_pt2,
    "gru.pt2": build_gru_pt2,
    "cnn_ts.pt": build_cnn_ts,
    "kcnn.keras": build_kcnn_keras,
    "klstm.keras": build_klstm_keras,
    "kcnn_sm": build_kcnn_savedmodel,
    "kcnn.tflite": build_kcnn_tflite,
}
