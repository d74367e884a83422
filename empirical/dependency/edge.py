"""EDGE: the ensemble dependency-graph estimator of Noshad, Zeng and Hero (2019),
*Scalable mutual information estimation using dependence graphs* (ICASSP), the
estimator the paper used for rho (THEORY.md section 2). Vectorised torch implementation
written from the paper's description.

For one bucket width ``eps`` and shift ``b`` each variable is hashed coordinate-wise,
``H(x) = floor((x + b) / eps)``, after a Gaussian (2-stable) random projection to
``p = min(d, floor(log2(n / 10)))`` dimensions when ``d > p`` (locality-sensitive hashing,
as the authors do for high dimensions). The dependence graph joins the bucket of ``x_i``
to the bucket of ``y_i``; with ``N_i``, ``M_j`` the bucket counts and ``N_ij`` the edge
multiplicities, the base estimate is

    I_eps = sum_{edges (i, j)} (N_ij / N) * log( N * N_ij / (N_i * M_j) )     (nats)

which is capped at ``log N`` (every sample alone in its bucket; THEORY.md caveat C2).
The ensemble runs ``ensemble`` widths ``eps_l = width * n^(-1/(3p)) * (1 + width_range * l
/ (ensemble - 1))`` (standardised units; this project's rule, chosen so that each
variable occupies on the order of ``n^(1/3)`` buckets and the plug-in's upward bias, about
``(B_x - 1)(B_y - 1) / 2n`` for ``B`` occupied buckets, stays small) with shifts
``b_l = (l / ensemble) eps_l`` and combines them by their median (the authors' default combination in their released
code; the optimal-weight ensemble of the paper is not implemented). The only randomness
is the projection, drawn from a seeded generator, so a seed fixes the value.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from semirobust.empirical.dependency.estimator import (
    DependenceEstimator,
    register_estimator,
    require,
)
from semirobust.empirical.dependency.preprocess import standardise

COMBINATIONS = ("median", "mean")


@dataclass(frozen=True)
class EDGESettings:
    """``ensemble`` base estimators; ``width`` and ``width_range`` set the bucket widths;
    ``combine`` the ensemble rule; ``samples_per_hash_dim``: p = floor(log2(n / it))."""

    ensemble: int = 10
    width: float = 4.0
    width_range: float = 0.5
    combine: str = "median"
    samples_per_hash_dim: int = 10

    def __post_init__(self) -> None:
        require(isinstance(self.ensemble, int) and self.ensemble >= 1, f"edge setting ensemble={self.ensemble!r}: expected an integer >= 1")
        require(isinstance(self.width, (int, float)) and self.width > 0, f"edge setting width={self.width!r}: expected a number > 0")
        require(isinstance(self.width_range, (int, float)) and self.width_range >= 0, f"edge setting width_range={self.width_range!r}: expected a number >= 0")
        require(self.combine in COMBINATIONS, f"edge setting combine={self.combine!r}: expected one of {', '.join(COMBINATIONS)}")
        require(
            isinstance(self.samples_per_hash_dim, int) and self.samples_per_hash_dim >= 1,
            f"edge setting samples_per_hash_dim={self.samples_per_hash_dim!r}: expected an integer >= 1",
        )


def hash_dimension(d: int, n: int, samples_per_hash_dim: int) -> int:
    """``p = min(d, max(1, floor(log2(n / samples_per_hash_dim))))``."""
    return min(d, max(1, math.floor(math.log2(max(n / samples_per_hash_dim, 2.0)))))


def bucket_widths(settings: EDGESettings, n: int, p: int) -> torch.Tensor:
    """The ensemble's widths ``eps_l`` (standardised units)."""
    base = settings.width * n ** (-1.0 / (3 * p))
    steps = torch.arange(settings.ensemble, dtype=torch.float64) / max(settings.ensemble - 1, 1)
    return base * (1 + settings.width_range * steps)


def hash_projection(d: int, p: int, generator: torch.Generator) -> torch.Tensor | None:
    """The (d, p) Gaussian projection, or None when no projection is needed (d == p)."""
    if d == p:
        return None
    return torch.randn((d, p), generator=generator, dtype=torch.float64) / math.sqrt(d)


