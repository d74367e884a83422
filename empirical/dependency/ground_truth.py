"""Samples with known mutual information, for calibration and tests (THEORY.md caveat C2).

* :func:`gaussian_pair`: ``Y = r X + sqrt(1 - r^2) Z`` in ``d`` dimensions with
  ``X, Z ~ N(0, I_d)``; ``I(X; Y) = -d/2 log(1 - r^2)`` nats (:func:`gaussian_pair_mi`).
  ``r = 0`` gives independent pairs (MI 0).
* :data:`INVERTIBLE_TRANSFORMS`: per-coordinate bijections; MI is invariant under them,
  so a transformed pair keeps the Gaussian pair's MI.
* :func:`class_mixture`: classes with their own correlation; the class-conditional
  ``rho = sum_y pi(y) I(X; Y | y)`` is known exactly (:func:`class_mixture_rho`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch


def gaussian_pair_mi(d: int, r: float) -> float:
    """``-d/2 log(1 - r^2)`` nats: MI of the correlated Gaussian pair."""
    return -0.5 * d * math.log1p(-r * r)


def gaussian_pair(n: int, d: int, r: float, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` samples of ``(X, r X + sqrt(1 - r^2) Z)``, each (n, d), float64."""
    x = torch.randn((n, d), generator=generator, dtype=torch.float64)
    z = torch.randn((n, d), generator=generator, dtype=torch.float64)
    return x, r * x + math.sqrt(1 - r * r) * z


INVERTIBLE_TRANSFORMS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "cube": lambda t: t**3 + t,
    "exp": torch.exp,
    "sinh": torch.sinh,
}


def class_mixture(
    n_per_class: int, d: int, correlations: Sequence[float], generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Class ``c`` holds a Gaussian pair with correlation ``correlations[c]`` shifted by a
    class mean; returns ``(x, y, labels)`` with classes of equal size."""
    xs, ys, labels = [], [], []
    for c, r in enumerate(correlations):
        x, y = gaussian_pair(n_per_class, d, r, generator)
        xs.append(x + 3.0 * c)
        ys.append(y - 2.0 * c)
        labels.append(torch.full((n_per_class,), c, dtype=torch.int64))
    return torch.cat(xs), torch.cat(ys), torch.cat(labels)


def class_mixture_rho(d: int, correlations: Sequence[float]) -> float:
    """Exact ``sum_y pi(y) I(X; Y | y)`` (nats) of :func:`class_mixture` (equal class sizes)."""
    return sum(gaussian_pair_mi(d, r) for r in correlations) / len(correlations)
