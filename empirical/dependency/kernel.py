"""Kernel dependence measures: HSIC (Gaussian kernel) and CKA (linear or Gaussian).

Not mutual information: they are 0 at independence (HSIC with a characteristic kernel
exactly characterises independence) and are reported in the unit ``dimensionless``.
With Gram matrices ``K``, ``L`` of the two variables and ``H = I - 11^T/m``:

    HSIC(K, L) = tr(K H L H) / m^2                  (biased V-statistic, Gretton et al. 2005)
    CKA(K, L)  = HSIC(K, L) / sqrt(HSIC(K, K) HSIC(L, L))   (Kornblith et al. 2019), in [0, 1]

The Gaussian kernel is ``exp(-||a - b||^2 / (2 s^2))`` with ``s`` the median pairwise
distance within the class (the median heuristic) unless ``bandwidth`` is set
(standardised units). The Gram matrix is the prepared state, restricted to rows for
resamples and permutations.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from semirobust.empirical.dependency.estimator import (
    DependenceEstimator,
    register_estimator,
    require,
    select_square,
)

KERNELS = ("gaussian", "linear")


@dataclass(frozen=True)
class HSICSettings:
    bandwidth: float | None = None

    def __post_init__(self) -> None:
        require(
            self.bandwidth is None or (isinstance(self.bandwidth, (int, float)) and self.bandwidth > 0),
            f"hsic setting bandwidth={self.bandwidth!r}: expected a number > 0 or None (median heuristic)",
        )


@dataclass(frozen=True)
class CKASettings:
    kernel: str = "linear"
    bandwidth: float | None = None

    def __post_init__(self) -> None:
        require(self.kernel in KERNELS, f"cka setting kernel={self.kernel!r}: expected one of {', '.join(KERNELS)}")
        HSICSettings(self.bandwidth)


def gaussian_gram(x: torch.Tensor, bandwidth: float | None) -> torch.Tensor:
    """``exp(-||x_i - x_j||^2 / (2 s^2))``, ``s`` = ``bandwidth`` or the median distance."""
    squared = torch.cdist(x, x).square()
    if bandwidth is None:
        off_diagonal = squared[~torch.eye(x.shape[0], dtype=torch.bool, device=x.device)]
        scale_squared = off_diagonal.median().clamp_min(1e-12)
    else:
        scale_squared = torch.tensor(float(bandwidth) ** 2, dtype=x.dtype, device=x.device)
    return torch.exp(-squared / (2 * scale_squared))


def hsic(k: torch.Tensor, l: torch.Tensor) -> float:
    """Biased HSIC ``tr(K H L H) / m^2`` of two (m, m) Gram matrices."""
    m = k.shape[0]
    return float((_centre(k) * _centre(l)).sum()) / (m * m)


def cka(k: torch.Tensor, l: torch.Tensor) -> float:
    """``HSIC(K, L) / sqrt(HSIC(K, K) HSIC(L, L))``; 0 when either Gram is constant."""
    kc, lc = _centre(k), _centre(l)
    denominator = float(kc.square().sum().sqrt() * lc.square().sum().sqrt())
    return float((kc * lc).sum()) / denominator if denominator > 0 else 0.0


def _centre(gram: torch.Tensor) -> torch.Tensor:
    return gram - gram.mean(dim=0, keepdim=True) - gram.mean(dim=1, keepdim=True) + gram.mean()


@register_estimator
class HSIC(DependenceEstimator):
    """Hilbert-Schmidt independence criterion with Gaussian kernels (dimensionless)."""

    name = "hsic"
    information = False
    deterministic = True
    Settings = HSICSettings

    def prepare(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        return gaussian_gram(x, self.settings.bandwidth)

    def estimate(self, state_x, state_y, rows_x, rows_y) -> float:
        return hsic(select_square(state_x, rows_x), select_square(state_y, rows_y))


@register_estimator
class CKA(DependenceEstimator):
    """Centred kernel alignment (dimensionless, in [0, 1]); linear kernel by default."""

    name = "cka"
    information = False
    deterministic = True
    Settings = CKASettings

    def prepare(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        if self.settings.kernel == "linear":
            return x @ x.T
        return gaussian_gram(x, self.settings.bandwidth)

    def estimate(self, state_x, state_y, rows_x, rows_y) -> float:
        return cka(select_square(state_x, rows_x), select_square(state_y, rows_y))
