"""Structural diff: two versions of one small CNN (exported by torch to ONNX) where one convolution's weights
changed, one activation was replaced, one pooling's stride changed and one node was added list exactly those
layers; the same model with every name changed lists nothing; across formats (Keras vs its TFLite) the
layers holding the same weights pair by them and show no weight change; the CLI's exit codes and errors."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from converters.parity.structdiff import StructDiff, diff_models

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _edited(src: str, out: str) -> None:
    """B: conv1's weights +0.25 in one filter, the first Relu a Sigmoid, the pooling's stride 1 (so every
    shape after it changes), a Tanh inserted before the head."""
    import onnx
    from onnx import helper, numpy_helper

    m = onnx.load(src)
    g = m.graph
    w = next(i for i in g.initializer if i.name == "conv1.weight")
    a = numpy_helper.to_array(w).copy()
    a[0] += 0.25
    w.CopyFrom(numpy_helper.from_array(a.astype(np.float32), w.name))
    next(n for n in g.node if n.name == "node_relu").op_type = "Sigmoid"
    pool = next(n for n in g.node if n.op_type == "MaxPool")
    next(at for at in pool.attribute if at.name == "strides").ints[:] = [1, 1]
    mean = next(n for n in g.node if n.op_type == "ReduceMean")
    gemm = next(n for n in g.node if n.op_type == "Gemm")
    gemm.input[0] = "extra"
    g.node.insert(list(g.node).index(gemm), helper.make_node("Tanh", [mean.output[0]], ["extra"], name="node_extra"))
    del g.value_info[:]
    feats = next(o for o in g.output if o.name == "features")
    for d in (2, 3):
        feats.type.tensor_type.shape.dim[d].dim_value = 15
    onnx.save(m, out)


def _renamed(src: str, out: str) -> None:
    """The same model with every node, weight and inner tensor renamed (graph inputs and outputs kept)."""
    import onnx

    m = onnx.load(src)
    g = m.graph
    keep = {x.name for x in g.output} | {x.name for x in g.input}
    ren: dict[str, str] = {}
    for k, n in enumerate(g.node):
        n.name = f"op{k}"
        for j, o in enumerate(n.output):
            if o not in keep:
                ren[o] = n.output[j] = f"t{len(ren)}"
    for init in g.initializer:
        ren[init.name] = f"w{len(ren)}"
        init.name = ren[init.name]
    for n in g.node:
        for j, x in enumerate(n.input):
            n.input[j] = ren.get(x, x)
    for v in g.value_info:
        v.name = ren.get(v.name, v.name)
    onnx.save(m, out)


@pytest.fixture(scope="module")
def versions(model_file, tmp_path_factory):
    src = model_file("compare_models", "cnn.onnx").path
    d = tmp_path_factory.mktemp("versions")
    b, r = str(d / "b.onnx"), str(d / "renamed.onnx")
    _edited(src, b)
    _renamed(src, r)
    return src, b, r


def test_two_versions_list_exactly_the_changed_layers(versions):
    a, b, _r = versions
    d = diff_models(a, b)
    by = {s: {e.a or e.b for e in d.of(s)} for s in ("changed", "added", "removed")}
    assert by == {"changed": {"node_Conv_11", "node_relu", "node_max_pool2d"}, "added": {"node_extra"},
                  "removed": set()}
    assert not d.identical and d.counts["same"] == 4
    ch = {e.a: e for e in d.of("changed")}
    conv = ch["node_Conv_11"].changes
    assert [c.kind for c in conv] == ["weights"] and conv[0].what == "conv1.weight"
    assert conv[0].max_abs == pytest.approx(0.25, rel=1e-6) and conv[0].max_rel > 0
    assert [(c.kind, c.a, c.b) for c in ch["node_relu"].changes] == [("op", "Relu", "Sigmoid")]
    pool = ch["node_max_pool2d"].changes
    assert [(c.kind, c.what, c.a, c.b) for c in pool if c.kind == "attr"] == [("attr", "strides", "[2, 2]", "[1, 1]")]
    assert any(c.kind == "shape" for c in pool)   # its own output shape changed ...
    conv2 = next(e for e in d.entries if e.a == "node_conv2d_1")
    assert conv2.status == "same"                  # ... the shapes after it only follow from it
    assert {e.method for e in d.entries if e.status != "added"} == {"name"}
    # the added node sits where B has it: after the mean, before the head
    names = [e.a or e.b for e in d.entries]
    assert names.index("node_mean") < names.index("node_extra") < names.index("node_linear")
    # the JSON form reads back into the same diff
    back = StructDiff.from_dict(json.loads(json.dumps(d.to_dict())))
    assert back.to_dict() == d.to_dict()
    assert any(line.startswith("+ node_extra") for line in d.summary_lines())
    assert not any("node_conv2d_1" in line for line in d.summary_lines())
    assert any("node_conv2d_1" in line for line in d.summary_lines(all=True))


def test_renamed_copy_pairs_by_weights_and_structure_and_lists_nothing(versions):
    a, _b, r = versions
    d = diff_models(a, r)
    assert d.identical, d.summary_lines()
    assert not any(c.kind.startswith("weight") for e in d.entries for c in e.changes)
    methods = d.methods
    assert methods.get("weights", 0) >= 2 and "name" in methods   # the graph outputs keep their names
    assert sum(methods.values()) == 7 and not d.of("added") and not d.of("removed")
    # and the renamed copy against the edited version: the same layers, found without names
    d2 = diff_models(r, versions[1])
    changed = {e.b for e in d2.of("changed")}
    assert {"node_Conv_11", "node_relu", "node_max_pool2d"} <= changed
    assert {e.b for e in d2.of("added")} == {"node_extra"}


def test_keras_and_its_tflite_pair_by_weights_without_weight_changes(model_file):
    k = model_file("compare_models", "keras_twin.keras").path
    t = model_file("compare_models", "keras_twin.tflite").path
    d = diff_models(k, t)
    by_a = {e.a: e for e in d.entries if e.a}
    for name in ("features", "logits"):   # the layers TFLite kept as they were
        e = by_a[name]
        assert e.status == "same" and e.method == "weights", e.to_dict()
    assert d.format_a == "keras" and d.format_b == "tflite" and d.notes


def _cli(*args):
    env = dict(os.environ, PYTHONPATH=ROOT)
    return subprocess.run([sys.executable, "-m", "converters.cli", "diff", *args], capture_output=True, text=True,
                          env=env, cwd=ROOT, timeout=120)


def test_cli_exit_codes_and_one_line_errors(versions, tmp_path):
    a, b, r = versions
    p = _cli(a, b)
    assert p.returncode == 1, p.stderr
    lines = p.stdout.splitlines()
    assert sum(line[:2] in ("~ ", "+ ", "- ") for line in lines) == 4
    assert lines[-1].startswith("3 changed, 1 added, 0 removed, 4 unchanged")
    p = _cli(a, r, "--json")
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout)["identical"] is True
    p = _cli(a, str(tmp_path / "missing.onnx"))
    assert p.returncode == 2 and p.stderr.count("\n") == 1 and "no such file" in p.stderr
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"not a model")
    p = _cli(a, str(junk))
    assert p.returncode == 2 and p.stderr.count("\n") == 1 and p.stderr.startswith("tensorbridge: error:")
