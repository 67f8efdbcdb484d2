"""Graph inputs and outputs as drawn nodes, weights beside their consumer and grouping by structure for
graphs without scopes, over real ONNX files (built with onnx.helper, checked by onnx.checker, read by the
real reader) and a real torch export."""
from __future__ import annotations

import re

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from converters.formats import load
from converters.viewio import IO_INPUT, IO_OUTPUT
from converters.viewpack import ViewPack, build_pack


def _save(nodes, inputs, outputs, inits, path, value_info=()):
    g = helper.make_graph(nodes, "g", inputs, outputs, initializer=inits, value_info=list(value_info))
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    m = onnx.shape_inference.infer_shapes(m)
    onnx.checker.check_model(m, full_check=True)
    onnx.save(m, path)
    return str(path)


def _two_in_two_out(path):
    """x, y -> Add -> Relu -> out1; Add -> Sigmoid -> out2 (y is also fed to Mul) with no node names."""
    f = TensorProto.FLOAT
    nodes = [helper.make_node("Add", ["x", "y"], ["s"]),
             helper.make_node("Mul", ["s", "y"], ["m"]),
             helper.make_node("Relu", ["m"], ["out1"]),
             helper.make_node("Sigmoid", ["s"], ["out2"])]
    return _save(nodes, [helper.make_tensor_value_info("x", f, [2, 3]), helper.make_tensor_value_info("y", f, [2, 3])],
                 [helper.make_tensor_value_info("out1", f, [2, 3]), helper.make_tensor_value_info("out2", f, [2, 3])],
                 [], path)


def test_inputs_and_outputs_are_nodes_of_the_layout_with_edges_and_shapes(tmp_path):
    model = load(_two_in_two_out(tmp_path / "io.onnx"))
    pack = build_pack(model, tmp_path / "pack")
    nodes = model.graph.nodes
    # the model's nodes keep their indices; the I/O nodes come on top of them
    assert pack.n_nodes == len(nodes) == 4
    assert [pack.op_type(i) for i in range(pack.n_nodes)] == [n.op_type for n in nodes]
    assert pack.n_io == 4 and pack.io_names == ["x", "y", "out1", "out2"]
    assert pack.io_kind.tolist() == [IO_INPUT, IO_INPUT, IO_OUTPUT, IO_OUTPUT]
    n = pack.n_nodes
    edges = set(zip(pack.io_edge_src.tolist(), pack.io_edge_dst.tolist()))
    # x feeds Add; y feeds Add and Mul; Relu produces out1, Sigmoid out2
    assert edges == {(n + 0, 0), (n + 1, 0), (n + 1, 1), (2, n + 2), (3, n + 3)}
    assert pack.io_details(1) == {"io": "input", "name": "y", "shape_text": "2×3 float32", "nodes": [0, 1]}
    assert pack.io_details(3)["nodes"] == [3] and pack.io_details(3)["io"] == "output"

    again = ViewPack.load(pack.dir)            # what the window reads
    lay = again.engine().layout(set())
    assert sorted(lay.node_idx.tolist()) == [0, 1, 2, 3]
    assert sorted(lay.io_idx.tolist()) == [0, 1, 2, 3]
    rect = {int(k): r for k, r in zip(lay.io_idx.tolist(), lay.io_rect)}
    node_rect = {int(i): r for i, r in zip(lay.node_idx.tolist(), lay.node_rect)}
    # inputs above the nodes they feed, outputs below the nodes producing them
    assert rect[0][1] + rect[0][3] < node_rect[0][1] and rect[1][1] + rect[1][3] < node_rect[0][1]
    assert rect[2][1] > node_rect[2][1] + node_rect[2][3] and rect[3][1] > node_rect[3][1] + node_rect[3][3]
    # the drawn edges: from input items to nodes and from nodes to output items, labelled with the shape
    io_item = n + again.n_groups
    drawn = {(int(a), int(b)): again.edge_text(int(r))
             for a, b, r in zip(lay.edge_src_item, lay.edge_dst_item, lay.edge_ref)}
    assert drawn[(io_item + 1, 1)] == "2×3 float32"          # y -> Mul
    assert drawn[(3, io_item + 3)] == "2×3 float32"          # Sigmoid -> out2
    assert drawn[(0, 1)] == "2×3 float32"                    # Add -> Mul, a model edge, as before
    # find and the overlays index the model's nodes only: an I/O name is no node
    assert again.find("out1") == [] and again.find("Relu") == [2]
    # the overview stored in the pack holds them too
    assert sorted(again.overview.io_idx.tolist()) == [0, 1, 2, 3]


