"""Linear networks on which every gamma is exact (numpy), for the caveats and property tests.

For logits ``z = W x + b`` the worst-case multiclass margin over ``||delta||_p <= eps`` is

    inf_delta m(W(x + delta) + b, y) = min_{k != y} [ (w_y - w_k) . x + b_y - b_k - eps ||w_y - w_k||_q ]

with ``q`` the dual exponent of ``p`` (``p = inf -> q = 1``, ``p = 2 -> q = 2``): the
infimum of a minimum is the minimum of the infima, and ``inf_delta v . delta = -eps ||v||_q``
(Hoelder, attained). Inputs are *not* clipped to ``[0, 1]``: the box is ignored, so these
are the exact values for the unclipped threat model (or for points at least ``eps`` inside
the box when ``p = inf``). Binary scores ``s = w . x`` are logits ``(-s/2, s/2)``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

DUAL_ORDER = {"linf": 1, "l2": 2, "l1": np.inf}


def worst_case_margins(
    W: np.ndarray, b: np.ndarray, X: np.ndarray, y: np.ndarray, eps: float, norm: str = "linf"
) -> np.ndarray:
    """Per-sample ``inf_delta m(W(x + delta) + b, y)`` (module docstring); shape ``(N,)``."""
    q = DUAL_ORDER[norm]
    logits = X @ W.T + b
    rows = np.arange(len(y))
    best = np.full(len(y), np.inf)
    for k in range(W.shape[0]):
        rival = y != k
        direction = W[y] - W[k]                                  # (N, d): w_y - w_k per sample
        gap = logits[rows, y] - logits[:, k] - eps * np.linalg.norm(direction, ord=q, axis=1)
        best = np.where(rival, np.minimum(best, gap), best)
    return best


def worst_case_perturbations(
    W: np.ndarray, b: np.ndarray, X: np.ndarray, y: np.ndarray, eps: float, norm: str = "linf"
) -> np.ndarray:
    """A ``delta`` per sample that attains :func:`worst_case_margins` (the Hoelder equality
    case against the worst rival class); shape ``(N, d)``."""
    q = DUAL_ORDER[norm]
    logits = X @ W.T + b
    rows = np.arange(len(y))
    gaps = np.stack([
        np.where(y != k, logits[rows, y] - logits[:, k]
                 - eps * np.linalg.norm(W[y] - W[k], ord=q, axis=1), np.inf)
        for k in range(W.shape[0])
    ], axis=1)
    rival = np.argmin(gaps, axis=1)
    direction = W[y] - W[rival]
    if norm == "linf":
        return -eps * np.sign(direction)
    if norm == "l2":
        size = np.linalg.norm(direction, axis=1, keepdims=True)
        return -eps * np.divide(direction, size, out=np.zeros_like(direction), where=size > 0)
    raise ValueError(f"worst_case_perturbations supports linf and l2, got {norm!r}")


def binary_logits(w: np.ndarray) -> np.ndarray:
    """The 2-class weight matrix whose logits are ``(-s/2, s/2)`` for the score ``s = w . x``
    (class 1 is ``y = +1``)."""
    return np.stack([-w / 2.0, w / 2.0])


def gamma(W: np.ndarray, b: np.ndarray, X: np.ndarray, y: np.ndarray, eps: float,
          norm: str = "linf") -> float:
    """Exact ``E[inf_delta m]`` over the sample ``(X, y)``."""
    return float(worst_case_margins(W, b, X, y, eps, norm).mean())


@dataclass(frozen=True)
class DenseLinearNetwork:
    """Layers ``f^(1..a)`` given as input maps ``M_l`` (``h x d``), and layers of f_b as
    linear combinations ``f^(i) = sum_{l<i} Lambda[i][l] f^(l)`` (T3's structure), all read
    out by one score vector ``g`` (the proof's "equal readouts", C5)."""

    first_part: tuple[np.ndarray, ...]
    combinations: tuple[tuple[np.ndarray, ...], ...]
    readout: np.ndarray

    @property
    def a(self) -> int:
        return len(self.first_part)

    @property
    def n(self) -> int:
        return self.a + len(self.combinations)

    def layer_maps(self) -> list[np.ndarray]:
        """``M_i`` with ``f^(i)(x) = M_i x`` for ``i = 1..n``."""
        maps = list(self.first_part)
        for weights in self.combinations:
            if len(weights) != len(maps):
                raise ValueError(f"layer {len(maps) + 1} needs {len(maps)} combination weights")
            maps.append(sum(lam @ m for lam, m in zip(weights, maps)))
        return maps

    def gamma_of_layer(self, i: int, X: np.ndarray, y: np.ndarray, eps: float,
                       norm: str = "linf") -> float:
        """Exact gamma of layer ``i`` (1-based) with the common readout, binary labels 0/1."""
        score = self.readout @ self.layer_maps()[i - 1]
        return gamma(binary_logits(score), np.zeros(2), X, y, eps, norm)


def t3_closed_form(gamma_a: float, a: int, n: int) -> float:
    """T3's ``gamma_a + gamma_a (n-1-a)(n-a)/2``."""
    return gamma_a + gamma_a * (n - 1 - a) * (n - a) / 2
