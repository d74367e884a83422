"""Carlini & Wagner's l2 attack (Carlini & Wagner 2017) with its binary search over ``c``.

In the change of variables ``x' = (tanh(w) + 1) / 2`` (always in ``[0,1]``) it minimises,
per input, ``||x' - x||_2^2 + c * max(m(F(x'), y), -kappa)`` with Adam, and adjusts ``c``
by binary search: halve the bracket towards smaller ``c`` after a success, grow ``c``
tenfold (or bisect) after a failure. THEORY.md section 6: ``c = 1``, ``kappa = 0``,
50 steps, learning rate 0.01.

C&W is a minimum-norm attack; :meth:`CarliniWagnerL2.minimal_perturbation` returns its
classic output (the smallest successful perturbation found, else the clean input). For
robust accuracy at a radius ``eps`` the uniform call returns, per input, the iterate of
lowest margin among those inside the ``eps``-ball, which is never worse than projecting
the minimum-norm point onto the ball.

For the l-inf threat model the C&W *loss* is used inside PGD (the ``cw`` registry entry).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterator

import torch
from torch import nn

from semirobust.empirical.attacks.base import Attack, attack_mode
from semirobust.empirical.attacks.gradient import PGD
from semirobust.empirical.attacks.objectives import multiclass_margin
from semirobust.empirical.runtime.device import amp_context
from semirobust.errors import BadInput

_TANH_SHRINK = 1 - 1e-6  # keeps atanh finite at pixels equal to 0 or 1
_NO_UPPER_BOUND = 1e10


@dataclass
class CarliniWagnerL2(Attack):
    """C&W l2: Adam on ``tanh``-space inputs, ``search_steps`` rounds of binary search on ``c``."""

    c: float = 1.0
    kappa: float = 0.0
    steps: int = 50
    lr: float = 0.01
    search_steps: int = 5

    name = "cw"

    def __post_init__(self) -> None:
        if self.threat.norm != "l2":
            raise BadInput(
                f"cw-l2 needs --norm l2 (got {self.threat.norm}); for l-inf use the cw loss in PGD"
            )
        if not (
            self.c > 0
            and self.kappa >= 0
            and self.lr > 0
            and self.steps >= 1
            and self.search_steps >= 1
        ):
            raise BadInput(
                f"cw needs c > 0, kappa >= 0, lr > 0, steps >= 1, search_steps >= 1 "
                f"(got {self.c}, {self.kappa}, {self.lr}, {self.steps}, {self.search_steps})"
            )

    def perturb(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Per input, the lowest-margin iterate inside the ``eps``-ball."""
        best_x, best_margin = x.clone(), torch.full((x.shape[0],), math.inf, device=x.device)
        for candidate, margin, distance in self._iterates(model, x, y):
            better = (distance <= self.threat.eps) & (margin < best_margin)
            best_x[better], best_margin[better] = candidate[better], margin[better]
        return best_x

    def minimal_perturbation(
        self, model: nn.Module, x: torch.Tensor, y: torch.Tensor
    ) -> torch.Tensor:
        """Classic C&W output: per input the closest successful ``x'`` found (else ``x``).

        Success means ``m(F(x'), y) <= -kappa`` (misclassified, with strict ``< 0`` when
        ``kappa = 0``). Not restricted to the ``eps``-ball.
        """
        best_x, best_distance = x.clone(), torch.full((x.shape[0],), math.inf, device=x.device)
        for candidate, margin, distance in self._iterates(model, x, y):
            better = _succeeded(margin, self.kappa) & (distance < best_distance)
            best_x[better], best_distance[better] = candidate[better], distance[better]
        return best_x.detach()

    def _iterates(
        self, model: nn.Module, x: torch.Tensor, y: torch.Tensor
    ) -> Iterator[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
        """Every Adam iterate of every search round: ``(x', m(F(x'), y), ||x' - x||_2)``."""
        with attack_mode(model):
            w_clean = torch.atanh((2 * x - 1) * _TANH_SHRINK)
            c = torch.full((x.shape[0],), float(self.c), device=x.device)
            lower = torch.zeros_like(c)
            upper = torch.full_like(c, _NO_UPPER_BOUND)
            for _ in range(self.search_steps):
                w = w_clean.clone()
                adam = _Adam(w, self.lr)
                succeeded = torch.zeros_like(c, dtype=torch.bool)
                for _ in range(self.steps):
                    w.requires_grad_(True)
                    candidate = (torch.tanh(w) + 1) / 2
                    with amp_context(x.device, self.amp):
                        logits = model(candidate)
                    margin = multiclass_margin(logits.float(), y)
                    distance_sq = (candidate - x).flatten(start_dim=1).pow(2).sum(dim=1)
                    loss = (distance_sq + c * margin.clamp(min=-self.kappa)).sum()
                    (grad,) = torch.autograd.grad(loss, w)
                    w = adam.step(w.detach(), grad)
                    detached = candidate.detach()
                    yield detached, margin.detach(), distance_sq.detach().sqrt()
                    succeeded |= _succeeded(margin.detach(), self.kappa)
                c, lower, upper = _next_constants(c, lower, upper, succeeded)

    def settings(self) -> dict:
        return {
            **super().settings(),
            "objective": f"cw-l2(c={self.c:g}, kappa={self.kappa:g})",
            "steps": self.steps,
            "lr": self.lr,
            "search_steps": self.search_steps,
            "returned_point": "lowest-margin iterate inside the eps-ball",
        }


class _Adam:
    """Adam (Kingma & Ba 2015, default betas) on one tensor; elementwise, so each input's
    optimisation is independent of the others in the batch."""

    def __init__(
        self,
        like: torch.Tensor,
        lr: float,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
    ):
        self.lr, self.betas, self.eps, self.t = lr, betas, eps, 0
        self.first, self.second = torch.zeros_like(like), torch.zeros_like(like)

    def step(self, w: torch.Tensor, grad: torch.Tensor) -> torch.Tensor:
        beta1, beta2 = self.betas
        self.t += 1
        self.first.mul_(beta1).add_(grad, alpha=1 - beta1)
        self.second.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
        corrected_first = self.first / (1 - beta1**self.t)
        corrected_second = self.second / (1 - beta2**self.t)
        return w - self.lr * corrected_first / (corrected_second.sqrt() + self.eps)


@dataclass
class CarliniWagnerLinf(PGD):
    """The l-inf variant: PGD maximising the C&W loss (``objective=cw_loss(kappa)``)."""

    name = "cw-linf"


def _succeeded(margin: torch.Tensor, kappa: float) -> torch.Tensor:
    return margin < 0 if kappa == 0 else margin <= -kappa


def _next_constants(
    c: torch.Tensor, lower: torch.Tensor, upper: torch.Tensor, succeeded: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Binary search on ``c``: success shrinks the bracket from above, failure from below
    (multiplying ``c`` by 10 while no success has bounded it)."""
    upper = torch.where(succeeded, torch.minimum(upper, c), upper)
    lower = torch.where(succeeded, lower, torch.maximum(lower, c))
    bounded = upper < _NO_UPPER_BOUND
    c = torch.where(bounded, (lower + upper) / 2, c * 10)
    return c, lower, upper