LAYERS, T, D = 12, 4, 8


def _transformer_like(path, layers: int = LAYERS):
    """A scope-less stack of ``layers`` pre-norm transformer layers, no node names, weights made the ways
    exporters make them: a Constant node (all of them at the top of the file), an initializer read
    through Transpose, an int8 initializer read through DequantizeLinear, plain initializers. One
    attention mask is computed once and read by every layer."""
    f = TensorProto.FLOAT
    rng = np.random.default_rng(0)
    consts, body, inits = [], [], []

    def init(name, shape, dtype=np.float32):
        a = (rng.standard_normal(shape) * 0.1).astype(dtype) if dtype == np.float32 else \
            rng.integers(-5, 5, shape).astype(dtype)
        inits.append(numpy_helper.from_array(a, name))
        return name

    body.append(helper.make_node("Mul", ["mask", init("neg", [])], ["mask_add"]))
    x = "x"
    for i in range(layers):
        p = f"l{i}_"
        consts.append(helper.make_node("Constant", [], [p + "wk"], value=numpy_helper.from_array(
            (rng.standard_normal((D, D)) * 0.1).astype(np.float32), p + "wk_value")))
        consts.append(helper.make_node("Constant", [], [p + "scale"], value=numpy_helper.from_array(
            np.array(D ** -0.5, np.float32), p + "scale_value")))
        body += [
            helper.make_node("LayerNormalization", [x, init(p + "g1", [D]), init(p + "b1", [D])], [p + "ln1"], axis=-1),
            helper.make_node("Transpose", [init(p + "wq_t", [D, D])], [p + "wq"], perm=[1, 0]),
            helper.make_node("MatMul", [p + "ln1", p + "wq"], [p + "q"]),
            helper.make_node("MatMul", [p + "ln1", p + "wk"], [p + "k"]),
            helper.make_node("MatMul", [p + "ln1", init(p + "wv", [D, D])], [p + "v"]),
            helper.make_node("Transpose", [p + "k"], [p + "kt"], perm=[1, 0]),
            helper.make_node("MatMul", [p + "q", p + "kt"], [p + "s"]),
            helper.make_node("Mul", [p + "s", p + "scale"], [p + "s2"]),
            helper.make_node("Add", [p + "s2", "mask_add"], [p + "s3"]),
            helper.make_node("Softmax", [p + "s3"], [p + "a"], axis=-1),
            helper.make_node("MatMul", [p + "a", p + "v"], [p + "o"]),
            helper.make_node("DequantizeLinear", [init(p + "wo_q", [D, D], np.int8), init(p + "wo_s", [])], [p + "wo"]),
            helper.make_node("MatMul", [p + "o", p + "wo"], [p + "o2"]),
            helper.make_node("Add", [x, p + "o2"], [p + "r"]),
            helper.make_node("LayerNormalization", [p + "r", init(p + "g2", [D]), init(p + "b2", [D])], [p + "ln2"], axis=-1),
            helper.make_node("MatMul", [p + "ln2", init(p + "w1", [D, 2 * D])], [p + "f1"]),
            helper.make_node("Relu", [p + "f1"], [p + "f2"]),
            helper.make_node("MatMul", [p + "f2", init(p + "w2", [2 * D, D])], [p + "f3"]),
            helper.make_node("Add", [p + "r", p + "f3"], [p + "y"]),
        ]
        x = p + "y"
    body.append(helper.make_node("ReduceMean", [x], ["pooled"], axes=[0], keepdims=0))
    return _save(consts + body, [helper.make_tensor_value_info("x", f, [T, D]),
                                 helper.make_tensor_value_info("mask", f, [T, T])],
                 [helper.make_tensor_value_info("pooled", f, [D])], inits, path)


_BLOCK = re.compile(r"^block (\d+) \((.+)\)$")


def _blocks(pack):
    """{number: group} of the groups named like repeated blocks."""
    out = {}
    for gi, label in enumerate(pack.group_labels):
        m = _BLOCK.match(label)
        if m:
            out[int(m.group(1))] = gi
    return out


