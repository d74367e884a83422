"""Projection onto the feasible set ``{x' : ||x' - x||_p <= eps, x' in [0,1]}`` of one batch.

PGD projects after every step, so the set is built once per batch. For l-inf it is the
box ``[max(x - eps, 0), min(x + eps, 1)]`` and the projection is one elementwise clamp
(the exact Euclidean projection); for other norms it defers to
:meth:`ThreatModel.project` (ball first, then the unit box). ``FEASIBLE_SETS`` maps each
norm of ``threat.NORMS`` to its builder.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Protocol

import torch

from semirobust.empirical.attacks.threat import ThreatModel


class FeasibleSet(Protocol):
    def project(self, x_adv: torch.Tensor) -> torch.Tensor: ...

    def ascend(self, x_adv: torch.Tensor, grad: torch.Tensor, step_size: float) -> torch.Tensor: ...


@dataclass(frozen=True)
class LinfBox:
    """``[max(x - eps, 0), min(x + eps, 1)]``; ascent along ``sign(grad)``."""

    low: torch.Tensor
    high: torch.Tensor

    @classmethod
    def around(cls, threat: ThreatModel, x: torch.Tensor) -> "LinfBox":
        return cls((x - threat.eps).clamp_(min=0.0), (x + threat.eps).clamp_(max=1.0))

    def project(self, x_adv: torch.Tensor) -> torch.Tensor:
        return torch.clamp(x_adv, self.low, self.high)

    def ascend(self, x_adv: torch.Tensor, grad: torch.Tensor, step_size: float) -> torch.Tensor:
        return torch.add(x_adv, grad.sign_(), alpha=step_size)


@dataclass(frozen=True)
class BallInBox:
    """Any norm of the threat model: its own projection and steepest-ascent direction."""

    threat: ThreatModel
    x: torch.Tensor

    @classmethod
    def around(cls, threat: ThreatModel, x: torch.Tensor) -> "BallInBox":
        return cls(threat, x)

    def project(self, x_adv: torch.Tensor) -> torch.Tensor:
        return self.threat.project(x_adv, self.x)

    def ascend(self, x_adv: torch.Tensor, grad: torch.Tensor, step_size: float) -> torch.Tensor:
        return x_adv + step_size * self.threat.geometry.ascent_direction(grad)


FEASIBLE_SETS: dict[str, Callable[[ThreatModel, torch.Tensor], FeasibleSet]] = {
    "linf": LinfBox.around,
    "l2": BallInBox.around,
}


def feasible_set(threat: ThreatModel, x: torch.Tensor) -> FeasibleSet:
    """The feasible set of ``threat`` around the batch ``x``."""
    return FEASIBLE_SETS.get(threat.norm, BallInBox.around)(threat, x)
