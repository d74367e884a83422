"""Noise-smoothed mutual information ``I(X + sigma Z_1; Y + sigma Z_2)``, estimated by KSG.

For a deterministic layer map the true MI is infinite (THEORY.md caveat C2); adding
independent Gaussian noise of standard deviation ``sigma`` to both standardised
variables makes it finite and well-posed, and ``sigma`` is part of the quantity, so it
is recorded with every value. Noise is drawn once per (class, layer) from a seeded
generator, so a layer carries the same noise in both pairs it belongs to. For the
Gaussian pair of correlation ``r`` the smoothed MI is ``-d/2 log(1 - r^2 / (1 + sigma^2)^2)``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from semirobust.empirical.dependency.estimator import register_estimator, require
from semirobust.empirical.dependency.ksg import KSG, chebyshev_distances


@dataclass(frozen=True)
class SmoothedSettings:
    """``sigma``: noise std in standardised units; ``k``: KSG neighbours."""

    sigma: float = 0.1
    k: int = 3

    def __post_init__(self) -> None:
        require(
            isinstance(self.sigma, (int, float)) and self.sigma > 0,
            f"smoothed setting sigma={self.sigma!r}: expected a number > 0 (the noise is the definition)",
        )
        require(isinstance(self.k, int) and self.k >= 1, f"smoothed setting k={self.k!r}: expected an integer >= 1")


@register_estimator
class Smoothed(KSG):
    """KSG on noise-smoothed variables (nats)."""

    name = "smoothed"
    deterministic = True
    Settings = SmoothedSettings

    def prepare(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        noise = torch.randn(x.shape, generator=generator, dtype=torch.float64).to(x.device)
        return chebyshev_distances(x + self.settings.sigma * noise)