def test_scopeless_transformer_is_grouped_into_its_repeated_layers(tmp_path):
    model = load(_transformer_like(tmp_path / "t.onnx"))
    nodes = model.graph.nodes
    assert not any(n.scope for n in nodes)
    pack = build_pack(model, tmp_path / "pack")
    blocks = _blocks(pack)
    assert sorted(blocks) == list(range(1, LAYERS + 1))
    # one block per layer: the layer's every node (its weights included) and nothing else
    layer_of = {}
    for i, nd in enumerate(nodes):
        out = nd.outputs[0]
        if out.startswith("l"):
            layer_of[i] = int(out[1:out.index("_")])
    for k, gi in blocks.items():
        inside = {i for i in range(pack.n_nodes) if int(pack.node_group[i]) == gi}
        assert inside == {i for i, layer in layer_of.items() if layer == k - 1}
        label = pack.group_labels[gi]
        assert label == f"block {k} (LayerNorm·MatMul·Softmax·Relu…)"
    # the mask computed once and the pooling stay outside every block
    top = {pack.op_type(i) for i in range(pack.n_nodes) if int(pack.node_group[i]) == 0}
    assert top == {"Mul", "ReduceMean"}
    # no group is named by node numbers (unnamed nodes are "MatMul_17" in the pack)
    assert not any(re.search(r"[A-Za-z]_\d", s) for s in pack.group_labels)


def test_weights_sit_beside_their_consumer(tmp_path):
    from converters.layout import NODE_H, V_GAP

    model = load(_transformer_like(tmp_path / "t.onnx"))
    nodes = model.graph.nodes
    pack = build_pack(model, tmp_path / "pack")
    lay = pack.engine().layout(set(range(1, pack.n_groups)))      # everything expanded
    y = np.full(pack.n_nodes, np.nan)
    y[lay.node_idx] = lay.node_rect[:, 1]
    prod = model.graph.producers()
    cons = model.graph.consumers()
    checked = set()
    for i, nd in enumerate(nodes):
        if nd.op_type == "Constant" or (nd.op_type in ("Transpose", "DequantizeLinear")
                                        and all(v in model.graph.initializers for v in nd.inputs)):
            (c,) = cons[nd.outputs[0]]
            assert pack.node_group[i] == pack.node_group[c], f"{nd.outputs[0]} is not in its consumer's group"
            # one layer above its consumer: no long edge from the top of the block
            assert y[c] - y[i] == NODE_H + V_GAP, f"{nd.outputs[0]}: {y[c] - y[i]}"
            checked.add(nd.op_type)
    assert checked == {"Constant", "Transpose", "DequantizeLinear"}
    assert prod  # the graph was read with its producers


def test_scoped_graph_keeps_its_scopes(model_file, tmp_path):
    mf = model_file("view_models", "synthetic_200.onnx")
    model = load(mf.path)
    pack = build_pack(model, tmp_path / "pack")
    assert not _blocks(pack)
    assert {"stem", "head"} <= set(pack.group_labels)
    assert sum(1 for s in pack.group_labels if s.startswith("encoder")) == mf.facts["encoder_blocks"]


_TORCH_EXPORT = r'''
import sys, torch
from torch import nn

class Layer(nn.Module):
    def __init__(self, d):
        super().__init__()
        self.ln1, self.ln2 = nn.LayerNorm(d), nn.LayerNorm(d)
        self.q, self.k, self.v, self.o = (nn.Linear(d, d) for _ in range(4))
        self.f1, self.f2 = nn.Linear(d, 2 * d), nn.Linear(2 * d, d)
        self.scale = d ** -0.5

    def forward(self, x):
        h = self.ln1(x)
        a = torch.softmax(self.q(h) @ self.k(h).transpose(-1, -2) * self.scale, dim=-1)
        x = x + self.o(a @ self.v(h))
        return x + self.f2(torch.relu(self.f1(self.ln2(x))))

class Stack(nn.Module):
    def __init__(self, n, d):
        super().__init__()
        self.inp = nn.Linear(d, d)
        self.layers = nn.ModuleList(Layer(d) for _ in range(n))
        self.head = nn.Linear(d, 3)

    def forward(self, x):
        x = self.inp(x)
        for layer in self.layers:
            x = layer(x)
        return self.head(x.mean(dim=1))

torch.manual_seed(0)
m = Stack(int(sys.argv[2]), 16).eval()
torch.onnx.export(m, (torch.randn(1, 5, 16),), sys.argv[1], opset_version=17, dynamo=False,
                  input_names=["tokens"], output_names=["logits"])
'''


