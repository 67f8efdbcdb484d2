"""Keras 3 models with a grouped convolution and exact GELU (ConvNeXt's block) convert to ONNX and PyTorch.

On the TF backend Keras runs a grouped convolution inside an XLA-compiled function, which tf2onnx cannot
look into (it left a ``StatefulPartitionedCall`` node), and TF's exact GELU uses ``Erfc``, which tf2onnx
leaves unconverted; the ONNX that tf2onnx writes for the grouped convolution pads with ``auto_pad=SAME_UPPER``,
which onnx2torch does not implement.
"""
from __future__ import annotations

import onnx
import pytest

from converters.jobs import run_job


def _convnext_block(path) -> str:
    import keras

    keras.utils.set_random_seed(0)
    x = keras.Input((16, 16, 8), name="image")
    y = keras.layers.Conv2D(8, 7, padding="same", groups=8, name="depthwise_conv")(x)
    y = keras.layers.LayerNormalization(epsilon=1e-6, name="norm")(y)
    y = keras.layers.Dense(32, name="pw1")(y)
    y = keras.layers.Activation("gelu", name="gelu")(y)  # exact GELU, as ConvNeXt's blocks
    y = keras.layers.Dense(8, name="pw2")(y)
    y = keras.layers.Add(name="residual")([x, y])
    y = keras.layers.GlobalAveragePooling2D(name="pool")(y)
    keras.Model(x, keras.layers.Dense(5, name="head")(y)).save(str(path))
    return str(path)


@pytest.fixture(scope="module")
def block(tmp_path_factory):
    return _convnext_block(tmp_path_factory.mktemp("grouped") / "block.keras")


@pytest.mark.parametrize("target,ext", [("onnx", "onnx"), ("torch", "pt2")])
def test_grouped_convolution_block_converts_with_parity(block, tmp_path, target, ext):
    out = str(tmp_path / f"block.{ext}")
    res, job = run_job("convert", {"src": block, "to": target, "out": out, "options": {}})
    job.cleanup()
    if target == "onnx":
        m = onnx.load(out)
        ops = {n.op_type for n in m.graph.node}
        assert "StatefulPartitionedCall" not in ops and "Erfc" not in ops
        assert any(n.op_type == "Conv" and any(a.name == "group" and a.i == 8 for a in n.attribute)
                   for n in m.graph.node)
    cmp, job = run_job("compare", {"a": block, "b": out, "repeats": 1})
    job.cleanup()
    assert cmp["passed"] is True, cmp
    assert cmp["outputs"][0]["max_abs"] < 1e-4
