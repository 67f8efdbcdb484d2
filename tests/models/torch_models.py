"""Tiny real PyTorch models and checkpoints for the torch reader tests (built by torch itself).

Every builder writes one file and returns facts read back from torch (node counts from the exported
program, parameter counts from the state dict), never numbers typed in by hand.
"""
from __future__ import annotations

import operator
import os

import torch
import torch.nn as nn


class SmallCNN(nn.Module):
    """Conv-BN-ReLU-MaxPool twice, then Linear. Input (N, 3, 32, 32) float32 -> logits (N, 10)."""

    def __init__(self, width: int = 8, classes: int = 10):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, width, 3, padding=1), nn.BatchNorm2d(width), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(width, 2 * width, 3, padding=1), nn.BatchNorm2d(2 * width), nn.ReLU(), nn.MaxPool2d(2),
        )
        self.classifier = nn.Linear(2 * width * 8 * 8, classes)

    def forward(self, x):
        return self.classifier(torch.flatten(self.features(x), 1))


class Encoder(nn.Module):
    """Two-layer transformer encoder plus a linear head. Input (N, 10, 32) -> (N, 10, 5)."""

    def __init__(self, d_model: int = 32):
        super().__init__()
        layer = nn.TransformerEncoderLayer(d_model, nhead=4, dim_feedforward=64, dropout=0.0, batch_first=True)
        self.encoder = nn.TransformerEncoder(layer, num_layers=2, enable_nested_tensor=False)
        self.head = nn.Linear(d_model, 5)

    def forward(self, x):
        return self.head(self.encoder(x))


