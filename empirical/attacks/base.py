"""The uniform attack call ``attack(model, x, y) -> x_adv`` (DESIGN.md, style item 1).

An attack subclasses :class:`Attack` and implements :meth:`Attack.perturb`. The call
wrapper validates the batch, puts the model in eval mode and restores its previous mode,
and computes gradients with respect to the input only (``torch.autograd.grad``), so no
gradient leaks into the model's parameters.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field

import torch
from torch import nn

from semirobust.empirical.errors import BadInput
from semirobust.empirical.objectives import Objective, cross_entropy
from semirobust.empirical.threat import ThreatModel


@dataclass
class Attack(ABC):
    """Base of every attack: a threat model, an objective to maximise and a seed."""

    threat: ThreatModel
    objective: Objective = field(default=cross_entropy)
    seed: int = 0

    name = "attack"

    def __call__(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Adversarial inputs for ``(x, y)``: inside the threat model, detached."""
        validate_batch(x, y)
        was_training = model.training
        model.eval()
        try:
            with torch.enable_grad():
                x_adv = self.perturb(model, x.detach(), y.detach())
        finally:
            model.train(was_training)
        return self.threat.project(x_adv.detach(), x.detach())

    @abstractmethod
    def perturb(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Return ``x_adv`` (the wrapper projects it into the threat model once more)."""

    def generator(self) -> torch.Generator:
        """A CPU generator seeded from ``self.seed`` (never a time-based seed)."""
        return torch.Generator().manual_seed(self.seed)

    def settings(self) -> dict:
        """The attack's name and parameters, for the provenance of every Measurement."""
        return {"attack": self.name, **self.threat.to_dict(), "objective": _objective_name(self.objective), "seed": self.seed}


def objective_and_gradient(
    model: nn.Module, objective: Objective, x: torch.Tensor, y: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-sample objective at ``x`` and its gradient with respect to ``x`` only."""
    x = x.detach().requires_grad_(True)
    values = objective(model(x), y)
    (grad,) = torch.autograd.grad(values.sum(), x)
    return values.detach(), grad.detach()


def validate_batch(x: torch.Tensor, y: torch.Tensor) -> None:
    """Inputs must be finite, in ``[0,1]``, and match their integer labels in number."""
    if x.shape[0] != y.shape[0]:
        raise BadInput(f"inputs ({x.shape[0]}) and labels ({y.shape[0]}) differ in number")
    if y.dtype not in (torch.int64, torch.int32):
        raise BadInput(f"labels must be integers, got {y.dtype}")
    if not torch.isfinite(x).all():
        raise BadInput("inputs contain NaN or inf")
    if x.numel() and (x.min() < 0 or x.max() > 1):
        raise BadInput("inputs must lie in [0,1] (the threat model's space)")


def _objective_name(objective: Objective) -> str:
    return getattr(objective, "__name__", type(objective).__name__)
