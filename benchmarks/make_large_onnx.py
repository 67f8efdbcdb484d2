#!/usr/bin/env python3
"""Synthetic ONNX models of a chosen node count, for the graph-view benchmarks.

The shapes match the models Netron's baseline was measured on (see bench_graph.py), so the figures
compare: a convolutional stem, ResNet-like blocks (about a quarter of the nodes) and transformer-like
encoder blocks (the rest), every weight a real initializer, tensors tiny (channels 4, hidden 8) so that
files stay small at 50,000 nodes. Node names are ``/``-scoped (``encoder12/attn/q``) like tf2onnx's and
most exporters', so scopes come from names. Every model passes ``onnx.checker``.

    resnet block (7 nodes):  Conv, BatchNormalization, Relu, Conv, BatchNormalization, Add(skip), Relu
    encoder block (18):      LayerNormalization, MatMul q/k/v, Transpose, MatMul, Mul(scale), Softmax,
                             MatMul, MatMul(out), Add(residual), LayerNormalization, MatMul, Add, Relu,
                             MatMul, Add, Add(residual)

Usage: python benchmarks/make_large_onnx.py OUT_DIR [--sizes 200,5000,50000]
"""
from __future__ import annotations

import argparse
import json
import os
import sys

import numpy as np

C, HW, D, F = 4, 4, 8, 16       # conv channels, spatial size, hidden size, feed-forward size
SEQ = HW * HW
FIXED = 2 + 3 + 2               # stem (Conv, Relu) + bridge (Reshape, Transpose, MatMul) + head (ReduceMean, MatMul)
RES, ENC = 7, 18


def block_counts(target: int) -> tuple[int, int]:
    """(resnet blocks, encoder blocks) giving close to ``target`` nodes, a quarter of them resnet."""
    body = max(target - FIXED, RES + ENC)
    n_res = max(1, round(body * 0.25 / RES))
    n_enc = max(1, round((body - n_res * RES) / ENC))
    return n_res, n_enc


