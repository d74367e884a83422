"""Robust evaluation: run an attack over a test set and keep per-sample results.

Per input ``i`` we keep the clean margin ``m(F(x_i), y_i)`` and the margin at the
attack's point ``m(F(x_i + delta_i), y_i)`` (THEORY.md section 2). From them:

* clean accuracy ``P(m > 0)`` (a statistical estimate, Wilson interval);
* robust accuracy, counting an input as robust when it is correct both clean and
  attacked (kind ``attack``: an *upper* estimate, a stronger attack can only lower it);
* ``E[m(F(x + delta), y)]``, the attack's upper estimate of ``gamma`` for the readout
  ``F`` (kind ``attack``, Student-t interval over inputs).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn
from tqdm.auto import tqdm

from semirobust.empirical.attacks.base import Attack, validate_batch
from semirobust.empirical.objectives import multiclass_margin
from semirobust.empirical.stats import mean_interval, wilson_interval
from semirobust.theory.measurement import Kind, Measurement


@dataclass(frozen=True)
class AttackEvaluation:
    """Per-sample outcome of one attack on one model and test set."""

    settings: dict[str, Any]
    clean_margin: torch.Tensor
    adversarial_margin: torch.Tensor
    x_adv: torch.Tensor | None = field(default=None, repr=False)

    @property
    def n(self) -> int:
        return int(self.clean_margin.numel())

    @property
    def clean_correct(self) -> torch.Tensor:
        return self.clean_margin > 0

    @property
    def robust_correct(self) -> torch.Tensor:
        return self.clean_correct & (self.adversarial_margin > 0)

    def clean_accuracy(self, name: str = "clean_accuracy") -> Measurement:
        k = int(self.clean_correct.sum())
        return Measurement(
            name=name, value=k / self.n, interval=wilson_interval(k, self.n),
            kind=Kind.ESTIMATE, estimator="test-set accuracy", unit="fraction",
            settings={"n": self.n, "interval": "Wilson 95%"},
        )

    def robust_accuracy(self, name: str = "robust_accuracy") -> Measurement:
        k = int(self.robust_correct.sum())
        return Measurement(
            name=name, value=k / self.n, interval=wilson_interval(k, self.n),
            kind=Kind.ATTACK, estimator=str(self.settings["attack"]), unit="fraction",
            settings={**self.settings, "n": self.n, "interval": "Wilson 95% (sampling only)"},
        )

    def expected_adversarial_margin(self, name: str = "gamma") -> Measurement:
        """``mean_i m(F(x_i + delta_i), y_i)``: upper estimate of ``E[inf_delta m]``."""
        values = self.adversarial_margin.double().numpy()
        return Measurement(
            name=name, value=float(values.mean()), interval=mean_interval(values),
            kind=Kind.ATTACK, estimator=str(self.settings["attack"]), unit="logits",
            settings={**self.settings, "n": self.n, "interval": "Student-t 95% over inputs"},
        )


def predict_logits(model: nn.Module, x: torch.Tensor, *, batch_size: int = 512,
                   device: torch.device | str = "cpu") -> torch.Tensor:
    """Logits of ``model`` on ``x`` in eval mode (mode restored), on the CPU."""
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            return torch.cat([
                model(x[i:i + batch_size].to(device)).float().cpu()
                for i in range(0, x.shape[0], batch_size)
            ])
    finally:
        model.train(was_training)


def evaluate_attack(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    attack: Attack,
    *,
    batch_size: int = 256,
    device: torch.device | str = "cpu",
    keep_adversarial: bool = False,
    progress: bool = False,
) -> AttackEvaluation:
    """Attack ``(x, y)`` batch by batch on ``device``; per-sample margins on the CPU."""
    validate_batch(x, y)
    device = torch.device(device)
    was_training = model.training
    model.eval()
    clean, adversarial, kept = [], [], []
    try:
        batches = range(0, x.shape[0], batch_size)
        for start in tqdm(batches, desc=f"{attack.name}", disable=not progress, leave=False):
            xb = x[start:start + batch_size].to(device)
            yb = y[start:start + batch_size].to(device)
            xb_adv = attack(model, xb, yb)
            with torch.no_grad():
                clean.append(multiclass_margin(model(xb).float(), yb).cpu())
                adversarial.append(multiclass_margin(model(xb_adv).float(), yb).cpu())
            if keep_adversarial:
                kept.append(xb_adv.cpu())
    finally:
        model.train(was_training)
    return AttackEvaluation(
        settings=attack.settings(),
        clean_margin=torch.cat(clean),
        adversarial_margin=torch.cat(adversarial),
        x_adv=torch.cat(kept) if keep_adversarial else None,
    )
