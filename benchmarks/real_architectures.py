"""Open real architectures in every format with `tensorbridge inspect` and check its figures against what
each framework itself reports. Models are built offline from the frameworks' own code (weights random).

    .venv/bin/python benchmarks/real_architectures.py [OUT_DIR] [--only NAME ...]

Prints one row per file: format detected, nodes and parameters as inspect reports them next to the
framework's own count, input/output shapes, and the wall time of the inspect command (a fresh worker).
"""
from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


# ---- torch models written in plain torch (no torchvision) ---------------------------------------------
def _torch_resnet50():
    from torch import nn

    class Bottleneck(nn.Module):
        def __init__(self, cin, mid, stride):
            super().__init__()
            cout = mid * 4
            self.conv1 = nn.Conv2d(cin, mid, 1, bias=False)
            self.bn1 = nn.BatchNorm2d(mid)
            self.conv2 = nn.Conv2d(mid, mid, 3, stride, 1, bias=False)
            self.bn2 = nn.BatchNorm2d(mid)
            self.conv3 = nn.Conv2d(mid, cout, 1, bias=False)
            self.bn3 = nn.BatchNorm2d(cout)
            self.relu = nn.ReLU(inplace=True)
            self.downsample = None
            if stride != 1 or cin != cout:
                self.downsample = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

        def forward(self, x):
            idt = x if self.downsample is None else self.downsample(x)
            y = self.relu(self.bn1(self.conv1(x)))
            y = self.relu(self.bn2(self.conv2(y)))
            y = self.bn3(self.conv3(y))
            return self.relu(y + idt)

    class ResNet50(nn.Module):
        def __init__(self, classes=1000):
            super().__init__()
            self.conv1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False)
            self.bn1 = nn.BatchNorm2d(64)
            self.relu = nn.ReLU(inplace=True)
            self.maxpool = nn.MaxPool2d(3, 2, 1)
            layers, cin = [], 64
            for i, (mid, n) in enumerate([(64, 3), (128, 4), (256, 6), (512, 3)]):
                blocks = []
                for j in range(n):
                    blocks.append(Bottleneck(cin, mid, 2 if (j == 0 and i > 0) else 1))
                    cin = mid * 4
                layers.append(nn.Sequential(*blocks))
            self.layer1, self.layer2, self.layer3, self.layer4 = layers
            self.avgpool = nn.AdaptiveAvgPool2d(1)
            self.fc = nn.Linear(2048, classes)

        def forward(self, x):
            x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
            x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
            return self.fc(self.avgpool(x).flatten(1))

    return ResNet50().eval()


def _torch_encoder():
    from torch import nn

    class Encoder(nn.Module):
        """A BERT-style encoder: token + position embeddings, 4 layers, d=256, 4 heads."""

        def __init__(self, vocab=1000, d=256, layers=4, seq=64):
            super().__init__()
            self.tok = nn.Embedding(vocab, d)
            self.pos = nn.Embedding(seq, d)
            layer = nn.TransformerEncoderLayer(d, 4, 4 * d, dropout=0.0, batch_first=True, norm_first=False)
            self.encoder = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
            self.norm = nn.LayerNorm(d)
            self.head = nn.Linear(d, 2)

        def forward(self, ids):
            import torch
            pos = torch.arange(ids.shape[1], device=ids.device).unsqueeze(0)
            return self.head(self.norm(self.encoder(self.tok(ids) + self.pos(pos)))[:, 0])

    return Encoder().eval()


def build_torch(out):
    import torch

    rows = {}
    for name, model, example in [
        ("resnet50", _torch_resnet50(), (torch.randn(1, 3, 224, 224),)),
        ("bert_like", _torch_encoder(), (torch.randint(0, 1000, (1, 64)),)),
    ]:
        sd_numel = sum(v.numel() for v in model.state_dict().values())
        ep = torch.export.export(model, example)
        p = os.path.join(out, f"{name}.pt2")
        torch.export.save(ep, p)
        calls = sum(1 for n in ep.graph.nodes if n.op == "call_function")
        rows[p] = {"nodes": calls, "params": sd_numel,
                   "inputs": [list(e.shape) for e in example]}
        p = os.path.join(out, f"{name}.pth")
        torch.save(model.state_dict(), p)
        rows[p] = {"nodes": None, "params": sd_numel, "inputs": None}
        p = os.path.join(out, f"{name}.onnx")
        torch.onnx.export(model, example, p, dynamo=True, external_data=False, optimize=True)
        rows[p] = _onnx_facts(p)
        p = os.path.join(out, f"{name}_legacy.onnx")  # names like most zoo models: /layer1/layer1.0/conv1/Conv
        torch.onnx.export(model, example, p, dynamo=False)
        rows[p] = _onnx_facts(p)
    return rows


