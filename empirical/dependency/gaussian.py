"""Gaussian mutual information from log-determinants of sample covariances.

For jointly Gaussian ``(X, Y)``:  ``I = 1/2 (log det S_x + log det S_y - log det S_xy)``
nats. Each log-determinant of a sample covariance ``S`` (``n - 1`` degrees of freedom)
is biased; its exact expectation is

    E[log det S] = log det Sigma + sum_{i=0}^{d-1} [ psi((n-1-i)/2) + log(2/(n-1)) ]

(the Wishart log-determinant identity), and ``bias_correction=True`` subtracts that sum,
which makes the estimate unbiased for Gaussian data. For non-Gaussian data it is the MI
of the Gaussian with the same covariance: it sees linear dependence only. Eigenvalues
of ``S`` are floored at ``floor`` (standardised units) so that a deterministic linear map
(singular joint covariance, infinite true MI, THEORY.md caveat C2) gives a large finite
number, never NaN.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from semirobust.empirical.dependency.estimator import (
    DependenceEstimator,
    register_estimator,
    require,
    select_rows,
)


@dataclass(frozen=True)
class GaussianSettings:
    bias_correction: bool = True
    floor: float = 1e-12

    def __post_init__(self) -> None:
        require(isinstance(self.bias_correction, bool), f"gaussian setting bias_correction={self.bias_correction!r}: expected True or False")
        require(
            isinstance(self.floor, (int, float)) and 0 < self.floor < 1,
            f"gaussian setting floor={self.floor!r}: expected a number in (0, 1)",
        )


def log_det_bias(d: int, n: int) -> float:
    """``E[log det S] - log det Sigma`` for a ``d``-dim sample covariance from ``n`` samples."""
    i = torch.arange(d, dtype=torch.float64)
    return float((torch.special.digamma((n - 1 - i) / 2) + math.log(2.0 / (n - 1))).sum())


def gaussian_mi(x: torch.Tensor, y: torch.Tensor, *, bias_correction: bool = True, floor: float = 1e-12) -> float:
    """Gaussian MI (nats) of paired samples ``x`` (n, d_x) and ``y`` (n, d_y)."""
    n = x.shape[0]
    joint = torch.cat([x, y], dim=1)
    covariance = torch.cov(joint.T).reshape(joint.shape[1], joint.shape[1])
    d_x = x.shape[1]

    def log_det(block: torch.Tensor) -> float:
        eigenvalues = torch.linalg.eigvalsh(block).clamp_min(floor)
        value = float(eigenvalues.log().sum())
        return value - log_det_bias(block.shape[0], n) if bias_correction else value

    return 0.5 * (log_det(covariance[:d_x, :d_x]) + log_det(covariance[d_x:, d_x:]) - log_det(covariance))


@register_estimator
class Gaussian(DependenceEstimator):
    """Bias-corrected Gaussian log-det MI (nats); exact in expectation for Gaussian data."""

    name = "gaussian"
    information = True
    deterministic = True
    Settings = GaussianSettings

    def prepare(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        return x

    def estimate(self, state_x, state_y, rows_x, rows_y) -> float:
        return gaussian_mi(
            select_rows(state_x, rows_x), select_rows(state_y, rows_y),
            bias_correction=self.settings.bias_correction, floor=self.settings.floor,
        )

    def min_samples(self, d_x: int, d_y: int) -> int:
        return d_x + d_y + 2

    def dimension_warning(self, d_x: int, d_y: int, n: int) -> str | None:
        if n < 10 * (d_x + d_y):
            return (
                f"{self.name}: {n} samples per class for {d_x + d_y} joint dimensions; "
                f"covariance estimates are noisy below 10 samples per dimension"
            )
        return None
