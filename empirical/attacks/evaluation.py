"""Robust evaluation: run an attack over a test set and keep per-sample results.

Per input ``i`` we keep the clean margin ``m(F(x_i), y_i)`` and the margin at the
attack's point ``m(F(x_i + delta_i), y_i)`` (THEORY.md section 2); for an ensemble, the
per-input worst case over its stages, and the worst margin after each stage. From them:

* clean accuracy ``P(m > 0)`` (a statistical estimate, Wilson interval);
* robust accuracy, counting an input as robust when it is correct both clean and
  attacked (kind ``attack``: an *upper* estimate, a stronger attack can only lower it);
* ``E[m(F(x + delta), y)]``, the attack's upper estimate of ``gamma`` for the readout
  ``F`` (kind ``attack``, Student-t interval over inputs).

For a subnetwork, :func:`evaluate_subnetwork` attacks ``G_a o f_a`` (the ``gamma_a`` of
section 2); ``Delta_a`` (section 5) is measured in ``bounds.sensitivity``.
Reliability flags (``attacks.diagnostics``) found on the way are kept and copied into the
settings of every :class:`Measurement` made from the evaluation.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field, replace
from typing import Any

import torch
from torch import nn
from tqdm.auto import tqdm

from semirobust.empirical.attacks import diagnostics
from semirobust.empirical.attacks.base import Attack, attack_mode, validate_batch
from semirobust.empirical.attacks.diagnostics import ReliabilityFlag
from semirobust.empirical.attacks.objectives import cross_entropy, multiclass_margin
from semirobust.empirical.measure.statistics import mean_interval, wilson_interval
from semirobust.empirical.runtime.progress import bar_disabled
from semirobust.errors import BadInput
from semirobust.theory.measurement import Kind, Measurement


@dataclass(frozen=True)
class AttackEvaluation:
    """Per-sample outcome of one attack on one model and test set."""

    settings: dict[str, Any]
    clean_margin: torch.Tensor
    adversarial_margin: torch.Tensor
    x_adv: torch.Tensor | None = field(default=None, repr=False)
    stage_margins: dict[str, torch.Tensor] = field(default_factory=dict, repr=False)
    flags: tuple[ReliabilityFlag, ...] = ()

    @property
    def n(self) -> int:
        return int(self.clean_margin.numel())

    @property
    def clean_correct(self) -> torch.Tensor:
        return self.clean_margin > 0

    @property
    def robust_correct(self) -> torch.Tensor:
        return self.clean_correct & (self.adversarial_margin > 0)

    @property
    def success(self) -> torch.Tensor:
        """Per input: correctly classified clean and broken by the attack."""
        return self.clean_correct & (self.adversarial_margin <= 0)

    def stage_robust_accuracy(self) -> dict[str, float]:
        """Cumulative robust accuracy after each stage of an ensemble, in order."""
        return {
            stage: int((self.clean_correct & (margin > 0)).sum()) / self.n
            for stage, margin in self.stage_margins.items()
        }

    def _settings(self, interval: str) -> dict[str, Any]:
        return {
            **self.settings,
            "n": self.n,
            "interval": interval,
            "flags": [flag.to_dict() for flag in self.flags],
        }

    def clean_accuracy(self, name: str = "clean_accuracy") -> Measurement:
        k = int(self.clean_correct.sum())
        return Measurement(
            name=name,
            value=k / self.n,
            interval=wilson_interval(k, self.n),
            kind=Kind.ESTIMATE,
            estimator="test-set accuracy",
            unit="fraction",
            settings={"n": self.n, "interval": "Wilson 95%"},
        )

    def robust_accuracy(self, name: str = "robust_accuracy") -> Measurement:
        k = int(self.robust_correct.sum())
        return Measurement(
            name=name,
            value=k / self.n,
            interval=wilson_interval(k, self.n),
            kind=Kind.ATTACK,
            estimator=str(self.settings["attack"]),
            unit="fraction",
            settings=self._settings("Wilson 95% (sampling only)"),
        )

    def expected_adversarial_margin(self, name: str = "gamma") -> Measurement:
        """``mean_i m(F(x_i + delta_i), y_i)``: upper estimate of ``E[inf_delta m]``; refused
        for an attack that stopped inputs at their first misclassification (it did not
        minimise their margins)."""
        if self.settings.get("until_misclassified"):
            raise ValueError("an attack run until_misclassified estimates robust accuracy, not margins")
        values = self.adversarial_margin.double().numpy()
        return Measurement(
            name=name,
            value=float(values.mean()),
            interval=mean_interval(values),
            kind=Kind.ATTACK,
            estimator=str(self.settings["attack"]),
            unit="logits",
            settings=self._settings("Student-t 95% over inputs"),
        )

    def per_sample(self) -> dict[str, list]:
        """JSON-ready per-input results: clean and final margins and attack success."""
        return {
            "clean_margin": self.clean_margin.tolist(),
            "adversarial_margin": self.adversarial_margin.tolist(),
            "success": self.success.tolist(),
        }

    def with_flags(self, flags: list[ReliabilityFlag]) -> "AttackEvaluation":
        """This evaluation with ``flags`` added (each also raised as a warning)."""
        for flag in flags:
            flag.warn()
        return replace(self, flags=self.flags + tuple(flags))


def predict_logits(
    model: nn.Module, x: torch.Tensor, *, batch_size: int = 512, device: torch.device | str = "cpu"
) -> torch.Tensor:
    """Logits of ``model`` on ``x`` in eval mode (mode restored), on the CPU."""
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            return torch.cat(
                [
                    model(x[i : i + batch_size].to(device)).float().cpu()
                    for i in range(0, x.shape[0], batch_size)
                ]
            )
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
    progress: bool = True,
    diagnose: bool = True,
) -> AttackEvaluation:
    """Attack ``(x, y)`` batch by batch on ``device``; per-sample margins on the CPU.

    ``progress`` shows a bar on stderr of the inputs attacked so far (tqdm, cleared when done).

    ``diagnose`` runs the reliability checks on the first batch (two extra forward passes
    and one backward) and, for AutoAttack-style ensembles, the Square check at the end.
    """
    validate_batch(x, y)
    if x.shape[0] == 0:
        raise BadInput("no inputs to attack (an empty test set, or --limit 0)")
    device = torch.device(device)
    first_x, first_y = x[:batch_size].to(device), y[:batch_size].to(device)
    first_logits = probe_model_inputs(model, first_x, y)
    flags: list[ReliabilityFlag] = []
    if diagnose:
        flags += diagnostics.skipped_stages(attack.limitations(first_logits.shape[1]))
        flags += diagnostics.softmax_output(first_logits)
        flags += diagnostics.randomised_model(model, first_x)
        flags += diagnostics.gradient_flags(model, cross_entropy, first_x, first_y)
    clean, adversarial, kept, stages = [], [], [], {}
    with attack_mode(model):
        bar = tqdm(total=x.shape[0], desc=f"{attack.name} (inputs attacked)", unit="input",
                   disable=bar_disabled(progress), leave=False, file=sys.stderr)
        for start in range(0, x.shape[0], batch_size):
            xb = x[start : start + batch_size].to(device)
            yb = y[start : start + batch_size].to(device)
            outcome = attack.run(model, xb, yb)
            with torch.no_grad():
                clean.append(multiclass_margin(model(xb).float(), yb).cpu())
            adversarial.append(outcome.margin.cpu())
            for stage, margin in outcome.stage_margins.items():
                stages.setdefault(stage, []).append(margin.cpu())
            if keep_adversarial:
                kept.append(outcome.x_adv.cpu())
            bar.update(xb.shape[0])
        bar.close()
    evaluation = AttackEvaluation(
        settings=attack.settings(),
        clean_margin=torch.cat(clean),
        adversarial_margin=torch.cat(adversarial),
        x_adv=torch.cat(kept) if keep_adversarial else None,
        stage_margins={stage: torch.cat(margins) for stage, margins in stages.items()},
    )
    if diagnose:
        flags += diagnostics.black_box_beats_white_box(evaluation.stage_robust_accuracy())
    return evaluation.with_flags(flags)


def evaluate_subnetwork(
    f_a: nn.Module,
    readout: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    attack: Attack,
    **options: Any,
) -> AttackEvaluation:
    """Margins ``m(G_a(f_a(x + delta)), y)`` for a fixed readout ``G_a``: the attack runs on
    ``G_a o f_a``; ``expected_adversarial_margin()`` estimates ``gamma_a`` (section 2)."""
    return evaluate_attack(nn.Sequential(f_a, readout), x, y, attack, **options)


def probe_model_inputs(model: nn.Module, x: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """One clean forward pass on ``x`` that turns a shape mismatch, or any of ``labels``
    out of the model's class range, into :class:`BadInput`."""
    try:
        with attack_mode(model), torch.no_grad():
            logits = model(x).float()
    except RuntimeError as error:
        reason = str(error).strip().splitlines()[0][:160]
        raise BadInput(
            f"the model cannot run on inputs of shape {tuple(x.shape[1:])} and dtype {x.dtype} ({reason})"
        ) from None
    if logits.dim() != 2:
        raise BadInput(
            f"the model must return logits of shape (N, classes), got {tuple(logits.shape)}"
        )
    if labels.numel() and int(labels.max()) >= logits.shape[1]:
        raise BadInput(
            f"label {int(labels.max())} is out of range for a model with {logits.shape[1]} classes (0..{logits.shape[1] - 1})"
        )
    return logits
