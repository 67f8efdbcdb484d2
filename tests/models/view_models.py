"""Models for the graph view, the view pack and the layout: scoped, flat (unnamed) and weights-only.

Built with onnx and safetensors only (no torch/TF import), once per test session.
"""
from __future__ import annotations

import numpy as np


def _synthetic(size):
    def build(out):
        import onnx

        from benchmarks.make_large_onnx import block_counts, make_model

        m = make_model(size)
        onnx.save(m, out)
        n_res, n_enc = block_counts(size)
        return {"node_count": len(m.graph.node), "resnet_blocks": n_res, "encoder_blocks": n_enc,
                "initializers": len(m.graph.initializer)}
    return build


def flat_1200(out):
    """1,200 unnamed nodes (no scopes at all): a chain with a side branch every 10 nodes."""
    import onnx
    from onnx import TensorProto, helper

    nodes, x = [], "x"
    for i in range(0, 1200, 3):
        a = f"a{i}"
        nodes.append(helper.make_node("Relu", [x], [a]))
        b = f"b{i}"
        nodes.append(helper.make_node("Sigmoid", [a], [b]))
        c = f"c{i}"
        nodes.append(helper.make_node("Add", [a, b], [c]))
        x = c
    g = helper.make_graph(nodes, "flat", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3])],
                          [helper.make_tensor_value_info(x, TensorProto.FLOAT, [2, 3])])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    onnx.checker.check_model(m)
    onnx.save(m, out)
    return {"node_count": len(nodes)}


def weights_safetensors(out):
    from safetensors.numpy import save_file

    rng = np.random.default_rng(0)
    tensors = {"encoder.layer0.weight": rng.standard_normal((8, 4)).astype(np.float32),
               "encoder.layer0.bias": np.zeros(8, np.float32),
               "head.weight": rng.standard_normal((3, 8)).astype(np.float32)}
    save_file(tensors, out)
    return {"weights": {k: {"dtype": str(v.dtype), "shape": list(v.shape)} for k, v in tensors.items()}}


MODELS = {
    "synthetic_200.onnx": _synthetic(200),
    "synthetic_5000.onnx": _synthetic(5000),
    "flat_1200.onnx": flat_1200,
    "weights.safetensors": weights_safetensors,
}
