"""Regenerate the bundled sample models (small enough to commit): ``python resources/samples/make_samples.py``.

tiny_cnn.onnx — a small residual CNN (Conv-BN-ReLU stem, one residual block, pooling, classifier),
exported by torch.onnx (dynamo exporter) so every node carries its module scope.
"""
from __future__ import annotations

import os

import torch
from torch import nn

HERE = os.path.dirname(os.path.abspath(__file__))


class Block(nn.Module):
    def __init__(self, c: int):
        super().__init__()
        self.conv1 = nn.Conv2d(c, c, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(c)
        self.relu = nn.ReLU()
        self.conv2 = nn.Conv2d(c, c, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(c)

    def forward(self, x):
        y = self.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        return self.relu(x + y)


class TinyCNN(nn.Module):
    def __init__(self, classes: int = 10):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 16, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(16), nn.ReLU())
        self.block1 = Block(16)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(16, 32), nn.ReLU(), nn.Linear(32, classes))

    def forward(self, image):
        return self.head(self.pool(self.block1(self.stem(image))))


def main() -> None:
    torch.manual_seed(0)
    model = TinyCNN().eval()
    for m in model.modules():  # non-trivial BN statistics so the numbers mean something
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-0.2, 0.2)
            m.running_var.uniform_(0.5, 1.5)
    x = torch.randn(1, 3, 32, 32)
    out = os.path.join(HERE, "tiny_cnn.onnx")
    torch.onnx.export(model, (x,), out, input_names=["image"], output_names=["logits"],
                      dynamo=True, external_data=False, optimize=True)
    print("wrote", out, os.path.getsize(out), "bytes")


if __name__ == "__main__":
    main()
