"""Gradient attacks: FGSM, I-FGSM (BIM) and PGD with random start and restarts
(THEORY.md section 6), for every norm of the threat model (l-inf and l2).

PGD (Madry et al. 2018): ``x_{t+1} = Proj_S(x_t + alpha * dir(grad_x objective))`` with
``dir = sign`` for l-inf and ``grad/||grad||_2`` for l2, from a random start in the ball.
Each restart ends at its last iterate; each input keeps the restart of highest objective.
For robust accuracy alone, ``until_misclassified`` stops each input at the first iterate
that the model misclassifies (any restart): every input the last-iterate attack breaks is
still broken (its iterates are the same up to that point), inputs broken on the way stay
broken, and broken inputs cost no further steps.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from semirobust.empirical.attacks.base import Attack, objective_and_gradient
from semirobust.empirical.attacks.projection import feasible_set
from semirobust.empirical.runtime.device import amp_context
from semirobust.empirical.runtime.distributed import BatchShard
from semirobust.errors import BadInput


@dataclass
class FGSM(Attack):
    """One step of size ``eps`` along the steepest-ascent direction (Goodfellow et al. 2015)."""

    name = "fgsm"

    def perturb(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        _, grad = objective_and_gradient(model, self.objective, x, y, amp=self.amp)
        step = self.threat.geometry.ascent_direction(grad)
        return self.threat.project(x + self.threat.eps * step, x)


@dataclass
class PGD(Attack):
    """Projected gradient ascent (Madry et al. 2018); ``step_size`` defaults to ``2.5 * eps / steps``.

    Each restart returns its last iterate, as in Madry et al.; with several restarts each
    input keeps the restart of highest objective (one extra forward pass per restart).
    Kept lean: it is the hot loop of adversarial training. The per-input worst case over
    several attacks is :class:`~semirobust.empirical.attacks.ensemble.WorstCase`'s job.
    ``shard`` (data-parallel training): the batch is that part of a larger one, and its
    random starts are that part of the larger batch's
    (:meth:`~semirobust.empirical.attacks.threat.ThreatModel.random_start`).
    """

    steps: int = 10
    step_size: float | None = None
    random_start: bool = True
    restarts: int = 1
    shard: BatchShard | None = None
    until_misclassified: bool = False

    name = "pgd"

    def __post_init__(self) -> None:
        if self.steps < 1 or self.restarts < 1:
            raise BadInput(
                f"{self.name} needs steps >= 1 and restarts >= 1, got {self.steps} and {self.restarts}"
            )
        if self.step_size is not None and not self.step_size > 0:
            raise BadInput(f"{self.name} step size must be > 0, got {self.step_size}")

    @property
    def alpha(self) -> float:
        return self.step_size if self.step_size is not None else 2.5 * self.threat.eps / self.steps

    def perturb(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        if self.until_misclassified:
            return self._until_misclassified(model, x, y)
        generator = self.generator()
        feasible = feasible_set(self.threat, x)
        best_x = x.clone()
        best_value = torch.full((x.shape[0],), float("-inf"), device=x.device)
        for _ in range(self.restarts):
            x_adv = self.threat.random_start(x, generator, self.shard) if self.random_start else x.clone()
            for _ in range(self.steps):
                x_adv.requires_grad_(True)
                with amp_context(x.device, self.amp):
                    output = model(x_adv)
                (grad,) = torch.autograd.grad(self.objective(output.float(), y).sum(), x_adv)
                x_adv = feasible.project(feasible.ascend(x_adv.detach(), grad, self.alpha))
            if self.restarts == 1:
                return x_adv
            with torch.no_grad(), amp_context(x.device, self.amp):
                values = self.objective(model(x_adv).float(), y)
            best_x, best_value = _keep_best(best_x, best_value, x_adv, values)
        return best_x

    def _until_misclassified(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """PGD whose inputs stop at their first misclassified iterate (module docstring):
        the same random starts as :meth:`perturb` and, for every input not yet broken, the
        same steps; each step runs the model on the unbroken inputs only. An input never
        misclassified returns its last restart's last iterate."""
        generator = self.generator()
        result = x.clone()
        active = torch.arange(x.shape[0], device=x.device)
        for restart in range(self.restarts):
            start = self.threat.random_start(x, generator, self.shard) if self.random_start else x.clone()
            x_adv = start[active]
            for _ in range(self.steps):
                if active.numel() == 0:
                    return result
                x_adv.requires_grad_(True)
                y_active = y[active]
                with amp_context(x.device, self.amp):
                    output = model(x_adv)
                (grad,) = torch.autograd.grad(self.objective(output.float(), y_active).sum(), x_adv)
                correct = output.argmax(dim=1) == y_active
                result[active[~correct]] = x_adv.detach()[~correct]
                active, x_adv, grad = active[correct], x_adv.detach()[correct], grad[correct]
                feasible = feasible_set(self.threat, x[active])
                x_adv = feasible.project(feasible.ascend(x_adv, grad, self.alpha))
            result[active] = x_adv
            if restart < self.restarts - 1 and active.numel():  # the last iterate, before the next restart
                with torch.no_grad(), amp_context(x.device, self.amp):
                    active = active[model(x_adv).argmax(dim=1) == y[active]]
        return result

    def settings(self) -> dict:
        returned = ("the first misclassified iterate (any restart), else the last restart's last iterate"
                    if self.until_misclassified else "last iterate; the restart of highest objective")
        return {
            **super().settings(),
            "steps": self.steps,
            "step_size": self.alpha,
            "random_start": self.random_start,
            "restarts": self.restarts,
            "returned_point": returned,
            **({"until_misclassified": True} if self.until_misclassified else {}),
        }


@dataclass
class IFGSM(PGD):
    """Iterative FGSM / BIM (Kurakin et al. 2017): PGD from the clean input, one run."""

    random_start: bool = False
    name = "ifgsm"

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.random_start or self.restarts != 1:
            raise BadInput(
                "ifgsm starts at the clean input once; use pgd for random starts or restarts"
            )


def _keep_best(
    best_x: torch.Tensor, best_value: torch.Tensor, x_adv: torch.Tensor, values: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per sample, keep whichever of ``best_x`` and ``x_adv`` has the higher objective."""
    better = values.float() > best_value
    mask = better.view(-1, *([1] * (x_adv.dim() - 1)))
    return torch.where(mask, x_adv, best_x), torch.where(better, values.float(), best_value)
