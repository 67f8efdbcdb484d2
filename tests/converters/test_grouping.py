"""Graph inputs and outputs as drawn nodes, weights beside their consumer and grouping by structure for
graphs without scopes, over real ONNX files (built with onnx.helper, checked by onnx.checker, read by the
real reader) and a real torch export."""
from __future__ import annotations

import onnx
from onnx import TensorProto, helper

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