def make_model(target: int, seed: int = 0):
    """An onnx.ModelProto of about ``target`` nodes (opset 17, IR 8)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(seed)
    nodes, inits = [], []

    def w(name, shape, value=None):
        if value is None:
            value = (rng.standard_normal(shape) * 0.1).astype(np.float32)
        inits.append(numpy_helper.from_array(np.asarray(value), name))
        return name

    def node(op, inputs, name, **attrs):
        out = name + ":0"
        nodes.append(helper.make_node(op, inputs, [out], name=name, **attrs))
        return out

    ones, zeros = (lambda k: np.ones(k, np.float32)), (lambda k: np.zeros(k, np.float32))
    n_res, n_enc = block_counts(target)
    h = node("Conv", ["image", w("stem/conv/W", (C, 3, 3, 3))], "stem/conv", kernel_shape=[3, 3], pads=[1, 1, 1, 1])
    h = node("Relu", [h], "stem/relu")
    for i in range(n_res):
        p, x = f"res{i}", h

        def bn(inp, tag):
            return node("BatchNormalization", [inp, w(f"{p}/{tag}/scale", (C,), ones(C)), w(f"{p}/{tag}/bias", (C,), zeros(C)),
                                               w(f"{p}/{tag}/mean", (C,), zeros(C)), w(f"{p}/{tag}/var", (C,), ones(C))],
                        f"{p}/{tag}", epsilon=1e-5)

        h = node("Conv", [x, w(f"{p}/conv1/W", (C, C, 3, 3))], f"{p}/conv1", kernel_shape=[3, 3], pads=[1, 1, 1, 1])
        h = node("Relu", [bn(h, "bn1")], f"{p}/relu1")
        h = node("Conv", [h, w(f"{p}/conv2/W", (C, C, 3, 3))], f"{p}/conv2", kernel_shape=[3, 3], pads=[1, 1, 1, 1])
        h = node("Add", [bn(h, "bn2"), x], f"{p}/add")
        h = node("Relu", [h], f"{p}/relu2")
    h = node("Reshape", [h, w("bridge/shape", (3,), np.array([1, C, SEQ], np.int64))], "bridge/reshape")
    h = node("Transpose", [h], "bridge/transpose", perm=[0, 2, 1])
    h = node("MatMul", [h, w("bridge/proj", (C, D))], "bridge/proj")
    for i in range(n_enc):
        p, x = f"encoder{i}", h

        def ln(inp, tag):
            return node("LayerNormalization", [inp, w(f"{p}/{tag}/gamma", (D,), ones(D)), w(f"{p}/{tag}/beta", (D,), zeros(D))],
                        f"{p}/{tag}", axis=-1, epsilon=1e-5)

        a = ln(x, "ln1")
        q = node("MatMul", [a, w(f"{p}/attn/Wq", (D, D))], f"{p}/attn/q")
        k = node("MatMul", [a, w(f"{p}/attn/Wk", (D, D))], f"{p}/attn/k")
        v = node("MatMul", [a, w(f"{p}/attn/Wv", (D, D))], f"{p}/attn/v")
        s = node("MatMul", [q, node("Transpose", [k], f"{p}/attn/k_t", perm=[0, 2, 1])], f"{p}/attn/scores")
        s = node("Mul", [s, w(f"{p}/attn/scale", (), np.float32(D ** -0.5))], f"{p}/attn/scale")
        s = node("Softmax", [s], f"{p}/attn/softmax", axis=-1)
        o = node("MatMul", [node("MatMul", [s, v], f"{p}/attn/context"), w(f"{p}/attn/Wo", (D, D))], f"{p}/attn/out")
        x1 = node("Add", [o, x], f"{p}/attn/residual")
        f = node("MatMul", [ln(x1, "ln2"), w(f"{p}/ffn/W1", (D, F))], f"{p}/ffn/fc1")
        f = node("Relu", [node("Add", [f, w(f"{p}/ffn/b1", (F,), zeros(F))], f"{p}/ffn/bias1")], f"{p}/ffn/relu")
        f = node("MatMul", [f, w(f"{p}/ffn/W2", (F, D))], f"{p}/ffn/fc2")
        f = node("Add", [f, w(f"{p}/ffn/b2", (D,), zeros(D))], f"{p}/ffn/bias2")
        h = node("Add", [f, x1], f"{p}/ffn/residual")
    h = node("ReduceMean", [h], "head/pool", axes=[1], keepdims=0)
    out = node("MatMul", [h, w("head/W", (D, 10))], "head/classifier")
    graph = helper.make_graph(nodes, f"synthetic_{target}",
                              [helper.make_tensor_value_info("image", TensorProto.FLOAT, [1, 3, HW, HW])],
                              [helper.make_tensor_value_info(out, TensorProto.FLOAT, [1, 10])], initializer=inits)
    model = helper.make_model(graph, producer_name="tensorbridge-bench", opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def write(out_dir: str, sizes: list[int]) -> list[dict]:
    """Write ``synthetic_<size>.onnx`` for each size into ``out_dir`` (kept if already there)."""
    import onnx

    os.makedirs(out_dir, exist_ok=True)
    out = []
    for size in sizes:
        path = os.path.join(out_dir, f"synthetic_{size}.onnx")
        if not os.path.exists(path):
            model = make_model(size)
            tmp = path + ".tmp"
            onnx.save(model, tmp)
            os.replace(tmp, path)
        out.append({"size": size, "path": os.path.abspath(path), "bytes": os.path.getsize(path)})
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out_dir")
    ap.add_argument("--sizes", default="200,1000,5000,20000,50000")
    args = ap.parse_args(argv)
    for entry in write(args.out_dir, [int(s) for s in args.sizes.split(",") if s]):
        print(json.dumps(entry), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
