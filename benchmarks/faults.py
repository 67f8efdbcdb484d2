"""Fault-injection suite for per-layer parity: plant one fault in a converted model, run
``compare --per-layer`` against its source, and check that the first divergence names the planted layer.

    .venv/bin/python benchmarks/faults.py [--only PATTERN] [--json out.json] [--list]

Architectures (built here from framework code, random weights): a torch CNN with BatchNorm, a torch
transformer encoder (``nn.TransformerEncoder``), a torch GRU tagger, a Hugging Face BERT from a small config,
and a Keras CNN with BatchNormalization. Routes: torch -> ONNX, ONNX -> PyTorch, ONNX -> TFLite,
torch -> TFLite (two hops, maps composed), Keras -> ONNX, and two ONNX files with no converter map (a copy
edited elsewhere). Faults: one layer's weights scaled by 5 %, a bias shifted, an activation swapped, a
softmax / transpose axis changed, a normalisation's epsilon changed.

Every fault is planted in the ONNX a route writes (or reads), so each case is "a converter got this one
layer wrong". A case *localises* when the first divergence is the planted node, or, when the planted node
has no paired tensor, the first paired layer after it. Prints one row per case and the totals.
"""
from __future__ import annotations

import argparse
import fnmatch
import json
import os
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass
from typing import Callable

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)


# ---- models ------------------------------------------------------------------------------------------

def torch_cnn(path: str) -> str:
    import torch
    from torch import nn

    class CNN(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv1, self.bn1 = nn.Conv2d(3, 16, 3, padding=1), nn.BatchNorm2d(16)
            self.conv2, self.bn2 = nn.Conv2d(16, 16, 3, padding=1), nn.BatchNorm2d(16)
            self.conv3, self.bn3 = nn.Conv2d(16, 32, 3, padding=1), nn.BatchNorm2d(32)
            self.head = nn.Linear(32, 10)

        def forward(self, x):
            x = torch.relu(self.bn1(self.conv1(x)))
            x = torch.max_pool2d(torch.relu(self.bn2(self.conv2(x))), 2)
            x = torch.relu(self.bn3(self.conv3(x)))
            return self.head(x.mean(dim=(2, 3)))

    torch.manual_seed(0)
    m = CNN().eval()
    for bn in (m.bn1, m.bn2, m.bn3):
        bn.running_mean.uniform_(-0.3, 0.3)
        bn.running_var.uniform_(0.5, 1.5)
    torch.export.save(torch.export.export(m, (torch.randn(1, 3, 16, 16),)), path)
    return path


def torch_transformer(path: str) -> str:
    import torch
    from torch import nn

    class Encoder(nn.Module):
        def __init__(self):
            super().__init__()
            self.embed = nn.Linear(12, 32)
            layer = nn.TransformerEncoderLayer(32, 4, 64, dropout=0.0, batch_first=True)
            self.encoder = nn.TransformerEncoder(layer, 2, enable_nested_tensor=False)
            self.norm = nn.LayerNorm(32)
            self.head = nn.Linear(32, 5)

        def forward(self, x):
            return self.head(self.norm(self.encoder(self.embed(x))))

    torch.manual_seed(1)
    torch.export.save(torch.export.export(Encoder().eval(), (torch.randn(1, 8, 12),)), path)
    return path


def torch_gru(path: str) -> str:
    import torch
    from torch import nn

    class Tagger(nn.Module):
        def __init__(self):
            super().__init__()
            self.proj = nn.Linear(6, 16)
            self.gru = nn.GRU(16, 16, batch_first=True)
            self.out = nn.Linear(16, 4)

        def forward(self, x):
            y, _ = self.gru(torch.tanh(self.proj(x)))
            return torch.softmax(self.out(y), dim=-1)

    torch.manual_seed(2)
    torch.export.save(torch.export.export(Tagger().eval(), (torch.randn(1, 10, 6),)), path)
    return path


def hf_bert(path: str) -> str:
    import torch
    from transformers import BertConfig, BertModel

    torch.manual_seed(3)
    cfg = BertConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
                     vocab_size=100, max_position_embeddings=64)
    m = BertModel(cfg).eval()
    torch.export.save(torch.export.export(m, (torch.randint(0, 100, (1, 8)),)), path)
    return path