def test_torch_export_without_scopes_is_grouped_into_its_layers(tmp_path):
    """A 12-layer transformer written in torch and exported by torch.onnx, its names and scope metadata
    then dropped (as converters that rewrite the graph leave it): 12 blocks, one per layer."""
    import subprocess
    import sys

    raw = tmp_path / "raw.onnx"
    subprocess.run([sys.executable, "-c", _TORCH_EXPORT, str(raw), str(LAYERS)], check=True, timeout=300)
    m = onnx.load(raw)
    for nd in m.graph.node:
        nd.name = ""
        del nd.metadata_props[:]
    onnx.checker.check_model(m)
    path = tmp_path / "flat.onnx"
    onnx.save(m, path)
    model = load(str(path))
    assert not any(n.scope for n in model.graph.nodes)
    pack = build_pack(model, tmp_path / "pack")
    blocks = _blocks(pack)
    assert sorted(blocks) == list(range(1, LAYERS + 1))
    # the same layer twelve times (torch shares equal weights between layers through Identity nodes,
    # a different number per layer: those are weights, in the block of the layer that reads them)
    ops_of = [sorted(pack.op_type(i) for i in np.flatnonzero(pack.node_group == gi)
                     if pack.op_type(i) not in ("Identity", "Constant")) for gi in blocks.values()]
    assert all(o == ops_of[0] for o in ops_of) and len(ops_of[0]) >= 12
    cons = model.graph.consumers()
    for i, nd in enumerate(model.graph.nodes):
        if nd.op_type == "Identity":
            (c,) = cons[nd.outputs[0]]
            assert pack.node_group[i] == pack.node_group[c]
    for gi in blocks.values():
        ops = {pack.op_type(i) for i in np.flatnonzero(pack.node_group == gi)}
        assert {"LayerNormalization", "Softmax", "Relu", "MatMul"} <= ops or {"Softmax", "Relu", "Gemm"} <= ops
    assert not any(re.search(r"[A-Za-z]_\d", s) for s in pack.group_labels)
    # the graph's input and output are drawn, with their shapes
    assert pack.io_names == ["tokens", "logits"]
    assert pack.io_details(0)["shape_text"] == "1×5×16 float32" and pack.io_details(1)["shape_text"] == "1×3 float32"


def test_a_long_run_of_blocks_gets_a_group_of_its_own(tmp_path):
    from converters.grouping import RUN_GROUP

    n = RUN_GROUP + 6
    pack = build_pack(load(_transformer_like(tmp_path / "t.onnx", layers=n)), tmp_path / "pack")
    blocks = _blocks(pack)
    assert sorted(blocks) == list(range(1, n + 1))
    (run,) = [g for g, s in enumerate(pack.group_labels) if s.startswith("blocks ")]
    assert re.match(rf"^blocks 1–{n} \(LayerNorm·MatMul·Softmax·Relu…\)$", pack.group_labels[run])
    assert {int(pack.group_parent[g]) for g in blocks.values()} == {run}
    assert int(pack.group_parent[run]) == 0


def test_scopeless_resnet_and_encoder_stack_are_grouped_into_their_blocks(tmp_path):
    """The benchmark's synthetic model (ResNet blocks, then encoder blocks) with every node name dropped:
    each ResNet block starts at its Conv (not at the Relu closing the one before) and each encoder block
    at its LayerNorm."""
    from benchmarks.make_large_onnx import block_counts, make_model

    m = make_model(600)
    for nd in m.graph.node:
        nd.name = ""
    path = tmp_path / "flat.onnx"
    onnx.save(m, path)
    n_res, n_enc = block_counts(600)
    pack = build_pack(load(str(path)), tmp_path / "pack")
    labels = [s for s in pack.group_labels if not s.startswith("blocks ")]     # runs of more than 24
    assert [s for s in labels if "Conv" in s] == [f"block {k} (Conv·BatchNorm·Relu·Add)" for k in range(1, n_res + 1)]
    assert [s for s in labels if "LayerNorm" in s] == [f"block {k} (LayerNorm·MatMul·Softmax·Relu…)"
                                                       for k in range(1, n_enc + 1)]
    for g, s in enumerate(pack.group_labels):
        if s.startswith("block "):
            ops = [pack.op_type(i) for i in np.flatnonzero(pack.node_group == g)]
            assert ops[0] == ("Conv" if "Conv" in s else "LayerNormalization")
