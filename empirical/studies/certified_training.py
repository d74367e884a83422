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

Residual networks (blocks declared with
:func:`~semirobust.empirical.bounds.register_residual_block`): the IBP initialisation
reaches every Linear and Conv2d, inside residual branches and the 1x1 shortcut projections
too, and each block's branch starts at zero: the last layer of its branch (a BatchNorm's
``gamma``, or a convolution's weight, as in a pre-activation block) is set to 0, so every
block starts as its shortcut (zero-``gamma`` residual branches, Goyal et al. 2017; Fixup
and SkipInit scale residual branches down for the same reason). Without it the interval
radius grows through every residual add: on ``resnet18`` at width 4 on digits (64 training
inputs, train-mode BatchNorm) the mean IBP margin bound at initialisation is -9.3e6 at
eps 0.01 with the IBP initialisation alone and -1.4 with the branches zeroed (-2.7e7 and
-1.3 with the default initialisation; ``wrn-34-10`` at depth 10, width 1: -304 and -0.66).
Algorithm 1's robust model (:func:`ibp_scale`) keeps its own draw, the one it shares with
the normal model under ``--init shared``, scaled to the same spread, branches zeroed alike.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

from semirobust.empirical.attacks.threat import ThreatModel
from semirobust.empirical.bounds.layer_rules import primitive_layers
from semirobust.empirical.bounds.residual import residual_parts
from semirobust.empirical.bounds.training_bounds import clean_pass, margin_lower_bounds
from semirobust.empirical.runtime.device import amp_context
from semirobust.empirical.runtime.distributed import BatchShard
from semirobust.errors import BadInput

if TYPE_CHECKING:
    from semirobust.empirical.studies.training import TrainRecipe

CERTIFIED_METHODS = ("ibp", "crown-ibp")
BATCH_NORM_CHOICE = "bounds normalised with the clean batch's statistics (Shi et al. 2021)"
ZEROED_BRANCHES = (
    "; each residual branch's last layer (BatchNorm gamma or conv weight) 0, so every block "
    "starts as its shortcut (Goyal et al. 2017)"
)
IBP_INITIALISATION = "W ~ N(0, (sqrt(2 pi)/fan_in)^2), bias 0 (Shi et al. 2021)" + ZEROED_BRANCHES
IBP_SCALED_INITIALISATION = (
    "the architecture's own draw with each Linear/Conv2d weight scaled to root-mean-square "
    "sqrt(2 pi)/fan_in, bias 0 (Shi et al. 2021's spread; Algorithm 1 keeps the draw it "
    "shares between the normal and the robust model)" + ZEROED_BRANCHES
)
#: ``TrainRecipe.initialisation`` values and what each states in the recipe.
INITIALISATIONS = {
    "default": "the architecture's own draw",
    "ibp": IBP_INITIALISATION,
    "ibp-scaled": IBP_SCALED_INITIALISATION,
}
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
    """Shi et al. 2021's IBP initialisation of every Linear and Conv2d of ``model``, then
    every residual branch zeroed (:func:`zero_residual_branches`)."""
    for module in model.modules():
        if isinstance(module, (nn.Linear, nn.Conv2d)):
            fan_in = module.weight[0].numel()
            sigma = math.sqrt(2 * math.pi) / fan_in
            with torch.no_grad():
                noise = torch.randn(module.weight.shape, generator=generator)
                module.weight.copy_(sigma * noise.to(module.weight))
                if module.bias is not None:
                    module.bias.zero_()
    zero_residual_branches(model)


def ibp_scale(model: nn.Module) -> None:
    """Every Linear and Conv2d weight of ``model`` multiplied by the one positive number that
    gives it root-mean-square ``sqrt(2 pi) / fan_in`` (the spread of :func:`ibp_initialise`),
    biases 0: the draw's directions are kept, so two models sharing a draw still share it;
    then every residual branch zeroed (:func:`zero_residual_branches`)."""
    for module in model.modules():
        if isinstance(module, (nn.Linear, nn.Conv2d)):
            fan_in = module.weight[0].numel()
            sigma = math.sqrt(2 * math.pi) / fan_in
            with torch.no_grad():
                rms = module.weight.pow(2).mean().sqrt()
                module.weight.mul_(sigma / rms)
                if module.bias is not None:
                    module.bias.zero_()
    zero_residual_branches(model)


def zero_residual_branches(model: nn.Module) -> None:
    """In every registered residual block of ``model``, the last layer of the branch set to
    output zero: a BatchNorm's ``gamma`` and ``beta``, a Linear/Conv2d's weight and bias.
    A branch ending in another layer type is refused (it would start unscaled unnoticed)."""
    for block in model.modules():
        parts = residual_parts(block)
        if parts is None:
            continue
        last = primitive_layers(parts.branch)[-1]
        if not isinstance(last, (_BatchNorm, nn.Linear, nn.Conv2d)) or last.weight is None:
            raise BadInput(
                f"the IBP initialisation zeroes each residual branch's last layer; the branch "
                f"of {type(block).__name__} ends in {type(last).__name__}, which has no "
                "weight to zero"
            )
        with torch.no_grad():
            last.weight.zero_()
            if last.bias is not None:
                last.bias.zero_()


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
