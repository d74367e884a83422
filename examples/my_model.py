"""The README's "Check your own model" example: a model written as a class with a
``forward``, as the field writes them, and a short training run that saves its weights.

The model follows semirobust's input contract: it takes images in ``[0, 1]`` and normalises
them itself (first line of ``forward``). Train and save (from the repository root)::

    python -m examples.my_model my_weights.pt

then check it::

    semirobust check --model examples.my_model:SmallResNet --weights my_weights.pt \\
        --dataset digits --split 3 --out runs/my-model
"""

from __future__ import annotations

import sys

import torch
from torch import nn
from torch.nn import functional as F


class Block(nn.Module):
    """A residual block: ``relu(x + bn(conv(relu(bn(conv(x))))))``."""

    def __init__(self, width: int):
        super().__init__()
        self.conv1 = nn.Conv2d(width, width, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, width, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        return F.relu(x + self.bn2(self.conv2(out)))


class SmallResNet(nn.Module):
    """Stem conv, two residual blocks, global average pooling, a linear head: 6 weight
    layers, for 1x8x8 images (scikit-learn's digits) with 10 classes."""

    def __init__(self, width: int = 16, num_classes: int = 10):
        super().__init__()
        self.stem = nn.Conv2d(1, width, 3, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(width)
        self.blocks = nn.Sequential(Block(width), Block(width))  # x + conv-bn-relu-conv-bn
        self.head = nn.Linear(width, num_classes)
        self.register_buffer("mean", torch.tensor(0.3))
        self.register_buffer("std", torch.tensor(0.4))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = (x - self.mean) / self.std  # the normalisation lives inside the model
        x = F.relu(self.bn(self.stem(x)))
        x = self.blocks(x)
        x = torch.flatten(F.adaptive_avg_pool2d(x, 1), 1)
        return self.head(x)


def train(epochs: int = 10, seed: int = 0) -> SmallResNet:
    """A plain training loop (Adam, cross-entropy) on semirobust's digits training split."""
    from semirobust.empirical.data import load_dataset

    torch.manual_seed(seed)
    data = load_dataset("digits")
    model = SmallResNet()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(epochs):
        model.train()
        for batch in torch.randperm(len(data.x_train)).split(64):
            optimizer.zero_grad()
            F.cross_entropy(model(data.x_train[batch]), data.y_train[batch]).backward()
            optimizer.step()
    return model.eval()


if __name__ == "__main__":
    torch.save(train().state_dict(), sys.argv[1] if len(sys.argv) > 1 else "my_weights.pt")
