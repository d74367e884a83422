"""The uniform attack call ``attack(model, x, y) -> x_adv`` (DESIGN.md, style item 1).

An attack subclasses :class:`Attack` and implements :meth:`Attack.perturb`. The call
wrapper validates the batch, puts the model in eval mode with its parameters frozen
(:func:`attack_mode`; both restored afterwards, so no gradient leaks into the model, even
from library code that calls ``backward``), and projects the result into the threat model.
:meth:`Attack.run` adds the per-sample margin ``m(F(x_adv), y)`` at the returned point.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Iterator

import torch
from torch import nn

from semirobust.empirical.attacks.objectives import Objective, cross_entropy, multiclass_margin
from semirobust.empirical.attacks.threat import ThreatModel
from semirobust.empirical.runtime.device import amp_context
from semirobust.errors import BadInput


@dataclass(frozen=True)
class AttackOutcome:
    """One batch's result: the adversarial inputs and their per-sample margins.

    ``stage_margins`` maps each stage of an ensemble (in order) to the per-sample worst
    margin *after* that stage; a single attack has one stage, itself.
    """

    x_adv: torch.Tensor
    margin: torch.Tensor
    stage_margins: dict[str, torch.Tensor]


@dataclass
class Attack(ABC):
    """Base of every attack: a threat model, an objective to maximise and a seed.

    ``amp`` runs the attack's forward passes under mixed precision on CUDA (objectives
    compute in float32 either way); it is a no-op on the CPU.
    """

    threat: ThreatModel
    objective: Objective = field(default=cross_entropy)
    seed: int = 0
    amp: bool = False

    name = "attack"

    def __call__(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Adversarial inputs for ``(x, y)``: inside the threat model, detached."""
        validate_batch(x, y)
        with attack_mode(model):
            x_adv = self.perturb(model, x.detach(), y.detach())
        return self.threat.project(x_adv.detach(), x.detach())

    def run(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> AttackOutcome:
        """:meth:`__call__` plus the margins ``m(F(x_adv), y)`` at the returned points."""
        x_adv = self(model, x, y)
        margin = margins_of(model, x_adv, y)
        return AttackOutcome(x_adv, margin, {self.name: margin})

    @abstractmethod
    def perturb(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Return ``x_adv`` (the wrapper projects it into the threat model once more)."""

    def limitations(self, num_classes: int) -> list[str]:
        """Parts of the attack that cannot run on a ``num_classes``-class model (each
        becomes a ``stage-skipped`` reliability flag in the evaluation)."""
        return []

    def generator(self) -> torch.Generator:
        """A CPU generator seeded from ``self.seed`` (never a time-based seed)."""
        return torch.Generator().manual_seed(self.seed)

    def settings(self) -> dict:
        """The attack's name and parameters, for the provenance of every Measurement."""
        return {
            "attack": self.name,
            **self.threat.to_dict(),
            "objective": objective_name(self.objective),
            "seed": self.seed,
            "amp": self.amp,
        }


@contextmanager
def attack_mode(model: nn.Module) -> Iterator[None]:
    """Eval mode, parameters frozen, gradients enabled; the previous state restored after."""
    was_training = model.training
    parameters = list(model.parameters())
    required = [p.requires_grad for p in parameters]
    model.eval()
    for parameter in parameters:
        parameter.requires_grad_(False)
    try:
        with torch.enable_grad():
            yield
    finally:
        for parameter, flag in zip(parameters, required):
            parameter.requires_grad_(flag)
        model.train(was_training)


def margins_of(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Per-sample ``m(F(x), y)`` (THEORY.md section 2) in float32, without gradients."""
    with torch.no_grad():
        return multiclass_margin(model(x).float(), y)


def objective_and_gradient(
    model: nn.Module, objective: Objective, x: torch.Tensor, y: torch.Tensor, *, amp: bool = False
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-sample objective at ``x`` and its gradient with respect to ``x`` only."""
    x = x.detach().requires_grad_(True)
    with amp_context(x.device, amp):
        output = model(x)
    values = objective(output.float(), y)
    (grad,) = torch.autograd.grad(values.sum(), x)
    return values.detach(), grad.detach()


def validate_batch(x: torch.Tensor, y: torch.Tensor) -> None:
    """Inputs must be finite, in ``[0,1]``, and match their integer labels in number."""
    if x.dim() < 2:
        raise BadInput(
            f"inputs must be a batch (N, ...) of at least 2 dimensions, got shape {tuple(x.shape)}"
        )
    if y.dim() != 1:
        raise BadInput(f"labels must be a 1-d tensor of class indices, got shape {tuple(y.shape)}")
    if x.shape[0] != y.shape[0]:
        raise BadInput(f"inputs ({x.shape[0]}) and labels ({y.shape[0]}) differ in number")
    if y.dtype not in (torch.int64, torch.int32):
        raise BadInput(f"labels must be integers, got {y.dtype}")
    if y.numel() and y.min() < 0:
        raise BadInput(f"labels must be class indices >= 0, got {int(y.min())}")
    if not torch.isfinite(x).all():
        raise BadInput("inputs contain NaN or inf")
    if x.numel() and (x.min() < 0 or x.max() > 1):
        raise BadInput("inputs must lie in [0,1] (the threat model's space)")


def objective_name(objective: Objective) -> str:
    return getattr(objective, "__name__", type(objective).__name__)