def keras_cnn(path: str) -> str:
    import keras

    keras.utils.set_random_seed(4)
    x = keras.Input((16, 16, 3), name="image")
    y = keras.layers.Conv2D(16, 3, padding="same", name="conv1")(x)
    y = keras.layers.BatchNormalization(name="bn1")(y)
    y = keras.layers.ReLU(name="relu1")(y)
    y = keras.layers.Conv2D(16, 3, padding="same", name="conv2")(y)
    y = keras.layers.BatchNormalization(name="bn2")(y)
    y = keras.layers.ReLU(name="relu2")(y)
    y = keras.layers.GlobalAveragePooling2D(name="pool")(y)
    y = keras.layers.Dense(10, name="head")(y)
    m = keras.Model(x, y)
    for layer in m.layers:  # BatchNorm statistics that are not the identity
        if isinstance(layer, keras.layers.BatchNormalization):
            g, b, mean, var = layer.get_weights()
            rng = np.random.default_rng(5)
            layer.set_weights([g, b, rng.uniform(-0.3, 0.3, mean.shape).astype("float32"),
                               rng.uniform(0.5, 1.5, var.shape).astype("float32")])
    m.save(path)
    return path


MODELS: dict[str, tuple[Callable[[str], str], str]] = {
    "cnn": (torch_cnn, "cnn.pt2"), "transformer": (torch_transformer, "transformer.pt2"),
    "gru": (torch_gru, "gru.pt2"), "bert": (hf_bert, "bert.pt2"), "kcnn": (keras_cnn, "kcnn.keras"),
}


# ---- faults ------------------------------------------------------------------------------------------

def _nodes(m, op: str):
    return [n for n in m.graph.node if n.op_type == op]


def _init(m, name):
    return next((t for t in m.graph.initializer if t.name == name), None)


def _set(m, name, arr, node=None):
    """Give ``name`` the value ``arr`` for ``node`` alone: an initializer the exporter shares between layers
    (equal zero biases are deduplicated) is copied first, so the fault stays in the planted layer."""
    from onnx import numpy_helper
    t = _init(m, name)
    users = [n for n in m.graph.node if name in n.input]
    if node is not None and len(users) > 1:
        new = f"{name}__planted"
        m.graph.initializer.append(numpy_helper.from_array(arr.astype(numpy_helper.to_array(t).dtype), new))
        for k, x in enumerate(node.input):
            if x == name:
                node.input[k] = new
        return
    t.CopyFrom(numpy_helper.from_array(arr.astype(numpy_helper.to_array(t).dtype), name))


def scale_weight(op: str, k: int):
    def plant(m):
        from onnx import numpy_helper
        for n in _nodes(m, op)[k:]:
            for i in n.input[1:2] or n.input[:1]:
                t = _init(m, i)
                if t is not None and len(t.dims) >= 2:
                    _set(m, i, numpy_helper.to_array(t) * 1.05, n)
                    return n
        return None
    return f"{op}#{k} weights x1.05", plant


def shift_bias(op: str, k: int):
    def plant(m):
        from onnx import numpy_helper
        for n in _nodes(m, op)[k:]:
            cands = n.input[2:3] if op in ("Conv", "Gemm") else [i for i in n.input if _init(m, i) is not None]
            for i in cands:
                t = _init(m, i)
                if t is not None and (op in ("Conv", "Gemm") or (len(t.dims) == 1 and t.dims[0] > 1)):  # a bias vector
                    a = numpy_helper.to_array(t)
                    _set(m, i, a + 0.1 * (np.abs(a).mean() + 0.1), n)
                    return n
        return None
    return f"{op}#{k} bias shifted", plant


def swap_activation(op: str, k: int, to: str):
    def plant(m):
        from onnx import helper
        nodes = _nodes(m, op)
        if len(nodes) <= k:
            return None
        n = nodes[k]
        n.op_type = to
        del n.attribute[:]
        if to == "LeakyRelu":
            n.attribute.append(helper.make_attribute("alpha", 0.3))
        return n
    return f"{op}#{k} -> {to}", plant


