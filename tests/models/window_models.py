"""Models for the window tests: a weights-only checkpoint, a pickled module that needs trust, and a
state_dict whose architecture the user attaches (class ``Small`` below)."""
from __future__ import annotations

import math


def _small_class():
    from torch import nn

    class Small(nn.Module):
        """Conv -> BN -> ReLU -> pool -> Linear on (N, 3, 16, 16) images."""

        def __init__(self, classes: int = 4, width: int = 6):
            super().__init__()
            self.features = nn.Sequential(nn.Conv2d(3, width, 3, padding=1), nn.BatchNorm2d(width), nn.ReLU(),
                                          nn.AdaptiveAvgPool2d(1))
            self.head = nn.Linear(width, classes)

        def forward(self, x):
            return self.head(self.features(x).flatten(1))

    return Small


def __getattr__(name):
    # ``tests.models.window_models:Small`` is what the attach test types into the dialog; torch is only
    # imported when the class is asked for (the test process itself never needs it).
    if name == "Small":
        cls = _small_class()
        cls.__module__ = __name__
        cls.__qualname__ = "Small"
        globals()["Small"] = cls
        return cls
    raise AttributeError(name)


def weights_safetensors(out):
    import numpy as np
    from safetensors.numpy import save_file

    rng = np.random.default_rng(0)
    tensors = {
        "encoder.layers.0.linear.weight": rng.normal(0, 0.5, (8, 4)).astype(np.float32),
        "encoder.layers.0.linear.bias": np.linspace(-1, 1, 8, dtype=np.float32),
        "encoder.layers.1.linear.weight": rng.normal(0, 1, (8, 8)).astype(np.float32),
        "head.weight": np.arange(24, dtype=np.float32).reshape(3, 8),
    }
    save_file(tensors, out)
    return {"names": sorted(tensors), "shapes": {k: list(v.shape) for k, v in tensors.items()},
            "param_count": sum(v.size for v in tensors.values()),
            "stats": {k: {"min": float(v.min()), "max": float(v.max()), "mean": float(v.mean())}
                      for k, v in tensors.items()}}


def pickled_module(out):
    import torch

    from tests.models import window_models

    torch.manual_seed(0)
    m = window_models.Small().eval()
    torch.save(m, out)
    return {"class": "tests.models.window_models.Small"}


def small_state(out):
    import torch

    from tests.models import window_models

    torch.manual_seed(0)
    m = window_models.Small(classes=4, width=6).eval()
    sd = m.state_dict()
    torch.save(sd, out)
    ep = torch.export.export(m, (torch.randn(1, 3, 16, 16),))
    calls = sum(1 for n in ep.graph.nodes if n.op == "call_function")
    return {"spec": "tests.models.window_models:Small", "kwargs": {"classes": 4, "width": 6},
            "input_shapes": [[1, 3, 16, 16]], "keys": sorted(sd),
            "param_count": sum(math.prod(p.shape) for p in m.parameters()),
            "buffer_count": sum(math.prod(b.shape) for b in m.buffers()), "node_count": calls}


MODELS = {
    "weights.safetensors": weights_safetensors,
    "module.pt": pickled_module,
    "small_state.pth": small_state,
}