def _onnx_facts(p):
    import onnx

    m = onnx.load(p, load_external_data=False)
    inits = {t.name for t in m.graph.initializer}
    return {"nodes": len(m.graph.node), "params": sum(math.prod(t.dims) for t in m.graph.initializer),
            "inputs": [[d.dim_value or d.dim_param for d in i.type.tensor_type.shape.dim]
                       for i in m.graph.input if i.name not in inits]}


def build_tf(out):
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras
    import tensorflow as tf

    rows = {}
    for name, model in [
        ("mobilenetv2", keras.applications.MobileNetV2(weights=None, input_shape=(224, 224, 3))),
        ("resnet50_keras", keras.applications.ResNet50(weights=None, input_shape=(224, 224, 3))),
    ]:
        # graph inputs are values, not nodes: InputLayer does not count
        layers = [l for l in model.layers if type(l).__name__ != "InputLayer"]
        facts = {"nodes": len(layers), "params": model.count_params(), "inputs": [[None, 224, 224, 3]]}
        p = os.path.join(out, f"{name}.keras")
        model.save(p)
        rows[p] = dict(facts)
        p = os.path.join(out, f"{name}.h5")
        model.save(p)
        rows[p] = dict(facts)
        p = os.path.join(out, f"{name}_savedmodel")
        model.export(p)
        rows[p] = {"nodes": None, "params": model.count_params(), "inputs": [[None, 224, 224, 3]]}
        conv = tf.lite.TFLiteConverter.from_keras_model(model)
        p = os.path.join(out, f"{name}.tflite")
        with open(p, "wb") as f:
            f.write(conv.convert())
        interp = tf.lite.Interpreter(model_path=p)
        rows[p] = {"nodes": len(interp._get_ops_details()), "params": None,
                   "inputs": [[int(x) for x in d["shape"]] for d in interp.get_input_details()]}
    return rows


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out", nargs="?", default="/tmp/tensorbridge-real")
    ap.add_argument("--skip-build", action="store_true")
    args = ap.parse_args(argv)
    os.makedirs(args.out, exist_ok=True)
    facts_path = os.path.join(args.out, "facts.json")
    if args.skip_build and os.path.exists(facts_path):
        facts = json.load(open(facts_path))
    else:
        facts = {}
        for fam in ("torch", "tf"):  # each in its own process, as the app does
            code = (f"import sys, json; sys.path.insert(0, {ROOT!r}); from benchmarks.real_architectures import build_{fam}; "
                    f"json.dump(build_{fam}({args.out!r}), open({args.out!r} + '/facts_{fam}.json', 'w'))")
            subprocess.run([sys.executable, "-c", code], check=True)
            facts.update(json.load(open(os.path.join(args.out, f"facts_{fam}.json"))))
        json.dump(facts, open(facts_path, "w"), indent=1)
    tb = [sys.executable, "-m", "app", "inspect", "--json"]
    print(f"{'file':34} {'format':16} {'nodes':>14} {'params (tb/framework)':>24} {'ok':>3} {'s':>6}")
    bad = 0
    for path, want in facts.items():
        t0 = time.perf_counter()
        r = subprocess.run(tb + [path], capture_output=True, text=True, env=dict(os.environ, PYTHONPATH=ROOT))
        dt = time.perf_counter() - t0
        name = os.path.basename(path)
        if r.returncode != 0:
            print(f"{name:34} ERROR {r.stderr.strip()[:150]}")
            bad += 1
            continue
        d = json.loads(r.stdout)
        nodes = d.get("node_count", d.get("weight_count"))
        ok_nodes = want["nodes"] is None or nodes == want["nodes"]
        ok_params = want["params"] is None or d["param_count"] == want["params"]
        ok = ok_nodes and ok_params
        bad += not ok
        want_p = "-" if want["params"] is None else format(want["params"], ",")
        print(f"{name:34} {d['format']:16} {nodes!s:>6}/{want['nodes']!s:<7} "
              f"{d['param_count']:>11,}/{want_p:<12} "
              f"{'yes' if ok else 'NO':>3} {dt:6.2f}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
