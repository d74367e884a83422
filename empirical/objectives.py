"""What attacks maximise, and the multiclass margin of THEORY.md section 2.

An objective maps a model output and labels to a per-sample value to *maximise*.
Attacks on robust accuracy maximise cross-entropy; estimates of
``gamma = E[inf_delta m(G(f(x+delta)), y)]`` maximise the negative margin; the feature
sensitivity ``Delta_a(x) = sup_delta ||f_a(x+delta) - f_a(x)||_2`` (section 5) maximises
the feature displacement.
"""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F

from semirobust.empirical.errors import BadInput

Objective = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def multiclass_margin(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """``m(z, y) = z_y - max_{k != y} z_k`` per sample; positive iff correctly classified."""
    true_logit = logits.gather(1, y.view(-1, 1)).squeeze(1)
    others = logits.masked_fill(F.one_hot(y, logits.shape[1]).bool(), float("-inf"))
    return true_logit - others.max(dim=1).values


def cross_entropy(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Per-sample cross-entropy of the logits."""
    return F.cross_entropy(logits.float(), y, reduction="none")


def negative_margin(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """``-m(z, y)``: maximising it minimises the margin (C&W-style loss with kappa = inf)."""
    return -multiclass_margin(logits.float(), y)


def feature_displacement(clean_features: torch.Tensor) -> Objective:
    """``||f_a(x + delta) - f_a(x)||_2`` per sample, given the clean features ``f_a(x)``."""
    reference = clean_features.detach().flatten(start_dim=1)

    def displacement(features: torch.Tensor, _y: torch.Tensor) -> torch.Tensor:
        return (features.float().flatten(start_dim=1) - reference).norm(dim=1)

    return displacement


OBJECTIVES: dict[str, Objective] = {"ce": cross_entropy, "margin": negative_margin}


def objective_by_name(name: str) -> Objective:
    if name not in OBJECTIVES:
        raise BadInput(f"unknown objective {name!r}; known: {', '.join(OBJECTIVES)}")
    return OBJECTIVES[name]
