"""Hugging Face transformers models, built offline from small configs, through the real commands."""
from __future__ import annotations

import pytest

from converters.formats import load
from converters.jobs import run_job

transformers = pytest.importorskip("transformers")  # a declared dependency: the import must work


@pytest.fixture(scope="module")
def hf(tmp_path_factory):
    import torch
    from transformers import BertConfig, BertModel, GPT2Config, GPT2LMHeadModel

    d = tmp_path_factory.mktemp("hf")
    torch.manual_seed(0)
    ids = torch.randint(0, 100, (1, 8))
    bert = BertModel(BertConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
                                vocab_size=100, max_position_embeddings=64)).eval()
    torch.export.save(torch.export.export(bert, (ids,)), d / "bert.pt2")
    gpt2 = GPT2LMHeadModel(GPT2Config(n_embd=32, n_layer=2, n_head=2, vocab_size=100, n_positions=64,
                                      use_cache=False)).eval()
    torch.export.save(torch.export.export(gpt2, (ids,)), d / "gpt2.pt2")
    torch.save(gpt2.state_dict(), d / "gpt2_state.pt")
    counts = {name: (sum(p.numel() for p in m.parameters()), sum(b.numel() for b in m.buffers()))
              for name, m in (("bert", bert), ("gpt2", gpt2))}
    return d, counts


def test_transformers_pt2_compares_and_converts_without_trust(hf, tmp_path):
    d, _ = hf
    src = str(d / "bert.pt2")
    same, job = run_job("compare", {"a": src, "b": src, "repeats": 1})
    job.cleanup()
    assert same["passed"] is True
    out = str(tmp_path / "bert.onnx")
    res, job = run_job("convert", {"src": src, "to": "onnx", "out": out, "options": {}})
    job.cleanup()
    # the ONNX outputs keep the names of transformers' output class
    assert [v.name for v in load(out).graph.output_values] == ["last_hidden_state", "pooler_output"]
    cmp, job = run_job("compare", {"a": src, "b": out, "repeats": 1, "capture_map": True})
    job.cleanup()
    assert cmp["passed"] is True and not [w for w in cmp.get("warnings", []) if "by position" in w]
    assert max(o["max_abs"] for o in cmp["outputs"]) < 1e-4


@pytest.mark.parametrize("name", ["bert", "gpt2"])
def test_parameter_counts_match_torch(hf, name):
    d, counts = hf
    m = load(str(d / f"{name}.pt2"))
    assert (m.param_count, m.buffer_count) == counts[name]


def test_tied_weights_in_a_state_dict_are_counted_once(hf):
    d, counts = hf
    m = load(str(d / "gpt2_state.pt"))
    names = {w.name: w.tensor for w in m.weights}
    assert names["lm_head.weight"].alias_of == "transformer.wte.weight"
    assert (m.param_count, m.buffer_count) == counts["gpt2"]


def test_t5_exported_with_keyword_inputs_runs_and_converts_to_onnx(tmp_path):
    """T5 is exported with ``kwargs={"input_ids", "decoder_input_ids"}``: the program must be called by keyword,
    and torch.onnx's dynamo exporter fails on its saved strides ("Cannot view a tensor with shape [1, 8, 2, 16]
    and strides …"), so the route exports the program with the TorchScript-based exporter instead."""
    from tests.models.zoo_models import hf_t5

    src = str(tmp_path / "t5.pt2")
    hf_t5(src)
    same, job = run_job("compare", {"a": src, "b": src, "repeats": 1})
    job.cleanup()
    assert same["passed"] is True, same
    out = str(tmp_path / "t5.onnx")
    res, job = run_job("convert", {"src": src, "to": "onnx", "out": out, "options": {}})
    job.cleanup()
    assert any("TorchScript-based exporter" in line for line in res.get("log") or []), res.get("log")
    cmp, job = run_job("compare", {"a": src, "b": out, "repeats": 1})
    job.cleanup()
    assert cmp["passed"] is True, cmp
    assert len(cmp["outputs"]) >= 2 and max(o["max_abs"] for o in cmp["outputs"]) < 1e-4