def change_axis(op: str, k: int):
    def plant(m):
        from onnx import helper
        nodes = _nodes(m, op)
        if len(nodes) <= k:
            return None
        n = nodes[k]
        if op == "Softmax":
            keep = [a for a in n.attribute if a.name != "axis"]
            del n.attribute[:]
            n.attribute.extend(keep + [helper.make_attribute("axis", 1)])
        elif op == "Transpose":
            perm = list(next(a for a in n.attribute if a.name == "perm").ints)
            if len(perm) < 3:
                return None
            perm[-1], perm[-2] = perm[-2], perm[-1]
            del n.attribute[:]
            n.attribute.append(helper.make_attribute("perm", perm))
        return n
    return f"{op}#{k} axis changed", plant


def change_epsilon(op: str, k: int):
    def plant(m):
        from onnx import helper
        nodes = _nodes(m, op)
        if len(nodes) <= k:
            return None
        n = nodes[k]
        keep = [a for a in n.attribute if a.name != "epsilon"]
        del n.attribute[:]
        n.attribute.extend(keep + [helper.make_attribute("epsilon", 0.3)])
        return n
    return f"{op}#{k} epsilon 0.3", plant


FAULTS: dict[str, list] = {
    "cnn": [scale_weight("Conv", 1), shift_bias("Conv", 2), swap_activation("Relu", 1, "Sigmoid"),
            scale_weight("Gemm", 0), shift_bias("Gemm", 0), swap_activation("Relu", 0, "LeakyRelu")],
    "transformer": [scale_weight("MatMul", 2), shift_bias("Add", 3), change_epsilon("LayerNormalization", 1),
                    change_axis("Softmax", 0), swap_activation("Relu", 0, "Sigmoid"), scale_weight("Gemm", 0)],
    "gru": [scale_weight("MatMul", 0), scale_weight("GRU", 0), swap_activation("Tanh", 0, "Sigmoid"),
            change_axis("Softmax", 0), shift_bias("Add", 1)],
    "bert": [scale_weight("MatMul", 3), change_epsilon("LayerNormalization", 2), change_axis("Softmax", 0),
             shift_bias("Add", 5), swap_activation("Gelu", 0, "Relu")],
    "kcnn": [scale_weight("Conv", 1), shift_bias("Conv", 0), swap_activation("Relu", 1, "Sigmoid"),
             scale_weight("MatMul", 0)],
}

# route -> which models it takes
ROUTES = {
    "torch->onnx": ["cnn", "transformer", "gru", "bert"],
    "onnx->torch": ["cnn", "kcnn"],
    "onnx->tflite": ["cnn", "transformer"],
    "torch->tflite": ["cnn"],
    "keras->onnx": ["kcnn"],
    "onnx~onnx (no map)": ["cnn", "transformer"],
    # converted elsewhere: the converter's map is gone, layers pair by names, weights and structure
    "torch->onnx (no map)": ["cnn", "transformer", "bert"],
    "onnx->tflite (no map)": ["cnn", "transformer"],
}


@dataclass
class Case:
    route: str
    model: str
    fault: str
    plant: Callable

    @property
    def id(self) -> str:
        return f"{self.route}:{self.model}:{self.fault}"


def cases() -> list[Case]:
    out = []
    for route, models in ROUTES.items():
        for model in models:
            for name, plant in FAULTS[model]:
                if route.startswith(("onnx->tflite", "onnx->torch", "torch->tflite")) and "Softmax" in name \
                        and model == "gru":
                    continue
                out.append(Case(route, model, name, plant))
    return out


# ---- running -----------------------------------------------------------------------------------------

def _convert(src: str, target: str, out: str) -> str:
    from converters.jobs import run_job

    _, job = run_job("convert", {"src": src, "to": target, "out": out, "options": {}}, timeout=600)
    job.cleanup()
    return out


