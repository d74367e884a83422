"""A local lower bound of the l2 Lipschitz constant (THEORY.md section 5).

For any point ``x`` and unit ``u``, ``||J_F(x)^T u||_2 <= Lip(F)``.
:func:`local_lipschitz_lower` maximises it over ``u`` (exactly, from the full Jacobian,
when the output has at most 64 values; else by power iteration, i.e. gradient ascent of
``||J^T u||^2`` on the unit sphere from a random direction) at data points and random
points around them, and reports the largest value found. (Ascent in ``x`` itself is
useless for ReLU networks: their Jacobian is piecewise constant.)
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from semirobust.empirical.bounds.layer_rules import float64_eval_copy
from semirobust.empirical.bounds.lipschitz import LIPSCHITZ_UNIT
from semirobust.errors import BadInput
from semirobust.theory.measurement import Kind, Measurement


@dataclass(frozen=True)
class LocalLipschitzLower:
    """The largest ``||J_F(x)^T u||_2`` (unit ``u``) found; ``per_point`` holds each point's."""

    per_point: torch.Tensor
    iterations: int
    points_per_input: int
    spread: float
    seed: int

    @property
    def value(self) -> float:
        return float(self.per_point.max()) if self.per_point.numel() else 0.0

    def measurement(self, name: str = "local_lipschitz_lower") -> Measurement:
        return Measurement(
            name=name,
            value=self.value,
            interval=(self.value, self.value),
            kind=Kind.ATTACK,
            estimator="largest singular value of the local Jacobian at data points and "
            "random points around them",
            unit=LIPSCHITZ_UNIT,
            settings={
                "interval": "witnessed value: the Lipschitz constant is at least this",
                "points": int(self.per_point.numel()),
                "iterations": self.iterations,
                "points_per_input": self.points_per_input,
                "spread": self.spread,
                "seed": self.seed,
            },
        )


def local_lipschitz_lower(
    model: nn.Module,
    x: torch.Tensor,
    *,
    iterations: int = 30,
    points_per_input: int = 4,
    spread: float = 0.05,
    seed: int = 0,
    device: torch.device | str = "cpu",
) -> LocalLipschitzLower:
    """A lower bound of ``Lip(F)``: ``max ||J_F(p)^T u||_2`` over unit ``u`` (exact from the
    Jacobian for outputs of at most 64 values, else by power iteration
    ``u <- J J^T u / ||.||``, ``iterations`` steps) at each input and
    ``points_per_input - 1`` random
    points uniform in its l-inf box of radius ``spread`` (clipped to ``[0,1]``); float64 on
    ``device``."""
    if iterations < 1 or points_per_input < 1 or spread < 0:
        raise BadInput(
            f"local_lipschitz_lower: need iterations >= 1, points_per_input >= 1 and spread >= 0 "
            f"(got {iterations}, {points_per_input}, {spread})"
        )
    model64 = float64_eval_copy(model, device)
    generator = torch.Generator().manual_seed(seed)
    x = x.detach().cpu().double()
    points = [x] + [
        (
            x + spread * (2 * torch.rand(x.shape, generator=generator, dtype=torch.float64) - 1)
        ).clamp(0, 1)
        for _ in range(points_per_input - 1)
    ]
    found = torch.cat(
        [_local_norms(model64, p.to(device), iterations, generator).cpu() for p in points]
    )
    return LocalLipschitzLower(found, iterations, points_per_input, spread, seed)


JACOBIAN_OUTPUT_LIMIT = 64  # outputs up to this size: exact local norm from the full Jacobian


def _local_norms(
    model: nn.Module, x: torch.Tensor, iterations: int, generator: torch.Generator
) -> torch.Tensor:
    """Per sample ``max_{||u|| = 1} ||J(x_i)^T u||``: exactly from the full Jacobian (one
    vector-Jacobian product per output) for small outputs, else by power iteration."""
    outputs, transpose = torch.func.vjp(model, x)
    size = outputs[0].numel()
    if size <= JACOBIAN_OUTPUT_LIMIT:
        basis = torch.eye(size, dtype=torch.float64, device=x.device).view(size, *outputs.shape[1:])
        rows = [transpose(basis[k].expand_as(outputs))[0].flatten(start_dim=1) for k in range(size)]
        return torch.linalg.matrix_norm(torch.stack(rows, dim=1), ord=2).detach()
    u = torch.randn(outputs.shape, generator=generator, dtype=torch.float64).to(x.device)
    u = u / _per_sample_norm(u)
    best = torch.zeros(x.shape[0], dtype=torch.float64, device=x.device)
    for _ in range(iterations):
        (gradient,) = transpose(u)
        best = torch.maximum(best, _per_sample_norm(gradient).flatten())
        _, image = torch.func.jvp(model, (x,), (gradient,))
        u = image / _per_sample_norm(image)
    return best.detach()


def _per_sample_norm(t: torch.Tensor) -> torch.Tensor:
    return t.flatten(start_dim=1).norm(dim=1).clamp_min(1e-300).view(-1, *([1] * (t.dim() - 1)))
