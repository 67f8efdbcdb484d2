"""ViewPack: built from real files, saved, loaded again; details on demand; the open and tensor tasks."""
from __future__ import annotations


import numpy as np
import pytest

from converters.formats import load
from converters.graph import Model, Tensor, WeightEntry
from converters.jobs import Job, JobFailed, run_job
from converters.viewpack import CATEGORIES, ViewPack, build_pack, op_category


def _onnx(path):
    import onnx
    from onnx import numpy_helper

    m = onnx.load(path)
    return m, {t.name: numpy_helper.to_array(t) for t in m.graph.initializer}


def test_round_trip_and_details(model_file, tmp_path):
    mf = model_file("view_models", "synthetic_200.onnx")
    model = load(mf.path)
    built = build_pack(model, tmp_path / "pack")
    pack = ViewPack.load(tmp_path / "pack")
    m, inits = _onnx(mf.path)
    nodes = list(m.graph.node)
    assert pack.n_nodes == len(nodes) == mf.facts["node_count"]
    assert pack.names == [n.name for n in nodes]
    assert [pack.op_type(i) for i in range(pack.n_nodes)] == [n.op_type for n in nodes]
    assert pack.summary == model.summary() == built.summary
    # edges: exactly the producer -> consumer pairs of the file
    prod = {o: i for i, n in enumerate(nodes) for o in n.output}
    want = sorted((prod[v], j) for j, n in enumerate(nodes) for v in n.input if v in prod)
    assert sorted(zip(pack.edge_src.tolist(), pack.edge_dst.tolist())) == want
    # edge labels carry the inferred shape and dtype
    k = next(e for e in range(pack.n_edges) if nodes[pack.edge_src[e]].op_type == "Conv")
    assert pack.labels[pack.edge_label[k]] == "1×4×4×4 float32"
    # groups: one per block, with counts of the nodes inside
    gi = pack.group_paths.index("encoder0")
    assert pack.group_count[gi] == 18 and pack.group_labels[gi] == "encoder0"
    # details of a BatchNormalization node, read on demand
    i = pack.names.index("res0/bn1")
    d = pack.details(i)
    assert d["op_type"] == "BatchNormalization" and d["name"] == "res0/bn1" and d["scope"] == "res0"
    assert d["attrs"]["epsilon"] == pytest.approx(1e-5)
    assert [x["name"] for x in d["inputs"]] == ["res0/conv1:0"] and d["inputs"][0]["shape"] == [1, 4, 4, 4]
    assert d["outputs"] == [{"name": "res0/bn1:0", "dtype": "float32", "shape": [1, 4, 4, 4]}]
    assert [(w["name"], w["shape"]) for w in d["weights"]] == [(n, list(inits[n].shape)) for n in nodes[i].input[1:]]
    # the precomputed overview: a small graph is shown fully expanded
    assert pack.overview is not None and sorted(pack.overview.node_idx.tolist()) == list(range(pack.n_nodes))
    # the pack is compact columns, not one big JSON
    files = {p.name for p in (tmp_path / "pack").iterdir()}
    assert files == {"pack.npz", "meta.json", "details.jsonl"}
    with pytest.raises(IndexError):
        pack.details(pack.n_nodes)


def test_find_and_categories(model_file, tmp_path):
    mf = model_file("view_models", "synthetic_200.onnx")
    pack = build_pack(load(mf.path), tmp_path / "p")
    soft = pack.find("softmax")
    assert soft and all(pack.op_type(i) == "Softmax" for i in soft)
    assert len(soft) == mf.facts["encoder_blocks"]
    assert pack.find("res1/conv2")[0] == pack.names.index("res1/conv2")
    assert pack.find("no such thing") == []
    cats = {pack.op_type(i): pack.category(i) for i in range(pack.n_nodes)}
    assert cats["Conv"] == "conv" and cats["MatMul"] == "linear" and cats["Relu"] == "activation"
    assert cats["LayerNormalization"] == "norm" and cats["Softmax"] == "attention" and cats["Reshape"] == "shape"
    assert CATEGORIES[op_category("FULLY_CONNECTED")] == "linear"      # TFLite names too
    assert CATEGORIES[op_category("Conv2D")] == "conv"


