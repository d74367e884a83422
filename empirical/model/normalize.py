"""Input normalisation as the model's first layer (inputs stay in ``[0,1]``, THEORY.md 1)."""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn


class Normalize(nn.Module):
    """``(x - mean) / std`` per channel; part of the model so attacks work in ``[0,1]``."""

    def __init__(self, mean: Sequence[float], std: Sequence[float]) -> None:
        super().__init__()
        shape = (1, len(mean), 1, 1)
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(shape))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(shape))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() == 2:
            return (x - self.mean.view(1, -1)) / self.std.view(1, -1)
        return (x - self.mean) / self.std
