"""EDGE as its authors released it: the construction of Noshad, Zeng and Hero's
``EDGE_4_4_1.py`` (github.com/mrtnoshad/EDGE), the file the semirobustness paper's code
ships as its MI estimator and calls once per class as ``EDGE(h_prev, h_next,
normalize_epsilon=False, L_ensemble=1, stochastic=True)``. Written here from that
construction, vectorised in torch; the defaults are the paper's call, and they give
the readings of the authors' code recorded in docs/dependency.md. :mod:`.edge` is this project's own EDGE.

One estimate of ``I(X; Y)``, ``X`` (N, d_x), ``Y`` (N, d_y), in bits:

1. Hashed coordinates. If ``d_x <= 6`` and ``d_y <= 6``: the coordinates themselves
   (floor hashing, ``p = d``). Otherwise both variables are projected (p-stable hashing)
   to ``p = min(d, floor(log2(N / 10)))`` dimensions, ``X W`` and ``Y V`` with
   ``W_fc = z_fc / (s_f sqrt(d_x))``: ``s_f`` the feature's standard deviation over the
   N rows (population; 1 where below 1e-4) and ``z`` standard normals from numpy's
   legacy generator seeded 3334, ``d_x p_x`` draws for ``W`` (row-major), then the next
   ``d_y p_y`` for ``V``.
2. Bandwidth of each hashed coordinate: the mean, over 500 rows drawn with replacement
   (numpy's legacy generator reseeded with 3334 for every coordinate, so the same rows
   each time), of the distance to the row's k-th nearest value in the column (the row
   itself counts, at distance 0), plus 1e-4; ``k = floor(0.43 N^(2/3 + 0.17 p/(p+1))
   exp(-1/max(10^4, p^4)))``.
3. Widths ``eps0 = bandwidth * c * gamma``, ``c = 18 p / max(1 + ln d, 1)``,
   ``gamma = 0.4 * settings.gamma``.
4. Member ``l = 0..L-1``: ``eps_l = eps0 T_l``, ``T = linspace(1, 1 + width_range, L)``;
   shift ``b_l = 0.1 u_l eps_l`` with ``u_l ~ U[0, 1)^p`` (``shifts="random"``, the
   authors' ``stochastic=True``) or ``b_l = (l / L) eps_l`` (``"grid"``). Hash
   ``H(x) = floor((x + b_l) / eps_l)`` per coordinate.
5. Dependence graph: with ``N_i``, ``M_j`` the sizes of a sample's buckets and ``N_ij``
   the number of samples sharing both,

       I_l = (1/N) sum_edges N_ij clip(log2(N N_ij / (N_i M_j)), 0.001, U)     (bits),

   the mean over samples of the clipped pointwise term: at least 0.001 bits, at most
   ``min(U, log2 N)``.
6. ``I = median_l I_l``.
7. ``normalize_epsilon``: ``gamma <- 0.4 (gamma 2^(-sqrt(2 I) + 0.5 / I))`` and steps 3-6
   once more (the authors' recursion applies the factor 0.4 a second time).

Where this differs from running the authors' file (docs/dependency.md):

* Input. Like the authors' code, and unlike the project's other estimators, it sees
  each class's raw activations (``standardised_input = False``), constant features
  included: its values are not invariant to per-feature offsets. At n = 1000 the widths
  are 1.5 (d = 512) to 4 (d = 8) standard deviations of a hashed coordinate, so each
  coordinate spans two to four buckets and where the grid's boundaries fall matters:
  adding 5 to every feature of a centred Gaussian pair (d = 8, r = 0.8) moved the
  paper's call from 1.82 to 0.72 bits. Nor to small scales: the standard-deviation floor
  and the bandwidth offset are absolute (1e-4), so ReLU activations that vary by less
  than about 1e-4 fall into one bucket and read the clip floor.
  Activations are taken in float64 (the authors' are float32, so their standard
  deviations are rounded to float32: relative differences near 1e-7 in the projections).
  A class in which a layer is constant contributes 0 (the project's rule), where the
  authors' code reads 0.001 bits (one bucket; the clip floor).
* Random draws. ``W``, ``V`` and the bandwidth rows reproduce numpy's draws exactly
  (``numpy.random.RandomState(3334)``). The shifts ``u`` do not: the authors reseed numpy
  from the operating system's entropy for them (``np.random.seed()``), so their values
  are not reproducible; here ``u`` comes from the project's seeded stream (the
  ``prepare`` generator of the class and layer, :mod:`.seeding`), so a seed fixes the
  value, and a value is one draw of the authors' distribution.
* Rows. A half-sample or permutation reruns the whole construction on the rows it uses
  (standard deviations, ``p``, ``k`` and bandwidths included), as calling the authors'
  function on those rows would.
* Units. Like every information estimator, :meth:`AuthorsEDGE.estimate` returns nats
  (``I ln 2``); reports convert to bits, so the clip is ``[0.001, U]`` bits exactly.
* Not implemented: user-given epsilons, the ``average`` and cvxpy ``optimal_weights``
  ensembles, t-SNE hashing (none is used by the paper's call).

``V``'s draws follow ``W``'s, so a layer's projection depends on its partner:
:meth:`AuthorsEDGE.prepare` keeps the activations and their shift draws, and
:meth:`AuthorsEDGE.estimate` does the rest per pair.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import torch

from semirobust.empirical.dependency.edge import bucket_counts, bucket_ids
from semirobust.empirical.dependency.estimator import (
    DependenceEstimator,
    register_estimator,
    require,
    select_rows,
)

#: numpy's legacy seed for the projection and the bandwidth rows (the authors' 3334).
AUTHORS_SEED = 3334
#: floor hashing when both variables have at most this many features.
FLOOR_HASH_MAX_DIM = 6
#: ``p = floor(log2(N / ROWS_PER_HASH_DIM))`` projected dimensions.
ROWS_PER_HASH_DIM = 10
#: a standard deviation below this is taken as 1 in the projection.
STD_FLOOR = 1e-4
#: rows drawn (with replacement) for the kNN bandwidth, and the bandwidth's offset.
BANDWIDTH_ROWS = 500
BANDWIDTH_OFFSET = 1e-4
#: ``c = WIDTH_FACTOR p / max(1 + ln d, 1)``; ``gamma`` is scaled by GAMMA_FACTOR per pass.
WIDTH_FACTOR = 18.0
GAMMA_FACTOR = 0.4
#: random shifts are ``SHIFT_FRACTION u eps``, ``u ~ U[0, 1)``.
SHIFT_FRACTION = 0.1
#: the lower clip of every pointwise term (bits).
CLIP_FLOOR_BITS = 0.001
SHIFTS = ("random", "grid")


@dataclass(frozen=True)
class AuthorsEDGESettings:
    """The authors' arguments; defaults are the semirobustness paper's call.

    ``ensemble``: ``L_ensemble`` (paper 1; the authors' default 10). ``width_range``:
    ``eps_range_factor`` (0.1; 0 is their ``epsilon_vector="fixed"``). ``shifts``:
    ``"random"`` (``stochastic=True``, the paper) or ``"grid"`` (``False``, the authors'
    default). ``normalize_epsilon``: the second pass (paper False; the authors' default
    True). ``gamma``: smoothness of both variables (1.0). ``upper``: ``U``, the upper
    clip of the pointwise term in bits (10).
    """

    ensemble: int = 1
    width_range: float = 0.1
    shifts: str = "random"
    normalize_epsilon: bool = False
    gamma: float = 1.0
    upper: float = 10.0

    def __post_init__(self) -> None:
        require(isinstance(self.ensemble, int) and not isinstance(self.ensemble, bool) and self.ensemble >= 1,
                f"edge-authors setting ensemble={self.ensemble!r}: expected an integer >= 1")
        require(_is_number(self.width_range) and self.width_range >= 0,
                f"edge-authors setting width_range={self.width_range!r}: expected a number >= 0")
        require(self.shifts in SHIFTS, f"edge-authors setting shifts={self.shifts!r}: expected one of {', '.join(SHIFTS)}")
        require(isinstance(self.normalize_epsilon, bool),
                f"edge-authors setting normalize_epsilon={self.normalize_epsilon!r}: expected true or false")
        require(_is_number(self.gamma) and self.gamma > 0,
                f"edge-authors setting gamma={self.gamma!r}: expected a number > 0")
        require(_is_number(self.upper) and self.upper > CLIP_FLOOR_BITS,
                f"edge-authors setting upper={self.upper!r}: expected a number of bits > {CLIP_FLOOR_BITS}")

    @property
    def passes(self) -> int:
        return 2 if self.normalize_epsilon else 1


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def floor_hashing(d_x: int, d_y: int) -> bool:
    """Whether both variables are hashed on their own coordinates (no projection)."""
    return max(d_x, d_y) <= FLOOR_HASH_MAX_DIM


def hashed_dimension(n: int, d: int, floor: bool) -> int:
    """``p``: ``d`` under floor hashing, else ``min(d, floor(log2(n / 10)))``; at least 1
    for ``n >= 20``. (The authors write ``math.log(n / 10, 2)``, i.e. ``ln x / ln 2``; its
    floor equals ``floor(log2 x)`` here: ``x = n / 10`` is far from a power of two unless it
    is one, and for ``x = 2^k``, k < 1000, Python's ``log(x, 2)`` gives k exactly, checked.)"""
    return d if floor else min(d, math.floor(math.log2(n / ROWS_PER_HASH_DIM)))


@functools.lru_cache(maxsize=16)
def authors_normals(d_x: int, p_x: int, d_y: int, p_y: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The standard normals of ``W`` (d_x, p_x) and ``V`` (d_y, p_y): numpy's legacy
    generator seeded 3334, ``W``'s draws first. Cached; callers must not modify them."""
    z = np.random.RandomState(AUTHORS_SEED).standard_normal(d_x * p_x + d_y * p_y)
    w, v = z[: d_x * p_x].reshape(d_x, p_x), z[d_x * p_x :].reshape(d_y, p_y)
    return torch.from_numpy(w), torch.from_numpy(v)


def p_stable_projection(x: torch.Tensor, normals: torch.Tensor) -> torch.Tensor:
    """``x W`` with ``W_fc = z_fc / (s_f sqrt(d))``, ``s_f`` the population standard
    deviation of feature ``f`` over the rows of ``x`` (1 where below 1e-4)."""
    std = x.std(dim=0, unbiased=False)
    std = torch.where(std < STD_FLOOR, torch.ones_like(std), std)
    sigma = 1.0 / (std * math.sqrt(x.shape[1]))
    return x @ (normals.to(x.device) * sigma.unsqueeze(1))


def bandwidth_rows(n: int) -> torch.Tensor:
    """The 500 row indices (with replacement) numpy's ``choice`` draws after ``seed(3334)``."""
    return torch.from_numpy(np.random.RandomState(AUTHORS_SEED).choice(n, size=BANDWIDTH_ROWS))


def knn_neighbours(n: int, p: int) -> int:
    """``k = floor(0.43 n^(2/3 + 0.17 p/(p+1)) exp(-1/max(10^4, p^4)))``."""
    return math.floor(0.43 * n ** (2 / 3 + 0.17 * (p / (p + 1))) * math.exp(-1.0 / max(10000, p**4)))


def knn_bandwidths(h: torch.Tensor) -> torch.Tensor:
    """(p,) per hashed coordinate: the mean over :func:`bandwidth_rows` of the distance to
    the row's k-th nearest value in the column (itself included), plus 1e-4.

    In one dimension the k nearest values of a sample ``t`` fill a window of ``k``
    consecutive sorted values that contains ``t``, so the k-th distance is the least, over
    the ``k`` such windows, of ``max(t - s_lo, s_{lo+k-1} - t)``: exact (the same
    differences a brute-force search takes), (500, k) work per coordinate instead of
    (500, n). The loop runs over the ``p`` coordinates.
    """
    n, p = h.shape
    k = knn_neighbours(n, p)
    rows = bandwidth_rows(n).to(h.device)
    starts = torch.arange(k, device=h.device)
    means = []
    for column in h.T:
        ordered = column.sort().values
        t = column[rows].unsqueeze(1)
        lo = (torch.searchsorted(ordered, t) - starts).clamp(0, n - k)
        radius = torch.maximum(t - ordered[lo], ordered[lo + k - 1] - t)
        means.append(radius.min(dim=1).values.mean())
    return torch.stack(means) + BANDWIDTH_OFFSET


def width_constant(p: int, d: int) -> float:
    """``c = 18 p / max(1 + ln d, 1)``."""
    return WIDTH_FACTOR * p / max(1 + math.log(d), 1)


def member_codes(h: torch.Tensor, eps0: torch.Tensor, scales: torch.Tensor, uniforms: torch.Tensor | None) -> torch.Tensor:
    """(L, n, p) hash codes ``floor((h + b_l) / eps_l)``, ``eps_l = eps0 T_l``; ``b_l`` is
    ``0.1 u_l eps_l`` given uniforms ``u`` (L, >= p), else ``(l / L) eps_l``."""
    members, p = scales.shape[0], h.shape[1]
    eps = eps0.unsqueeze(0) * scales.to(h.device).unsqueeze(1)
    if uniforms is None:
        fractions = torch.from_numpy(np.linspace(0, 1, members, endpoint=False)).to(h.device)
        shifts = fractions.unsqueeze(1) * eps
    else:
        shifts = SHIFT_FRACTION * uniforms[:, :p].to(h.device) * eps
    return torch.floor((h.unsqueeze(0) + shifts.unsqueeze(1)) / eps.unsqueeze(1)).to(torch.int64)


def clipped_graph_bits(ids_x: torch.Tensor, ids_y: torch.Tensor, upper: float) -> torch.Tensor:
    """(L,) per member: the mean over samples of ``clip(log2(N N_ij / (N_i M_j)), 0.001, U)``."""
    n = ids_x.shape[1]
    n_i, m_j, n_ij = bucket_counts(ids_x, ids_y)
    pointwise = torch.log(n_ij.double() * n / (n_i * m_j).double()) / math.log(2)
    return pointwise.clamp(CLIP_FLOOR_BITS, upper).mean(dim=1)


def authors_edge_bits(
    x: torch.Tensor,
    y: torch.Tensor,
    uniforms_x: torch.Tensor | None,
    uniforms_y: torch.Tensor | None,
    settings: AuthorsEDGESettings,
) -> float:
    """Steps 1-7 of the module docstring on paired rows ``x`` (n, d_x), ``y`` (n, d_y):
    the authors' EDGE in bits. ``uniforms_*`` (passes, L, >= p): the random shifts' ``u``
    (None with ``shifts="grid"``)."""
    n, d_x = x.shape
    d_y = y.shape[1]
    floor = floor_hashing(d_x, d_y)
    p_x, p_y = hashed_dimension(n, d_x, floor), hashed_dimension(n, d_y, floor)
    if floor:
        h_x, h_y = x, y
    else:
        w, v = authors_normals(d_x, p_x, d_y, p_y)
        h_x, h_y = p_stable_projection(x, w), p_stable_projection(y, v)
    base_x = knn_bandwidths(h_x) * width_constant(p_x, d_x)
    base_y = knn_bandwidths(h_y) * width_constant(p_y, d_y)
    scales = torch.from_numpy(np.linspace(1, 1 + settings.width_range, settings.ensemble))
    gamma = settings.gamma * GAMMA_FACTOR
    bits = 0.0
    for step in range(settings.passes):
        if step:
            gamma = gamma * math.pow(2, -math.sqrt(bits * 2.0) + 0.5 / bits) * GAMMA_FACTOR
        ids_x = bucket_ids(member_codes(h_x, base_x * gamma, scales, None if uniforms_x is None else uniforms_x[step]))
        ids_y = bucket_ids(member_codes(h_y, base_y * gamma, scales, None if uniforms_y is None else uniforms_y[step]))
        bits = float(np.median(clipped_graph_bits(ids_x, ids_y, settings.upper).cpu().numpy()))
    return bits


class Prepared(NamedTuple):
    """One class's layer: its activations and the shifts' uniforms (or None)."""

    x: torch.Tensor
    uniforms: torch.Tensor | None


@register_estimator
class AuthorsEDGE(DependenceEstimator):
    """The authors' EDGE (nats; the clip is in bits), capped near ``log2 n`` bits."""

    name = "edge-authors"
    information = True
    deterministic = True
    Settings = AuthorsEDGESettings
    standardised_input = False

    def prepare(self, x: torch.Tensor, generator: torch.Generator) -> Prepared:
        if self.settings.shifts == "grid":
            return Prepared(x, None)
        n, d = x.shape
        widest = d if d <= FLOOR_HASH_MAX_DIM else hashed_dimension(n, d, floor=False)
        uniforms = torch.rand((self.settings.passes, self.settings.ensemble, widest), generator=generator, dtype=torch.float64)
        return Prepared(x, uniforms)

    def estimate(self, state_x: Prepared, state_y: Prepared, rows_x, rows_y) -> float:
        x, y = select_rows(state_x.x, rows_x), select_rows(state_y.x, rows_y)
        return authors_edge_bits(x, y, state_x.uniforms, state_y.uniforms, self.settings) * math.log(2)

    def min_samples(self, d_x: int, d_y: int) -> int:
        return 2 * ROWS_PER_HASH_DIM

    def dimension_warning(self, d_x: int, d_y: int, n: int) -> str | None:
        if floor_hashing(d_x, d_y):
            return None
        return (
            f"{self.name}: dimensions ({d_x}, {d_y}) are hashed through random projections to "
            f"{hashed_dimension(n, d_x, False)} and {hashed_dimension(n, d_y, False)} dimensions; values "
            f"are capped near log2(n) = {math.log2(n):.2f} bits at n = {n} per class and read far above "
            f"0 at independence (1.3 to 1.5 bits at d = 8, 3.0 to 3.4 at d = 64 with n = 1000, as "
            f"much as r = 0.8 reads there; docs/dependency.md): compare with the permutation baseline"
        )