def test_large_graph_overview_is_collapsed(model_file, tmp_path):
    mf = model_file("view_models", "synthetic_5000.onnx")
    pack = build_pack(load(mf.path), tmp_path / "p")
    ov = pack.overview
    assert ov.n_drawn <= 1000 and len(ov.box_idx) > 0
    assert len(ov.node_idx) < pack.n_nodes


def test_weights_only_pack(tmp_path):
    ws = [WeightEntry("a.weight", Tensor("a.weight", "float32", (4, 3))),
          WeightEntry("a.bias", Tensor("a.bias", "float32", (4,)))]
    pack = build_pack(Model("safetensors", "/x.safetensors", weights=ws), tmp_path / "w")
    again = ViewPack.load(tmp_path / "w")
    assert again.weights_only and again.n_nodes == 0 and again.overview is None
    assert again.weights == [{"name": "a.weight", "dtype": "float32", "shape": [4, 3]},
                             {"name": "a.bias", "dtype": "float32", "shape": [4]}]
    assert pack.summary["weight_count"] == 2


def test_damaged_pack_is_a_one_line_error(tmp_path):
    from converters.errors import CorruptFile

    (tmp_path / "meta.json").write_text("{")
    with pytest.raises(CorruptFile, match="open the model again"):
        ViewPack.load(tmp_path)


def test_open_task_in_a_worker_with_quick_overview(model_file):
    mf = model_file("view_models", "synthetic_200.onnx")
    events = []
    job = Job("open", {"path": mf.path, "options": {"quick_overview": True}}, on_event=events.append).start()
    res = job.wait(120)
    assert res["node_count"] == mf.facts["node_count"] and res["format"] == "onnx"
    assert res["weights_only"] is False and "inputs" in res and "param_count" in res
    quick = [e for e in events if e.kind == "overview"]
    assert len(quick) == 1
    first, full = ViewPack.load(quick[0].data["pack_dir"]), ViewPack.load(res["pack_dir"])
    # the structure-only pack has the same nodes, groups and edges as the full one, without details
    assert first.names == full.names and first.group_paths == full.group_paths
    assert np.array_equal(first.node_group, full.node_group) and np.array_equal(first.edge_src, full.edge_src)
    assert first.details(0).get("partial") is True and "partial" not in full.details(0)
    assert full.details(0)["weights"]
    job.cleanup()


def test_open_weights_only_in_a_worker(model_file):
    mf = model_file("view_models", "weights.safetensors")
    res, job = run_job("open", {"path": mf.path}, timeout=120)
    assert res["weights_only"] is True
    pack = ViewPack.load(res["pack_dir"])
    got = {w["name"]: {"dtype": w["dtype"], "shape": w["shape"]} for w in pack.weights}
    assert got == mf.facts["weights"]
    job.cleanup()


def test_tensor_task_stats_and_histogram(model_file):
    mf = model_file("view_models", "synthetic_200.onnx")
    _, inits = _onnx(mf.path)
    want = inits["res0/conv1/W"].astype(np.float64)
    res, job = run_job("tensor", {"path": mf.path, "name": "res0/conv1/W", "bins": 16}, timeout=120)
    assert res["shape"] == list(want.shape) and res["dtype"] == "float32"
    assert res["stats"]["min"] == pytest.approx(want.min(), rel=1e-6)
    assert res["stats"]["max"] == pytest.approx(want.max(), rel=1e-6)
    assert res["stats"]["mean"] == pytest.approx(want.mean(), rel=1e-5, abs=1e-7)
    counts, edges = np.histogram(want.ravel(), bins=16)
    assert res["histogram"]["counts"] == counts.tolist()
    assert res["histogram"]["edges"] == pytest.approx(edges.tolist())
    job.cleanup()
    with pytest.raises(JobFailed, match="no stored weight named 'nope'") as err:
        run_job("tensor", {"path": mf.path, "name": "nope"}, timeout=120)
    assert "\n" not in str(err.value)
