"""Worst case per input over several attacks (Croce & Hein 2020's evaluation protocol).

The stages run in order; each attacks only the inputs still unbroken (margin ``> 0``),
and for each input the perturbation of lowest margin ``m(F(x + delta), y)`` seen so far
is kept. Robust accuracy and the attack estimate of ``gamma = E[inf_delta m]``
(THEORY.md section 2) are then computed from those per-input worst cases. With
``progress`` a bar on stderr names the stage running and the inputs it still attacks. Margins are
those of the model's own output (for a subnetwork with a readout, attack the composition
``G_a o f_a``).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field

import torch
from torch import nn
from tqdm.auto import tqdm

from semirobust.empirical.attacks.base import (
    Attack,
    AttackOutcome,
    attack_mode,
    margins_of,
    validate_batch,
)
from semirobust.empirical.runtime.progress import bar_disabled
from semirobust.errors import BadInput


@dataclass
class WorstCase(Attack):
    """An ensemble of ``stages`` sharing one threat model; per input, the lowest margin."""

    stages: tuple[Attack, ...] = field(default_factory=tuple)
    name: str = "worst-case"
    progress: bool = True

    def __post_init__(self) -> None:
        if not self.stages:
            raise BadInput("an ensemble needs at least one attack")
        for stage in self.stages:
            if stage.threat != self.threat:
                raise BadInput(
                    f"ensemble {self.name}: stage {stage.name} has threat {stage.threat}, not {self.threat}"
                )

    def perturb(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return self.run(model, x, y).x_adv

    def run(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> AttackOutcome:
        validate_batch(x, y)
        x = x.detach()
        with attack_mode(model):
            best_x, best_margin = x.clone(), margins_of(model, x, y)
            after_stage: dict[str, torch.Tensor] = {}
            bar = tqdm(self.stages, desc=f"{self.name} stages", unit="stage", disable=bar_disabled(self.progress),
                       leave=False, file=sys.stderr)
            for stage in bar:
                unbroken = (best_margin > 0).nonzero().squeeze(1)
                bar.set_postfix_str(f"{stage.name}: {unbroken.numel()} of {x.shape[0]} inputs left unbroken")
                if unbroken.numel():
                    candidate = stage(model, x[unbroken], y[unbroken])
                    margin = margins_of(model, candidate, y[unbroken])
                    lower = margin < best_margin[unbroken]
                    best_x[unbroken[lower]] = candidate[lower]
                    best_margin[unbroken[lower]] = margin[lower]
                after_stage[stage.name] = best_margin.clone()
            bar.close()
        return AttackOutcome(self.threat.project(best_x, x), best_margin, after_stage)

    def limitations(self, num_classes: int) -> list[str]:
        return [limit for stage in self.stages for limit in stage.limitations(num_classes)]

    def settings(self) -> dict:
        return {
            "attack": self.name,
            **self.threat.to_dict(),
            "seed": self.seed,
            "protocol": "worst case per input; each stage attacks only the inputs still unbroken",
            "stages": [stage.settings() for stage in self.stages],
        }