def _compare(a: str, b: str) -> dict:
    from converters.jobs import run_job

    res, job = run_job("compare", {"a": a, "b": b, "repeats": 1, "per_layer": True}, timeout=600)
    job.cleanup()
    return res


def _allowed(model, planted, paired_onnx: set[str]) -> set[str]:
    """ONNX tensors a correct first divergence may name: the planted node's outputs and, if those are not
    paired, the first paired tensors below it."""
    out = set(planted.output)
    if out & paired_onnx:
        return out & paired_onnx
    frontier, seen = list(planted.output), set(planted.output)
    consumers: dict[str, list] = {}
    for n in model.graph.node:
        for i in n.input:
            consumers.setdefault(i, []).append(n)
    hits: set[str] = set()
    while frontier:
        v = frontier.pop()
        for n in consumers.get(v, []):
            for o in n.output:
                if o in seen:
                    continue
                seen.add(o)
                if o in paired_onnx:
                    hits.add(o)
                else:
                    frontier.append(o)
    return hits


def run_case(case: Case, work: str, built: dict) -> dict:
    import onnx

    from converters.tbmap import read_map

    t0 = time.perf_counter()
    d = os.path.join(work, case.id.replace(":", "_").replace(" ", "_").replace(">", "").replace("#", "").replace("~", "_"))
    os.makedirs(d, exist_ok=True)
    src = built[case.model]
    rec = {"case": case.id, "route": case.route, "model": case.model, "fault": case.fault}
    # the clean ONNX of the model (the route's own hop)
    onnx_src = built.get(case.model + ".onnx")
    if onnx_src is None:
        onnx_src = built[case.model + ".onnx"] = _convert(src, "onnx", os.path.join(work, f"{case.model}.onnx"))
    bad = onnx.load(onnx_src)
    planted = case.plant(bad)
    if planted is None:
        rec.update(ok=False, why="no such node to plant the fault in")
        return rec
    rec["planted"] = planted.name or planted.output[0]
    bad_onnx = os.path.join(d, "planted.onnx")
    onnx.save(bad, bad_onnx)
    if case.route in ("torch->onnx", "keras->onnx"):
        shutil.copy(onnx_src + ".tbmap.json", bad_onnx + ".tbmap.json")  # the map of the clean conversion
        a, b = src, bad_onnx
    elif case.route == "torch->onnx (no map)":
        a, b = src, bad_onnx
    elif case.route == "onnx->tflite (no map)":
        clean = os.path.join(d, "model.onnx")
        shutil.copy(onnx_src, clean)
        b = _convert(bad_onnx, "tflite", os.path.join(d, "planted.tflite"))
        os.remove(b + ".tbmap.json")
        a = clean
    elif case.route == "onnx~onnx (no map)":
        clean = os.path.join(d, "model.onnx")
        shutil.copy(onnx_src, clean)
        a, b = clean, bad_onnx
    elif case.route in ("onnx->torch", "onnx->tflite"):
        target = "torch" if case.route.endswith("torch") else "tflite"
        clean = os.path.join(d, "model.onnx")
        shutil.copy(onnx_src, clean)
        b = _convert(bad_onnx, target, os.path.join(d, "planted." + ("pt2" if target == "torch" else "tflite")))
        m = read_map(b)  # written for planted.onnx: say it was written for the clean one (same names)
        m.source["path"] = clean
        m.write(b + ".tbmap.json")
        a = clean
    else:  # torch -> tflite: clean torch -> ONNX map, then the planted ONNX -> TFLite map
        b = _convert(bad_onnx, "tflite", os.path.join(d, "planted.tflite"))
        first, second = read_map(onnx_src), read_map(b)
        m = first.compose(second)
        m.source["path"] = src
        m.write(b + ".tbmap.json")
        a = src
    res = _compare(a, b)
    rec["seconds"] = round(time.perf_counter() - t0, 1)
    rec["passed"] = res.get("passed")
    layers = res.get("layers") or []
    first = res.get("layer_first")
    rec["layers"] = len(layers)
    rec["counts"] = res.get("layer_counts")
    if res.get("error"):
        rec.update(ok=False, why=res["error"])
        return rec
    if first is None:
        rec.update(ok=False, why="no first divergence found" + (" (outputs match: the fault is invisible on these "
                                                                "inputs)" if res.get("passed") else ""))
        return rec
    rec["first"] = {"a": first["a"], "b": first["b"], "op": first["op"], "status": first["status"]}
    # the first divergence and every paired layer, in the planted ONNX's names
    to_onnx = _onnx_names(case, a, b, onnx_src)
    paired = {to_onnx(r) for r in layers if r["status"] != "missing"} - {None}
    allowed = _allowed(bad, planted, paired)
    got = to_onnx(first)
    rec["first_onnx"] = got
    rec["ok"] = got in allowed
    if not rec["ok"]:
        rec["why"] = f"first divergence at ONNX '{got}', planted '{rec['planted']}' (allowed {sorted(allowed)[:3]})"
    downstream = [r for r in layers if r["index"] > first["index"] and r["status"] not in ("missing", "ok")]
    rec["downstream_inherited"] = all(r["status"] == "inherited" for r in downstream)
    return rec


