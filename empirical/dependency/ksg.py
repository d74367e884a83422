"""Kraskov-Stoegbauer-Grassberger (KSG) mutual information, algorithm 1 (compiled on the CPU, torch on a GPU).

Kraskov, Stoegbauer, Grassberger, *Estimating mutual information*, Phys. Rev. E 69 (2004),
eq. (8): with ``eps_i`` the distance from sample ``i`` to its ``k``-th nearest neighbour
in the joint space under ``max(||dx||_inf, ||dy||_inf)``, and ``n_x(i)``, ``n_y(i)`` the
numbers of other samples strictly closer than ``eps_i`` in each marginal,

    I(X;Y) = psi(k) + psi(N) - mean_i [ psi(n_x(i) + 1) + psi(n_y(i) + 1) ]   (nats).

Each variable's Chebyshev distance matrix is the prepared state, reused by both layer
pairs a layer belongs to and by every resample. On the CPU the matrix and the neighbour
counts come from compiled kernels (:mod:`.knn_kernels`); for tensors on a GPU from
``torch.cdist(p=inf)`` on the blocks on and above the diagonal (mirrored) and batched
``topk``. Both paths give the same distances and counts, bit for bit: a maximum of absolute
differences, a ``k``-th smallest value and integer counts involve no order-dependent
rounding (the final mean may differ in the last bit, by summation order).

Ties (ReLU zeros) would make ``eps_i = 0``; ``prepare`` adds Gaussian jitter of standard
deviation ``jitter`` (standardised units, default 1e-10, as Kraskov et al. recommend).
kNN estimators fall below the truth as the dimension grows (docs/dependency.md has the
measured table): a warning is issued above ``d = 4``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from semirobust.empirical.dependency import knn_kernels
from semirobust.empirical.dependency.estimator import (
    DependenceEstimator,
    register_estimator,
    require,
    select_square,
)

#: rows of the joint distance matrix processed at once (bounds temporary memory).
ROW_CHUNK = 2048
#: rows per block of the symmetric distance computation (a block row meets only the
#: columns on and after its own diagonal block).
DISTANCE_BLOCK = 128
#: above this marginal dimension kNN estimates are known to be far below the truth.
RELIABLE_KNN_DIMENSION = 4


@dataclass(frozen=True)
class KSGSettings:
    """``k``: neighbours (Kraskov et al. use 2-4); ``jitter``: tie-breaking noise std."""

    k: int = 3
    jitter: float = 1e-10

    def __post_init__(self) -> None:
        require(isinstance(self.k, int) and self.k >= 1, f"ksg setting k={self.k!r}: expected an integer >= 1")
        require(
            isinstance(self.jitter, (int, float)) and 0 <= self.jitter < 1,
            f"ksg setting jitter={self.jitter!r}: expected a number in [0, 1)",
        )


def chebyshev_distances(x: torch.Tensor) -> torch.Tensor:
    """``D[i, j] = max_f |x[i, f] - x[j, f]|`` for the rows of ``x`` (n, d), on ``x``'s device."""
    if x.device.type == "cpu":
        return torch.from_numpy(knn_kernels.chebyshev_distances(x.detach().numpy()))
    return chebyshev_distances_torch(x)


def chebyshev_distances_torch(x: torch.Tensor) -> torch.Tensor:
    """:func:`chebyshev_distances` by ``torch.cdist`` (the path for GPU tensors).

    ``D`` is symmetric, so only the blocks ``D[I, J]`` with ``J`` from ``I``'s first row
    onwards are computed and ``D[J, I] = D[I, J]^T`` is copied: about half the work of
    one ``cdist`` for large ``n``, bit-identical to it.
    """
    n = x.shape[0]
    distances = torch.empty(n, n, dtype=x.dtype, device=x.device)
    for start in range(0, n, DISTANCE_BLOCK):
        block = torch.cdist(x[start : start + DISTANCE_BLOCK], x[start:], p=math.inf)
        rows = block.shape[0]
        distances[start : start + rows, start:] = block
        distances[start + rows :, start : start + rows] = block[:, rows:].T
    return distances