class BasicBlock(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.relu = nn.ReLU()
        self.downsample = None
        if stride != 1 or cin != cout:
            self.downsample = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        return self.relu(self.bn2(self.conv2(out)) + identity)


class ResNetLike(nn.Module):
    """ResNet-18 layout (BasicBlock x [2, 2, 2, 2]) written in plain torch; ``width`` scales channels."""

    def __init__(self, width: int = 64, classes: int = 1000):
        super().__init__()
        self.conv1 = nn.Conv2d(3, width, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.relu = nn.ReLU()
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        chans = [width, 2 * width, 4 * width, 8 * width]
        cin = width
        for i, c in enumerate(chans):
            stride = 1 if i == 0 else 2
            setattr(self, f"layer{i + 1}", nn.Sequential(BasicBlock(cin, c, stride), BasicBlock(c, c, 1)))
            cin = c
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(cin, classes)

    def forward(self, x):
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(torch.flatten(self.avgpool(x), 1))


class Gate(nn.Module):
    def __init__(self):
        super().__init__()
        self.a = nn.Linear(4, 4)
        self.b = nn.Linear(4, 4)

    def forward(self, x, flag: bool):
        if flag:
            y = self.a(x)
        else:
            y = self.b(x)
        return y, x.sum()


class Gated(nn.Module):
    """Control flow and a ModuleList, for a scripted (not traced) TorchScript model."""

    def __init__(self):
        super().__init__()
        self.gate = Gate()
        self.blocks = nn.ModuleList([nn.Linear(4, 4) for _ in range(2)])

    def forward(self, x, flag: bool):
        y, t = self.gate(x, flag)
        for b in self.blocks:
            y = b(y)
        return y + t


class Branchy(nn.Module):
    """Data-dependent control flow through torch.cond (a higher-order op with two subgraphs)."""

    def __init__(self):
        super().__init__()
        self.a = nn.Linear(4, 4)
        self.b = nn.Linear(4, 4)

    def forward(self, x):
        return torch.cond(x.sum() > 0, lambda x: self.a(x), lambda x: self.b(x).relu(), (x,))


class HParams:
    """A custom hyper-parameter object as Lightning users store them. Unpickling it with the real class
    runs ``__setstate__``, which writes a marker file: the tests use that to prove no code ran."""

    def __init__(self, width: int, name: str, marker: str):
        self.width = width
        self.name = name
        self.marker = marker

    def __setstate__(self, state):
        self.__dict__.update(state)
        with open(state["marker"], "w") as f:
            f.write("HParams.__setstate__ ran")


class Evil:
    """Unpickling this creates a file: the stand-in for a malicious checkpoint."""

    def __init__(self, marker: str):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


def _cnn() -> SmallCNN:
    torch.manual_seed(0)
    m = SmallCNN().eval()
    # Non-trivial BN statistics so that buffers carry real data.
    with torch.no_grad():
        for mod in m.modules():
            if isinstance(mod, nn.BatchNorm2d):
                mod.running_mean.uniform_(-0.5, 0.5)
                mod.running_var.uniform_(0.5, 1.5)
                mod.num_batches_tracked.fill_(7)
    return m


def _op_count(ep) -> int:
    # The serialized program folds getitem nodes into their multi-output producers.
    return sum(1 for n in ep.graph.nodes if n.op == "call_function" and n.target is not operator.getitem)


def _target_name(t) -> str:
    # OpOverloads print as "aten.conv2d.default"; higher-order ops print bare ("cond") but live in the
    # "higher_order" namespace, which is how torch.export serializes them.
    name = str(t)
    ns = getattr(t, "namespace", None)
    return name if not ns or name.startswith(ns + ".") else f"{ns}.{name}"


def _dim(d):
    return int(d) if isinstance(d, int) or (hasattr(d, "node") and d.node.is_constant()) else str(d)


def _value_facts(fake) -> dict:
    return {"shape": [_dim(d) for d in fake.shape], "dtype": str(fake.dtype).replace("torch.", "")}


def _ep_facts(ep) -> dict:
    from torch.export.graph_signature import InputKind, OutputKind

    nodes = {n.name: n for n in ep.graph.nodes}
    inputs = [dict(name=s.arg.name, **_value_facts(nodes[s.arg.name].meta["val"]))
              for s in ep.graph_signature.input_specs if s.kind == InputKind.USER_INPUT]
    outputs = [dict(name=s.arg.name, **_value_facts(nodes[s.arg.name].meta["val"]))
               for s in ep.graph_signature.output_specs if s.kind == OutputKind.USER_OUTPUT]
    module_paths = {}
    for n in ep.graph.nodes:
        if n.op == "call_function" and n.target is not operator.getitem:
            stack = n.meta.get("nn_module_stack") or {}
            module_paths[n.name] = list(stack.values())[-1][0] if stack else ""
    return {
        "inputs": inputs,
        "outputs": outputs,
        "node_count": _op_count(ep),
        # torch's own counts: parameters, then buffers and tensor constants
        "param_count": sum(t.numel() for t in ep.parameters()),
        "buffer_count": sum(t.numel() for t in ep.buffers())
        + sum(c.numel() for c in ep.constants.values() if isinstance(c, torch.Tensor)),
        "weight_names": sorted(list(ep.state_dict) + list(ep.constants)),
        "module_paths": module_paths,
        "targets": sorted(_target_name(n.target) for n in ep.graph.nodes
                          if n.op == "call_function" and n.target is not operator.getitem),
    }


def _sd_facts(sd: dict, module=None, prefix: str = "") -> dict:
    """Facts of a state dict; parameter vs buffer from the module that made it (torch's own split), or,
    for a dict built by hand, from the dtype (integer and bool tensors cannot be parameters)."""
    if module is not None:
        params = {prefix + k for k, _ in module.named_parameters()}
    else:
        params = {k for k, v in sd.items() if v.is_floating_point() or v.is_complex()}
    return {
        "param_count": sum(v.numel() for k, v in sd.items() if k in params),
        "buffer_count": sum(v.numel() for k, v in sd.items() if k not in params),
        "weights": {k: {"shape": list(v.shape), "dtype": str(v.dtype).replace("torch.", ""),
                        "sum": float(v.double().sum()), "first": v.flatten()[:4].double().tolist()}
                    for k, v in sd.items()},
    }


def build_cnn_pt2(out: str) -> dict:
    m = _cnn()
    batch = torch.export.Dim("batch", min=1, max=64)
    ep = torch.export.export(m, (torch.randn(2, 3, 32, 32),), dynamic_shapes={"x": {0: batch}})
    torch.export.save(ep, out)
    return _ep_facts(ep)


def build_encoder_pt2(out: str) -> dict:
    torch.manual_seed(0)
    m = Encoder().eval()
    ep = torch.export.export(m, (torch.randn(2, 10, 32),))
    torch.export.save(ep, out)
    return _ep_facts(ep)


def build_resnet_pt2(out: str) -> dict:
    torch.manual_seed(0)
    m = ResNetLike(width=8, classes=10).eval()
    ep = torch.export.export(m, (torch.randn(1, 3, 64, 64),))
    torch.export.save(ep, out)
    facts = _ep_facts(ep)
    facts["conv_count"] = sum(1 for t in facts["targets"] if t == "aten.conv2d.default")
    return facts


def build_cond_pt2(out: str) -> dict:
    torch.manual_seed(0)
    ep = torch.export.export(Branchy().eval(), (torch.randn(2, 4),))
    torch.export.save(ep, out)
    facts = _ep_facts(ep)
    facts["branches"] = {n.name: sorted(_target_name(x.target) for x in getattr(ep.graph_module, n.name).graph.nodes
                                        if x.op == "call_function")
                         for n in ep.graph.nodes if n.op == "get_attr"}
    return facts


def build_cnn_torchscript(out: str) -> dict:
    m = _cnn()
    traced = torch.jit.trace(m, torch.randn(1, 3, 32, 32))
    traced.save(out)
    loaded = torch.jit.load(out, map_location="cpu")
    graph = loaded.inlined_graph
    sd = loaded.state_dict()
    return {
        "aten_ops": sorted(n.kind() for n in graph.nodes() if n.kind().startswith("aten::")),
        "input_count": len(list(graph.inputs())) - 1,  # minus self
        "output_count": len(list(graph.outputs())),
        "param_count": sum(t.numel() for t in loaded.parameters()),
        "buffer_count": sum(t.numel() for t in loaded.buffers()),
        "weight_names": sorted(sd),
    }


def build_gated_script(out: str) -> dict:
    torch.manual_seed(0)
    m = torch.jit.script(Gated().eval())
    m.save(out)
    sd = m.state_dict()
    return {"param_count": sum(t.numel() for t in m.parameters()),
            "buffer_count": sum(t.numel() for t in m.buffers()), "weight_names": sorted(sd)}


def build_module_in_dict(out: str) -> dict:
    m = _cnn()
    torch.save({"model": m, "epoch": 5}, out)  # the layout some training scripts use
    return _sd_facts(m.state_dict(), m)


def build_cnn_state_dict(out: str) -> dict:
    m = _cnn()
    sd = m.state_dict()
    torch.save(sd, out)
    return _sd_facts(sd, m)


def build_cnn_legacy(out: str) -> dict:
    m = _cnn()
    sd = m.state_dict()
    torch.save(sd, out, _use_new_zipfile_serialization=False)
    return _sd_facts(sd, m)


def build_mixed_dtypes(out: str) -> dict:
    torch.manual_seed(1)
    base = torch.randn(6, 5)
    sd = {"bf16": base.to(torch.bfloat16), "fp16": base.to(torch.float16), "i64": torch.arange(12).reshape(3, 4),
          "view": base[1:4, ::2],  # a strided view into a shared storage
          "flag": torch.tensor([True, False, True])}
    torch.save(sd, out)
    return _sd_facts(sd)


def build_lightning_ckpt(out: str) -> dict:
    m = _cnn()
    opt = torch.optim.Adam(m.parameters(), lr=1e-3)
    m.train()
    loss = m(torch.randn(2, 3, 32, 32)).square().mean()
    loss.backward()
    opt.step()
    m.eval()
    sd = {f"model.{k}": v for k, v in m.state_dict().items()}
    marker = out + ".hparams-ran"
    ckpt = {
        "epoch": 3,
        "global_step": 120,
        "pytorch-lightning_version": "2.4.0",
        "state_dict": sd,
        "optimizer_states": [opt.state_dict()],
        "lr_schedulers": [],
        "hyper_parameters": {"lr": 1e-3, "layers": [8, 16], "config": HParams(8, "cnn", marker)},
    }
    torch.save(ckpt, out)
    if os.path.exists(marker):
        os.remove(marker)
    facts = _sd_facts(sd, m, "model.")
    facts["marker"] = marker
    facts["optimizer_elements"] = sum(t.numel() for s in opt.state_dict()["state"].values()
                                      for t in s.values() if isinstance(t, torch.Tensor))
    return facts


def build_pickled_module(out: str) -> dict:
    m = _cnn()
    torch.save(m, out)
    leaves = [name for name, mod in m.named_modules() if not list(mod.children())]
    return {"param_count": sum(t.numel() for t in m.parameters()),
            "buffer_count": sum(t.numel() for t in m.buffers()), "leaf_modules": leaves,
            "class": f"{SmallCNN.__module__}.SmallCNN"}


def build_evil(out: str) -> dict:
    marker = out + ".pwned"
    torch.save(Evil(marker), out)
    return {"marker": marker}


def build_evil_legacy(out: str) -> dict:
    """The legacy torch.save stream (magic number, protocol, sys info, object, ...) with a malicious
    object where the protocol number belongs."""
    import pickle

    marker = out + ".pwned"
    with open(out, "wb") as f:
        pickle.dump(0x1950A86A20F9469CFC6C, f, protocol=2)
        pickle.dump(Evil(marker), f, protocol=2)
    return {"marker": marker}


def build_evil_nested(out: str) -> dict:
    marker = out + ".pwned"
    m = _cnn()
    sd = m.state_dict()
    torch.save({"state_dict": sd, "note": Evil(marker)}, out)
    facts = _sd_facts(sd, m)
    facts["marker"] = marker
    return facts


def build_safetensors(out: str) -> dict:
    from safetensors.torch import save_file

    m = _cnn()
    sd = {k: v.contiguous() for k, v in m.state_dict().items()}
    sd["extra.bf16"] = torch.linspace(-2, 2, 8).to(torch.bfloat16)
    save_file(sd, out, metadata={"format": "pt", "note": "tiny cnn"})
    facts = _sd_facts(sd, m)
    facts["param_count"] += 8  # extra.bf16: a float tensor outside the module, a parameter to any reader
    facts["buffer_count"] -= 8
    return facts


def _truncated(src_builder, keep: float):
    def build(out: str) -> dict:
        tmp = out + ".full"
        src_builder(tmp)
        data = open(tmp, "rb").read()
        os.remove(tmp)
        with open(out, "wb") as f:
            f.write(data[: int(len(data) * keep)])
        return {"full_size": len(data)}
    return build


MODELS = {
    "cnn.pt2": build_cnn_pt2,
    "encoder.pt2": build_encoder_pt2,
    "resnet_like.pt2": build_resnet_pt2,
    "cond.pt2": build_cond_pt2,
    "cnn_traced.pt": build_cnn_torchscript,
    "gated_script.pt": build_gated_script,
    "module_in_dict.pt": build_module_in_dict,
    "cnn_state.pth": build_cnn_state_dict,
    "cnn_legacy.pth": build_cnn_legacy,
    "mixed.pth": build_mixed_dtypes,
    "cnn_lightning.ckpt": build_lightning_ckpt,
    "cnn_module.pt": build_pickled_module,
    "evil.pt": build_evil,
    "evil_nested.pth": build_evil_nested,
    "evil_legacy.pt": build_evil_legacy,
    "cnn.safetensors": build_safetensors,
    "truncated.pt2": _truncated(build_cnn_pt2, 0.6),
    "truncated.pth": _truncated(build_cnn_state_dict, 0.5),
}
