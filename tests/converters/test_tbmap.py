"""The correspondence map: strict reading, inversion, renaming and composition across hops."""
from __future__ import annotations

import json

import pytest

from converters.tbmap import Entry, MapError, TensorMap, map_path, read_map, write_map

NHWC = (0, 2, 3, 1)


def _write(tmp_path, **doc):
    model = tmp_path / "m.tflite"
    model.write_bytes(b"x")
    base = {"format": "tensorbridge.correspondence", "version": 1, "hop": "h", "inputs": [], "outputs": [],
            "tensors": []}
    base.update(doc)
    (tmp_path / "m.tflite.tbmap.json").write_text(json.dumps(base))
    return str(model)


def test_written_map_reads_back_exactly(tmp_path):
    out = tmp_path / "m.onnx"
    path = write_map(str(out), hop="onnx_from_torch", tool="torch 2.13", source="/x/m.pt2", source_format="torch.export",
                     target_format="onnx", inputs=[{"source": "x", "target": "input", "layout": None}],
                     outputs=[{"source": "y", "target": "out", "layout": list(NHWC), "layout_known": True}],
                     tensors=[{"source": "conv1", "target": "n3", "layout": None, "source_kind": "module"}],
                     notes=["n"])
    assert path == map_path(str(out)) == str(out) + ".tbmap.json"
    m = read_map(str(out))
    assert m.pairs == {"x": ("input", None), "y": ("out", NHWC), "conv1": ("n3", None)}
    assert m.tensors == [Entry("conv1", "n3", None, True, {"source_kind": "module"})]
    assert m.target == {"path": str(out), "format": "onnx"} and m.notes == ["n"]


@pytest.mark.parametrize("doc,why", [
    ({"format": "something.else"}, "not a tensorbridge correspondence map"),
    ({"version": 2}, "map version 2"),
    ({"tensors": [{"src": "a", "dst": "b"}]}, "has no source and target names"),
    ({"outputs": [{"source": "a", "target": "b", "layout": [0, 0, 1]}]}, "is not a permutation"),
])
def test_anything_else_is_ignored_with_a_reason(tmp_path, doc, why):
    model = _write(tmp_path, **doc)
    warnings: list[str] = []
    m = read_map(model, warnings)
    assert not m and len(warnings) == 1 and why in warnings[0] and "converter map ignored" in warnings[0]
    with pytest.raises(MapError):
        TensorMap.from_dict(json.loads((tmp_path / "m.tflite.tbmap.json").read_text()))


def test_no_map_is_an_empty_map(tmp_path):
    warnings: list[str] = []
    assert not read_map(str(tmp_path / "none.onnx"), warnings) and warnings == []


def test_inverted_and_renamed():
    m = TensorMap(inputs=[Entry("x", "serving_x", NHWC)], tensors=[Entry("relu", "t/relu:0", NHWC)])
    inv = m.inverted()
    assert inv.pairs == {"serving_x": ("x", (0, 3, 1, 2)), "t/relu:0": ("relu", (0, 3, 1, 2))}
    assert inv.inverted().pairs == m.pairs
    ren = m.renamed({"x": "input_1"}, {"serving_x": "x_0"})
    assert ren.pairs == {"input_1": ("x_0", NHWC), "relu": ("t/relu:0", NHWC)}


def test_compose_chains_layouts_over_the_middle_names():
    torch_to_onnx = TensorMap(hop="a", inputs=[Entry("x", "input")], outputs=[Entry("y", "out")],
                              tensors=[Entry("conv", "n1", None, True, {"source_kind": "module"}),
                                       Entry("lost", "n9")])
    onnx_to_tflite = TensorMap(hop="b", inputs=[Entry("input", "serving_input", NHWC)],
                               outputs=[Entry("out", "Identity")],
                               tensors=[Entry("n1", "tfl/conv", NHWC, False)])
    m = torch_to_onnx.compose(onnx_to_tflite)
    assert m.hop == "a+b"
    assert m.pairs == {"x": ("serving_input", NHWC), "y": ("Identity", None), "conv": ("tfl/conv", None)}
    conv = m.tensors[0]
    assert conv.layout_known is False and conv.extra == {"source_kind": "module", "via": "n1"}
    assert [e.source for e in m.tensors] == ["conv"]  # 'lost' has no counterpart in the second hop


def test_one_layout_search_for_every_caller():
    from converters.layouts import compose_perm, explain_layout, invert_perm, perm_candidates

    assert perm_candidates((1, 3, 8, 8), (1, 8, 8, 3))[0] == NHWC
    assert perm_candidates((1, 3, 8, 8), (None, 8, -1, 3))[0] == NHWC  # dynamic dims fit anything
    assert explain_layout([1, 3, 8, 8], [1, 8, 8, 3]) == ([0, 2, 3, 1], True)
    assert explain_layout([1, 3, 3, 3], [1, 3, 3, 3]) == (None, False)   # H == W == C: cannot tell
    assert explain_layout([1, 3, 8, 8], [1, 3, 8, 8]) == (None, True)
    assert explain_layout([2, 5], [5, 2]) == ([1, 0], True)
    assert invert_perm(NHWC) == (0, 3, 1, 2) and compose_perm(NHWC, invert_perm(NHWC)) == (0, 1, 2, 3)


def test_a_converters_odd_entry_is_left_out_not_fatal(tmp_path):
    out = tmp_path / "m.tf"
    write_map(str(out), hop="h", tool="t", source="/s.onnx", source_format="onnx", target_format="savedmodel",
              tensors=[{"source": "a", "target": None, "layout": None}, {"source": "b", "target": "B", "layout": None}])
    m = read_map(str(out))
    assert m.tensor_pairs() == [("b", "B", None)]
    assert m.notes == ["1 pair(s) the converter reported without both names (or with a bad layout) are left out"]