def ksg_neighbour_counts(
    dx: torch.Tensor, dy: torch.Tensor, rows_x: torch.Tensor | None, rows_y: torch.Tensor | None, k: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(n_x, n_y)`` of KSG algorithm 1 for the samples ``x[rows_x]``, ``y[rows_y]`` paired
    row by row (None: all rows in order), from the full marginal distance matrices. The
    counts are returned in an order that may differ from the rows' (the estimate is a mean)."""
    if dx.device.type == "cpu":
        every = torch.arange(dx.shape[0])
        n_x, n_y = knn_kernels.ksg_neighbour_counts(
            dx.numpy(), dy.numpy(), (every if rows_x is None else rows_x).numpy(),
            (every if rows_y is None else rows_y).numpy(), k,
        )
        return torch.from_numpy(n_x), torch.from_numpy(n_y)
    return ksg_neighbour_counts_torch(dx, dy, rows_x, rows_y, k)


def ksg_neighbour_counts_torch(
    dx: torch.Tensor, dy: torch.Tensor, rows_x: torch.Tensor | None, rows_y: torch.Tensor | None, k: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """:func:`ksg_neighbour_counts` by batched ``topk`` on the selected submatrices (the path
    for GPU tensors; the counts come in the rows' order)."""
    dx, dy = select_square(dx, rows_x), select_square(dy, rows_y)
    n = dx.shape[0]
    counts_x, counts_y = [], []
    for start in range(0, n, ROW_CHUNK):
        rows = slice(start, min(n, start + ROW_CHUNK))
        bx, by = dx[rows], dy[rows]
        joint = torch.maximum(bx, by)
        index = torch.arange(start, rows.stop, device=dx.device)
        joint[index - start, index] = math.inf
        radius = joint.topk(k, dim=1, largest=False).values[:, k - 1 :]
        self_counted = (radius > 0).to(torch.int64).squeeze(1)
        counts_x.append((bx < radius).sum(dim=1) - self_counted)
        counts_y.append((by < radius).sum(dim=1) - self_counted)
    return torch.cat(counts_x), torch.cat(counts_y)


def ksg_from_counts(n_x: torch.Tensor, n_y: torch.Tensor, k: int) -> float:
    """KSG algorithm 1 (nats): ``psi(k) + psi(N) - mean_i [psi(n_x(i) + 1) + psi(n_y(i) + 1)]``."""
    n = n_x.shape[0]
    total = (torch.digamma((n_x + 1).double()) + torch.digamma((n_y + 1).double())).sum()
    return float(_digamma(k) + _digamma(n) - total.cpu() / n)


def _digamma(value: float) -> torch.Tensor:
    return torch.special.digamma(torch.tensor(float(value), dtype=torch.float64))


@register_estimator
class KSG(DependenceEstimator):
    """KSG algorithm 1 on max-norm distances (nats)."""

    name = "ksg"
    information = True
    deterministic = True
    Settings = KSGSettings

    def prepare(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        return chebyshev_distances(self._jittered(x, generator))

    def estimate(self, state_x, state_y, rows_x, rows_y) -> float:
        return ksg_from_counts(*ksg_neighbour_counts(state_x, state_y, rows_x, rows_y, self.settings.k), self.settings.k)

    def min_samples(self, d_x: int, d_y: int) -> int:
        return self.settings.k + 1

    def dimension_warning(self, d_x: int, d_y: int, n: int) -> str | None:
        if max(d_x, d_y) > RELIABLE_KNN_DIMENSION:
            return (
                f"{self.name}: dimensions ({d_x}, {d_y}) exceed {RELIABLE_KNN_DIMENSION}; kNN "
                f"estimates fall well below the truth there (about half at d = 8 with "
                f"n = 2000, see docs/dependency.md); consider reduction='pca' (--reduction pca)"
            )
        return None

    def _jittered(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        if self.settings.jitter == 0:
            return x
        noise = torch.randn(x.shape, generator=generator, dtype=torch.float64)
        return x + self.settings.jitter * noise.to(x.device)
