"""A positive scalar factor as a layer: ``h -> c h`` with ``c > 0`` (a readout divided by
its certified Lipschitz constant, THEORY.md caveat C1).

The factor is a Python float, so a float64 copy of a network multiplies by it exactly
(bound propagation and the float64 margins), and a float32 network by its float32
rounding (attacks only search with it). Bound rules: interval (monotone), linear
relaxation (affine), Lipschitz (``c``).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from semirobust.errors import BadInput


class Scale(nn.Module):
    """``h -> factor * h`` for a finite ``factor > 0``."""

    def __init__(self, factor: float) -> None:
        super().__init__()
        factor = float(factor)
        if not (math.isfinite(factor) and factor > 0):
            raise BadInput(f"Scale factor={factor!r}: expected a finite positive number")
        self.factor = factor

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return h * self.factor

    def extra_repr(self) -> str:
        return f"factor={self.factor!r}"