def _onnx_names(case: Case, a: str, b: str, onnx_src: str) -> Callable[[dict], str | None]:
    """A layer result -> the ONNX tensor it stands for, in the planted model's names."""
    from converters.tbmap import read_map

    if case.route in ("torch->onnx", "keras->onnx", "torch->onnx (no map)"):
        return lambda r: r["b"]
    if case.route in ("onnx~onnx (no map)", "onnx->torch", "onnx->tflite", "onnx->tflite (no map)"):
        return lambda r: r["a"]
    first = {e.source: e.target for e in read_map(onnx_src).tensors}  # torch -> ONNX

    def name(r):
        return first.get(r["a"], r["a"] if r["method"] == "name" else None) or r["a"]
    return name


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--only", action="append", default=[], help="glob over 'route:model:fault'")
    p.add_argument("--json", default=None)
    p.add_argument("--list", action="store_true")
    p.add_argument("--work", default=None)
    args = p.parse_args(argv)
    todo = [c for c in cases() if not args.only or any(fnmatch.fnmatch(c.id, f"*{o}*") for o in args.only)]
    if args.list:
        for c in todo:
            print(c.id)
        print(f"{len(todo)} cases")
        return 0
    work = args.work or tempfile.mkdtemp(prefix="faults-")
    os.makedirs(work, exist_ok=True)
    built: dict[str, str] = {}
    rows = []
    try:
        for m in sorted({c.model for c in todo}):
            fn, fname = MODELS[m]
            built[m] = fn(os.path.join(work, fname))
        for c in todo:
            try:
                rec = run_case(c, work, built)
            except Exception as exc:  # a case that cannot run is a miss, with why
                rec = {"case": c.id, "route": c.route, "model": c.model, "fault": c.fault, "ok": False,
                       "why": f"{type(exc).__name__}: {str(exc)[:200]}"}
            rows.append(rec)
            mark = "ok  " if rec.get("ok") else "MISS"
            print(f"{mark} {c.id:60} {rec.get('first_onnx') or '-':30} {rec.get('seconds', '')}"
                  + ("" if rec.get("ok") else f"  ! {rec.get('why')}"), flush=True)
            if args.json:
                with open(args.json, "w") as f:
                    json.dump(rows, f, indent=1)
    finally:
        if not args.work:
            shutil.rmtree(work, ignore_errors=True)
    ok = sum(1 for r in rows if r.get("ok"))
    inh = sum(1 for r in rows if r.get("ok") and r.get("downstream_inherited"))
    print(f"\n{ok} of {len(rows)} cases localised to the planted layer ({100 * ok / max(len(rows), 1):.0f} %); "
          f"in {inh} of them every failing layer after the first is marked inherited")
    by_route: dict[str, list] = {}
    for r in rows:
        by_route.setdefault(r["route"], []).append(r)
    for route, rs in by_route.items():
        print(f"  {route:22} {sum(1 for r in rs if r.get('ok'))}/{len(rs)}")
    return 0 if ok == len(rows) else 1


if __name__ == "__main__":
    sys.exit(main())
