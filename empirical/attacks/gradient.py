"""Gradient attacks: FGSM, I-FGSM (BIM) and PGD with random start and restarts
(THEORY.md section 6), for every norm of the threat model (l-inf and l2).

PGD (Madry et al. 2018): ``x_{t+1} = Proj_S(x_t + alpha * dir(grad_x objective))`` with
``dir = sign`` for l-inf and ``grad/||grad||_2`` for l2, from a random start in the ball.
With several restarts, each input keeps the iterate with the highest objective seen.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from semirobust.empirical.attacks.base import Attack, objective_and_gradient
from semirobust.empirical.device import amp_context
from semirobust.empirical.errors import BadInput
from semirobust.empirical.objectives import is_logit_objective, multiclass_margin


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
    """Projected gradient ascent; ``step_size`` defaults to ``2.5 * eps / steps``.

    Per input it returns the best iterate seen over all steps and restarts: for an
    objective of the logits (cross-entropy, margin, C&W) the one of lowest margin
    ``m(F(x_t), y)``, so an input broken at any iterate stays broken; for any other
    objective (feature displacement, a readout's margin on features) the one of highest
    objective. Scores come from the forward pass the gradient needs anyway.
    """

    steps: int = 10
    step_size: float | None = None
    random_start: bool = True
    restarts: int = 1

    name = "pgd"

    def __post_init__(self) -> None:
        if self.steps < 1 or self.restarts < 1:
            raise BadInput(f"{self.name} needs steps >= 1 and restarts >= 1, got {self.steps} and {self.restarts}")
        if self.step_size is not None and not self.step_size > 0:
            raise BadInput(f"{self.name} step size must be > 0, got {self.step_size}")

    @property
    def alpha(self) -> float:
        return self.step_size if self.step_size is not None else 2.5 * self.threat.eps / self.steps

    def perturb(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        generator = self.generator()
        score = _margin_score if is_logit_objective(self.objective) else _objective_score
        best_x = x.clone()
        best_score = torch.full((x.shape[0],), float("-inf"), device=x.device)
        for _ in range(self.restarts):
            x_adv = self.threat.random_start(x, generator) if self.random_start else x.clone()
            for _ in range(self.steps):
                x_adv.requires_grad_(True)
                with amp_context(x.device, self.amp):
                    output = model(x_adv)
                values = self.objective(output.float(), y)
                (grad,) = torch.autograd.grad(values.sum(), x_adv)
                x_adv = x_adv.detach()
                _keep_best(best_x, best_score, x_adv, score(output.detach(), values.detach(), y))
                x_adv = self.threat.project(x_adv + self.alpha * self.threat.geometry.ascent_direction(grad), x)
            with torch.no_grad(), amp_context(x.device, self.amp):
                output = model(x_adv)
            _keep_best(best_x, best_score, x_adv, score(output, self.objective(output.float(), y), y))
        return best_x

    def settings(self) -> dict:
        return {
            **super().settings(),
            "steps": self.steps,
            "step_size": self.alpha,
            "random_start": self.random_start,
            "restarts": self.restarts,
            "returned_point": "lowest-margin iterate" if is_logit_objective(self.objective) else "highest-objective iterate",
        }


@dataclass
class IFGSM(PGD):
    """Iterative FGSM / BIM (Kurakin et al. 2017): PGD from the clean input, one run."""

    random_start: bool = False
    name = "ifgsm"

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.random_start or self.restarts != 1:
            raise BadInput("ifgsm starts at the clean input once; use pgd for random starts or restarts")


def _margin_score(output: torch.Tensor, values: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return -multiclass_margin(output.float(), y)


def _objective_score(output: torch.Tensor, values: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return values.float()


def _keep_best(best_x: torch.Tensor, best_score: torch.Tensor, x_adv: torch.Tensor, score: torch.Tensor) -> None:
    """In place, per sample: replace ``best_x`` by ``x_adv`` where ``score`` is higher."""
    better = score > best_score
    best_x[better] = x_adv[better]
    best_score[better] = score[better]
