"""The threat model ``S = {delta : ||delta||_p <= eps}`` with inputs clipped to ``[0,1]``
(THEORY.md section 1), converted once at the API boundary and passed around as data.

Each norm is a :class:`NormGeometry`: projection onto the ball, the steepest-ascent
direction of a gradient, and uniform-ish random starts. Norms live in the ``NORMS``
registry.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable

import torch

from semirobust.empirical.runtime.distributed import BatchShard
from semirobust.errors import BadInput


def _flat_norm(t: torch.Tensor, p: float) -> torch.Tensor:
    """Per-sample ``||t_i||_p`` reshaped to broadcast against ``t``."""
    norms = t.flatten(start_dim=1).norm(p=p, dim=1)
    return norms.view(-1, *([1] * (t.dim() - 1)))


@dataclass(frozen=True)
class NormGeometry:
    """How an l_p ball is attacked: project, ascend, and sample a random start."""

    name: str
    dual_p: float
    project_delta: Callable[[torch.Tensor, float], torch.Tensor]
    ascent_direction: Callable[[torch.Tensor], torch.Tensor]
    random_delta: Callable[[torch.Tensor, float, torch.Generator], torch.Tensor]


def _linf_random(like: torch.Tensor, eps: float, generator: torch.Generator) -> torch.Tensor:
    noise = torch.rand(like.shape, generator=generator, dtype=torch.float32)
    return ((2 * noise - 1) * eps).to(like.device, like.dtype)


def _l2_project(delta: torch.Tensor, eps: float) -> torch.Tensor:
    factor = (eps / _flat_norm(delta, 2).clamp_min(1e-12)).clamp(max=1.0)
    return delta * factor


def _l2_direction(grad: torch.Tensor) -> torch.Tensor:
    return grad / _flat_norm(grad, 2).clamp_min(1e-12)


def _l2_random(like: torch.Tensor, eps: float, generator: torch.Generator) -> torch.Tensor:
    """Uniform in the l2 ball: Gaussian direction, radius ``eps * U^(1/d)``."""
    direction = torch.randn(like.shape, generator=generator, dtype=torch.float32)
    direction = direction / _flat_norm(direction, 2).clamp_min(1e-12)
    d = like[0].numel()
    radius = eps * torch.rand((like.shape[0],), generator=generator) ** (1.0 / d)
    return (direction * radius.view(-1, *([1] * (like.dim() - 1)))).to(like.device, like.dtype)


NORMS: dict[str, NormGeometry] = {
    "linf": NormGeometry(
        name="linf",
        dual_p=1.0,
        project_delta=lambda delta, eps: delta.clamp(-eps, eps),
        ascent_direction=torch.sign,
        random_delta=_linf_random,
    ),
    "l2": NormGeometry(
        name="l2",
        dual_p=2.0,
        project_delta=_l2_project,
        ascent_direction=_l2_direction,
        random_delta=_l2_random,
    ),
}


@dataclass(frozen=True)
class ThreatModel:
    """``||delta||_norm <= eps`` and ``x + delta`` in ``[0,1]``."""

    norm: str
    eps: float

    def __post_init__(self) -> None:
        if self.norm not in NORMS:
            raise BadInput(f"--norm {self.norm!r}: expected one of {', '.join(NORMS)}")
        if not isinstance(self.eps, (int, float)) or not math.isfinite(self.eps) or self.eps < 0:
            raise BadInput(f"--eps {self.eps}: the radius must be a finite number >= 0")
        object.__setattr__(self, "eps", float(self.eps))

    @property
    def geometry(self) -> NormGeometry:
        return NORMS[self.norm]

    def project(self, x_adv: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """Nearest-point-style projection: into the ball around ``x``, then into ``[0,1]``.

        For l-inf the two clips commute and the result is the exact projection onto the
        intersection; for l2 clipping after the ball projection stays inside the ball
        (clipping towards ``x``'s box only shrinks each coordinate's displacement).
        """
        delta = self.geometry.project_delta(x_adv - x, self.eps)
        return (x + delta).clamp(0.0, 1.0)

    def random_start(self, x: torch.Tensor, generator: torch.Generator,
                     shard: BatchShard | None = None) -> torch.Tensor:
        """A random point of the ball around ``x`` (clipped to ``[0,1]``). With ``shard``,
        ``x`` is rows ``shard.rows`` of a batch of ``shard.size`` rows: the draw is made for
        the whole batch and these rows kept, so each part of a batch split over processes
        starts where that batch attacked whole would."""
        like = x if shard is None else x.new_empty((shard.size, *x.shape[1:]))
        delta = self.geometry.random_delta(like, self.eps, generator)
        return self.project(x + (delta if shard is None else delta[shard.rows]), x)

    def contains(self, x_adv: torch.Tensor, x: torch.Tensor, tol: float = 1e-6) -> torch.Tensor:
        """Per-sample: is ``x_adv`` in the ball around ``x`` and in ``[0,1]``?"""
        p = math.inf if self.norm == "linf" else 2.0
        in_ball = (x_adv - x).flatten(start_dim=1).norm(p=p, dim=1) <= self.eps + tol
        in_box = ((x_adv >= -tol) & (x_adv <= 1 + tol)).flatten(start_dim=1).all(dim=1)
        return in_ball & in_box

    def to_dict(self) -> dict[str, Any]:
        return {"norm": self.norm, "eps": self.eps}
