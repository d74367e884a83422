"""What attacks maximise, and the multiclass margin of THEORY.md section 2.

An objective maps a model output and labels to a per-sample value to *maximise*.
Attacks on robust accuracy maximise cross-entropy (or the C&W loss); estimates of
``gamma = E[inf_delta m(G(f(x+delta)), y)]`` maximise the negative margin, and for a
subnetwork ``f_a`` with a readout ``G_a`` the attack runs on ``f_a`` and maximises
``-m(G_a(f_a(x+delta)), y)`` (:func:`readout_margin`, section 2); the feature sensitivity
``Delta_a(x) = sup_delta ||f_a(x+delta) - f_a(x)||_2`` (section 5) maximises the feature
displacement on the same ``f_a`` with the same attacks.
"""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from semirobust.errors import BadInput

Objective = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def multiclass_margin(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """``m(z, y) = z_y - max_{k != y} z_k`` per sample; positive iff correctly classified."""
    index = y.view(-1, 1)
    true_logit = logits.gather(1, index).squeeze(1)
    others = logits.scatter(1, index, float("-inf"))
    return true_logit - others.max(dim=1).values


def cross_entropy(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Per-sample cross-entropy of the logits."""
    return F.cross_entropy(logits.float(), y, reduction="none")


def negative_margin(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """``-m(z, y)``: maximising it minimises the margin (C&W-style loss with kappa = inf)."""
    return -multiclass_margin(logits.float(), y)


def cw_loss(kappa: float = 0.0) -> Objective:
    """Carlini & Wagner's loss ``min(max_{k != y} z_k - z_y, kappa) = min(-m(z, y), kappa)``.

    Maximising it lowers the margin until the input is misclassified with confidence
    ``kappa``, then stops pushing (THEORY.md section 6: ``kappa = 0``).
    """
    if not kappa >= 0:
        raise BadInput(f"kappa {kappa}: the C&W confidence must be >= 0")

    def cw(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return negative_margin(logits, y).clamp(max=kappa)

    cw.__name__ = f"cw(kappa={kappa:g})"
    return cw


def readout_margin(readout: nn.Module) -> Objective:
    """``-m(G_a(h), y)`` on features ``h = f_a(x + delta)``: attacking ``f_a`` with it
    estimates ``gamma_a`` of the subnetwork for the fixed readout ``G_a`` (caveat C1)."""

    def margin_through_readout(features: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return negative_margin(readout(features), y)

    margin_through_readout.__name__ = f"readout_margin({type(readout).__name__})"
    return margin_through_readout


def feature_displacement(clean_features: torch.Tensor) -> Objective:
    """``||f_a(x + delta) - f_a(x)||_2`` per sample, given the clean features ``f_a(x)``."""
    reference = clean_features.detach().flatten(start_dim=1)

    def displacement(features: torch.Tensor, _y: torch.Tensor) -> torch.Tensor:
        return (features.float().flatten(start_dim=1) - reference).norm(dim=1)

    displacement.__name__ = "feature_displacement"
    return displacement


OBJECTIVES: dict[str, Objective] = {
    "ce": cross_entropy,
    "margin": negative_margin,
    "cw": cw_loss(0.0),
}


def objective_by_name(name: str) -> Objective:
    if name not in OBJECTIVES:
        raise BadInput(f"unknown objective {name!r}; known: {', '.join(OBJECTIVES)}")
    return OBJECTIVES[name]