def bucket_codes(x: torch.Tensor, widths: torch.Tensor, ensemble: int) -> torch.Tensor:
    """(ensemble, n) integer bucket ids of the rows of ``x`` (n, p), one row per member.

    Member ``l`` hashes ``floor((x + (l / ensemble) eps_l) / eps_l)``; rows with equal
    codes share an id (:func:`bucket_ids`).
    """
    widths = widths.to(x.device)
    shifts = torch.arange(ensemble, dtype=torch.float64, device=x.device) / ensemble * widths
    codes = torch.floor((x.unsqueeze(0) + shifts.view(-1, 1, 1)) / widths.view(-1, 1, 1)).to(torch.int64)
    return bucket_ids(codes)


def bucket_ids(codes: torch.Tensor) -> torch.Tensor:
    """(L, n) bucket ids of integer hash codes (L, n, p): equal code rows of one member
    share an id, ids are distinct across members.

    Ids come from one 1-D ``unique`` of the mixed-radix key of the codes (column by
    column when that key would overflow int64): exact, no hash collisions.
    """
    members, n, _ = codes.shape
    offsets = codes - codes.amin(dim=(0, 1))
    radices = [int(r) + 1 for r in offsets.amax(dim=(0, 1)).tolist()]
    if math.prod(radices) * members < 2**62:
        key = torch.arange(members, device=codes.device).unsqueeze(1)
        for column, radix in zip(offsets.unbind(dim=2), radices):
            key = key * radix + column
        return torch.unique(key.flatten(), return_inverse=True)[1].view(members, -1)
    ids = torch.arange(members, device=codes.device).unsqueeze(1).expand(members, n)
    for column, radix in zip(offsets.unbind(dim=2), radices):
        ids = torch.unique((ids * radix + column).flatten(), return_inverse=True)[1].view(members, -1)
    return ids


def bucket_counts(ids_x: torch.Tensor, ids_y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per sample, from paired bucket ids (L, m): ``(N_i, M_j, N_ij)``, each (L, m) int64:
    the sizes of its x bucket, its y bucket, and its dependence-graph edge (the samples
    sharing both buckets) within the same ensemble member."""
    members = ids_x.shape[0]
    stride = int(max(ids_x.max(), ids_y.max())) + 1
    offsets = (torch.arange(members, device=ids_x.device) * stride).unsqueeze(1)
    ix, iy = ids_x + offsets, ids_y + offsets
    size = members * stride
    n_i = torch.bincount(ix.flatten(), minlength=size)[ix]
    m_j = torch.bincount(iy.flatten(), minlength=size)[iy]
    _, edge, n_ij = torch.unique(ix * size + iy, return_inverse=True, return_counts=True)
    return n_i, m_j, n_ij[edge]


def edge_from_codes(ids_x: torch.Tensor, ids_y: torch.Tensor, combine: str) -> float:
    """Ensemble of dependence-graph MI estimates (nats) from paired bucket ids (L, m)."""
    m = ids_x.shape[1]
    n_i, m_j, n_ij = bucket_counts(ids_x, ids_y)
    pointwise = math.log(m) + n_ij.double().log() - n_i.double().log() - m_j.double().log()
    per_member = pointwise.mean(dim=1)
    return float(per_member.quantile(0.5) if combine == "median" else per_member.mean())


@register_estimator
class EDGE(DependenceEstimator):
    """Hashing dependence-graph MI (nats), capped near ``log n``."""

    name = "edge"
    information = True
    deterministic = True
    Settings = EDGESettings

    def prepare(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        n, d = x.shape
        p = hash_dimension(d, n, self.settings.samples_per_hash_dim)
        projection = hash_projection(d, p, generator)
        if projection is not None:
            x = standardise(x @ projection.to(x.device))
        return bucket_codes(x, bucket_widths(self.settings, n, x.shape[1]), self.settings.ensemble)

    def estimate(self, state_x, state_y, rows_x, rows_y) -> float:
        ids_x = state_x if rows_x is None else state_x[:, rows_x]
        ids_y = state_y if rows_y is None else state_y[:, rows_y]
        return edge_from_codes(ids_x, ids_y, self.settings.combine)

    def min_samples(self, d_x: int, d_y: int) -> int:
        return 2 * self.settings.samples_per_hash_dim

    def dimension_warning(self, d_x: int, d_y: int, n: int) -> str | None:
        cap_bits = math.log2(n)
        return (
            f"{self.name}: values are capped near log2(n) = {cap_bits:.2f} bits at n = {n} "
            f"per class; a value near that cap says only that the layers are strongly dependent"
            if max(d_x, d_y) > hash_dimension(max(d_x, d_y), n, self.settings.samples_per_hash_dim)
            else None
        )
