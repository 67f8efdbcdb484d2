"""The PyTorch readers on full-size real architectures: counts checked against torch, and read times.

Builds (offline, random weights, plain torch, no torchvision) a ResNet-18 (BasicBlock x [2, 2, 2, 2],
224x224 input) and a 6-layer transformer encoder (d_model 512, 8 heads), writes each as a torch.export
.pt2, a traced TorchScript file, a state_dict .pth (zip and legacy) and .safetensors, then opens every
file with the readers in this process and prints one JSON line per file:
format, nodes and parameters next to torch's own figures, and the seconds the read took.

    .venv/bin/python benchmarks/torch_readers.py [OUT_DIR]

Exits 1 if any count disagrees with torch's.
"""
from __future__ import annotations

import json
import operator
import os
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)


def _models():
    import torch
    from torch import nn

    from tests.models.torch_models import ResNetLike

    class Encoder(nn.Module):
        def __init__(self):
            super().__init__()
            layer = nn.TransformerEncoderLayer(512, 8, 2048, dropout=0.0, batch_first=True)
            self.encoder = nn.TransformerEncoder(layer, 6, enable_nested_tensor=False)

        def forward(self, x):
            return self.encoder(x)

    torch.manual_seed(0)
    return {"resnet18": (ResNetLike(64, 1000).eval(), (torch.randn(1, 3, 224, 224),)),
            "transformer_encoder": (Encoder().eval(), (torch.randn(1, 128, 512),))}


def main(argv: list[str]) -> int:
    import torch
    from safetensors.torch import save_file

    from converters.formats import load

    out = argv[1] if len(argv) > 1 else tempfile.mkdtemp(prefix="tb-torch-bench-")
    os.makedirs(out, exist_ok=True)
    bad = 0
    for name, (model, args) in _models().items():
        t = time.perf_counter()
        ep = torch.export.export(model, args)
        export_s = time.perf_counter() - t
        sd = model.state_dict()
        want_nodes = sum(1 for n in ep.graph.nodes if n.op == "call_function" and n.target is not operator.getitem)
        want_params = sum(v.numel() for v in list(ep.state_dict.values()) + list(ep.constants.values())
                          if isinstance(v, torch.Tensor))
        sd_params = sum(v.numel() for v in sd.values())
        files = {
            f"{name}.pt2": (lambda p: torch.export.save(ep, p), want_nodes, want_params),
            f"{name}_traced.pt": (lambda p: torch.jit.trace(model, args, check_trace=False).save(p), None, sd_params),
            f"{name}.pth": (lambda p: torch.save(sd, p), None, sd_params),
            f"{name}_legacy.pth": (lambda p: torch.save(sd, p, _use_new_zipfile_serialization=False), None,
                                   sd_params),
            f"{name}.safetensors": (lambda p: save_file({k: v.contiguous() for k, v in sd.items()}, p), None,
                                    sd_params),
        }
        print(json.dumps({"model": name, "export_s": round(export_s, 2), "torch_nodes": want_nodes,
                          "torch_params": want_params}), flush=True)
        for fname, (write, nodes, params) in files.items():
            path = os.path.join(out, fname)
            write(path)
            t = time.perf_counter()
            m = load(path)
            read_s = time.perf_counter() - t
            t = time.perf_counter()
            first = m.graph.initializers if m.graph is not None else {w.name: w.tensor for w in m.weights}
            next(iter(first.values())).stats()
            stats_s = time.perf_counter() - t
            ok = m.param_count == params and (nodes is None or m.node_count == nodes)
            bad += not ok
            print(json.dumps({"file": fname, "format": m.format, "nodes": m.node_count, "want_nodes": nodes,
                              "params": m.param_count, "want_params": params, "ok": ok,
                              "read_s": round(read_s, 3), "first_weight_stats_s": round(stats_s, 4),
                              "size_mb": round(os.path.getsize(path) / 1e6, 1)}), flush=True)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
