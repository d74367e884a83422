"""Reliability checks on an attack evaluation (after AutoAttack's ``checks.py``).

An attack only gives an *upper* estimate of an infimum; these checks catch the common
ways the estimate is far too high. Each returns :class:`ReliabilityFlag` objects, which
travel with the evaluation into every report and are also raised as
:class:`AttackReliabilityWarning`. docs/attacks.md explains each code and what to do.

* ``randomised-model``: two forward passes on the same inputs differ (dropout left on,
  a randomised defence): gradients and margins are then noisy.
* ``softmax-output``: the model returns probabilities, not logits; cross-entropy on them
  saturates and margins are on the wrong scale.
* ``zero-gradient`` / ``nan-gradient``: the objective's input gradient is exactly zero
  or not finite for some inputs (gradient masking, saturated softmax, non-differentiable
  layers): gradient attacks cannot move those inputs.
* ``black-box-beats-white-box``: Square (gradient-free) broke inputs that every
  gradient attack before it left robust: a sign of masked gradients.
* ``stage-skipped``: part of an attack cannot run on this model (AutoAttack's targeted
  stages need enough classes) and was left out, so the attack is weaker than its name.
* ``not-monotone``: robust accuracy rose with a larger ``eps`` or with a stronger attack
  of the ladder FGSM -> I-FGSM -> PGD -> AutoAttack.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Mapping, Sequence

import torch
from torch import nn

from semirobust.empirical.attacks.base import attack_mode, objective_and_gradient
from semirobust.empirical.attacks.objectives import Objective

DOCS = "docs/attacks.md#reliability-flags"
SQUARE_TOLERANCE = 0.002  # AutoAttack's own threshold for the Square check
WHITE_BOX_STAGE_NAMES = ("apgd-ce", "apgd-t", "fab-t")


class AttackReliabilityWarning(UserWarning):
    """An attack evaluation may overstate robustness; see docs/attacks.md."""


@dataclass(frozen=True)
class ReliabilityFlag:
    code: str
    message: str

    def to_dict(self) -> dict[str, str]:
        return {"code": self.code, "message": self.message, "doc": DOCS}

    def warn(self) -> None:
        warnings.warn(
            AttackReliabilityWarning(f"{self.code}: {self.message} (see {DOCS})"), stacklevel=3
        )


def randomised_model(
    model: nn.Module, x: torch.Tensor, tolerance: float = 1e-5
) -> list[ReliabilityFlag]:
    """Flag a model whose two eval-mode forward passes on ``x`` differ by more than
    ``tolerance`` relative to the output scale."""
    with attack_mode(model), torch.no_grad():
        first, second = model(x).float(), model(x).float()
    scale = first.abs().max().clamp_min(1.0)
    difference = float((first - second).abs().max() / scale)
    if difference > tolerance:
        return [
            ReliabilityFlag(
                "randomised-model", f"two forward passes differ by {difference:.3g} (relative)"
            )
        ]
    return []


def softmax_output(logits: torch.Tensor, tolerance: float = 1e-4) -> list[ReliabilityFlag]:
    """Flag outputs that look like probabilities: in ``[0,1]`` with rows summing to 1."""
    if logits.shape[1] < 2 or logits.numel() == 0:
        return []
    in_unit = bool((logits >= -tolerance).all() and (logits <= 1 + tolerance).all())
    sums_to_one = bool(((logits.sum(dim=1) - 1).abs() <= tolerance).all())
    if in_unit and sums_to_one:
        return [
            ReliabilityFlag(
                "softmax-output",
                "the model's outputs are probabilities (rows in [0,1] summing to 1); pass logits",
            )
        ]
    return []


def gradient_flags(
    model: nn.Module, objective: Objective, x: torch.Tensor, y: torch.Tensor
) -> list[ReliabilityFlag]:
    """Flag inputs whose objective gradient ``grad_x objective(F(x), y)`` is all zero or not finite."""
    with attack_mode(model):
        _, grad = objective_and_gradient(model, objective, x, y)
    flat = grad.flatten(start_dim=1)
    flags = []
    not_finite = int((~torch.isfinite(flat)).any(dim=1).sum())
    zero = int((flat == 0).all(dim=1).sum())
    if not_finite:
        flags.append(
            ReliabilityFlag(
                "nan-gradient",
                f"{not_finite} of {len(flat)} probed inputs have a NaN or inf input gradient",
            )
        )
    if zero:
        flags.append(
            ReliabilityFlag(
                "zero-gradient",
                f"{zero} of {len(flat)} probed inputs have an exactly zero input gradient",
            )
        )
    return flags


def black_box_beats_white_box(stage_accuracy: Mapping[str, float]) -> list[ReliabilityFlag]:
    """Flag Square lowering robust accuracy by more than 0.2 points after the white-box
    stages (``stage_accuracy``: cumulative robust accuracy after each stage, in order)."""
    white_box = [v for k, v in stage_accuracy.items() if k in WHITE_BOX_STAGE_NAMES]
    if "square" not in stage_accuracy or not white_box:
        return []
    gain = min(white_box) - stage_accuracy["square"]
    if gain > SQUARE_TOLERANCE:
        return [
            ReliabilityFlag(
                "black-box-beats-white-box",
                f"Square lowered robust accuracy by {gain:.2%} after the gradient attacks",
            )
        ]
    return []


def not_monotone(points: Sequence[tuple[str, float]], what: str) -> list[ReliabilityFlag]:
    """Flag every step of ``points`` (label, robust accuracy), ordered from weakest to
    strongest threat, where robust accuracy *increases*."""
    flags = []
    for (label_a, value_a), (label_b, value_b) in zip(points, points[1:]):
        if value_b > value_a:
            flags.append(
                ReliabilityFlag(
                    "not-monotone",
                    f"robust accuracy rose along {what}: {label_a} {value_a:.4f} -> {label_b} {value_b:.4f}",
                )
            )
    return flags


def skipped_stages(limitations: Sequence[str]) -> list[ReliabilityFlag]:
    """One ``stage-skipped`` flag per limitation an attack reported for this model."""
    return [ReliabilityFlag("stage-skipped", limitation) for limitation in limitations]
