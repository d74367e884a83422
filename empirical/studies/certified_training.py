"""Certified training: IBP (Gowal et al. 2018) and CROWN-IBP (Zhang et al. 2020), with the
initialisation and BatchNorm choices of Shi et al. 2021 that make IBP training stable.

The loss of a batch at training progress ``p`` (fraction of all steps done) is

    kappa(p) * CE(F(x), y) + (1 - kappa(p)) * CE(-lower(x; eps(p)), y)

with ``lower_k <= inf_{delta in S(eps)} (z_y - z_k)`` a differentiable certified lower
bound (:mod:`semirobust.empirical.bounds.training_bounds`), so ``-lower`` are worst-case
logits and the second term upper-bounds the robust cross-entropy (THEORY.md section 2:
``inf m >= min_k lower_k``). Schedules (``t`` = position in the ramp, clipped to [0,1]):

* warm-up: the first ``warmup`` fraction of the run is natural training (``eps = 0``);
* ``eps(p) = t * eps``, linear over the next ``ramp`` fraction, then constant;
* ``kappa(p)`` from ``kappa_start`` to ``kappa_end`` over the same ramp;
* CROWN-IBP's bound ``beta * CROWN-IBP + (1 - beta) * IBP``, ``beta`` from ``beta_start``
  to ``beta_end`` over the ramp (``ibp`` uses IBP alone).

Shi et al. 2021's choices, each stated in the stored recipe: the *IBP initialisation*
``W ~ N(0, sigma^2)``, ``sigma = sqrt(2 pi) / fan_in``, biases 0, which keeps the interval
radius about constant through a Linear/Conv + ReLU layer at initialisation
(``E sum_i |W_ji| r = sqrt(2 pi) sqrt(2/pi) r = 2r``, halved by the ReLU), and BatchNorm
normalising the bounds with the clean batch's statistics. Their warm-up regularisers
(bound tightness, ReLU balance) are not used.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import nn

from semirobust.empirical.attacks.threat import ThreatModel
from semirobust.empirical.bounds.training_bounds import clean_pass, margin_lower_bounds
from semirobust.empirical.runtime.device import amp_context
from semirobust.empirical.runtime.distributed import BatchShard

if TYPE_CHECKING:
    from semirobust.empirical.studies.training import TrainRecipe

CERTIFIED_METHODS = ("ibp", "crown-ibp")
BATCH_NORM_CHOICE = "bounds normalised with the clean batch's statistics (Shi et al. 2021)"
IBP_INITIALISATION = "W ~ N(0, (sqrt(2 pi)/fan_in)^2), bias 0 (Shi et al. 2021)"
#: Learning-rate decays (fractions of the run) after the eps ramp, for certified training.
CERTIFIED_MILESTONES = (0.8, 0.9)


@dataclass(frozen=True)
class CertifiedSchedule:
    """Where a training step is: the radius trained at, the natural-loss weight kappa and
    CROWN-IBP's weight beta."""

    eps: float
    kappa: float
    beta: float


def schedule_at(recipe: TrainRecipe, progress: float) -> CertifiedSchedule:
    """The schedule of ``recipe`` (a :class:`~semirobust.empirical.studies.training.TrainRecipe`)
    at ``progress`` in [0, 1]."""
    if recipe.ramp > 0:
        t = min(1.0, max(0.0, (progress - recipe.warmup) / recipe.ramp))
    else:
        t = 1.0 if progress >= recipe.warmup else 0.0
    if progress < recipe.warmup:
        return CertifiedSchedule(0.0, 1.0, recipe.beta_start)
    return CertifiedSchedule(
        eps=t * recipe.eps,
        kappa=recipe.kappa_start + (recipe.kappa_end - recipe.kappa_start) * t,
        beta=recipe.beta_start + (recipe.beta_end - recipe.beta_start) * t,
    )


def ibp_initialise(model: nn.Module, generator: torch.Generator) -> None:
    """Shi et al. 2021's IBP initialisation of every Linear and Conv2d of ``model``."""
    for module in model.modules():
        if isinstance(module, (nn.Linear, nn.Conv2d)):
            fan_in = module.weight[0].numel()
            sigma = math.sqrt(2 * math.pi) / fan_in
            with torch.no_grad():
                noise = torch.randn(module.weight.shape, generator=generator)
                module.weight.copy_(sigma * noise.to(module.weight))
                if module.bias is not None:
                    module.bias.zero_()


def certified_loss(model: nn.Sequential, x: torch.Tensor, y: torch.Tensor, recipe: TrainRecipe, seed: int,
                   frozen_stages: int, progress: float = 1.0,
                   shard: BatchShard | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """The mixed natural and certified cross-entropy at ``progress``; returns the loss and
    the clean logits. Bounds are computed in float32 whatever the autocast setting. Each
    sample's bound is its own, so a part of a batch (``shard``) needs nothing else."""
    from semirobust.empirical.studies.training import set_train_mode

    set_train_mode(model, frozen_stages)
    step = schedule_at(recipe, progress)
    if step.eps == 0.0 or step.kappa == 1.0:
        logits = model(x)
        return F.cross_entropy(logits.float(), y), logits
    with amp_context(x.device, False):
        logits, layers = clean_pass(model, x.float())
        lower = margin_lower_bounds(
            layers, x.float(), y, ThreatModel(recipe.norm, step.eps), recipe.method, step.beta
        )
    natural = F.cross_entropy(logits.float(), y)
    robust = F.cross_entropy(-lower, y)
    return step.kappa * natural + (1.0 - step.kappa) * robust, logits
