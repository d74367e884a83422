"""Algorithm S1 end to end: fit, attack and judge linear readouts of ``f*_a`` (THEORY.md 6, 3).

On a robust network ``F*`` split at ``a``, with the test inputs divided into *fit* inputs
(the least squares, :mod:`semirobust.empirical.measure.linear_readout`) and *held-out* inputs
(everything reported), the study evaluates:

* ``combined``: the readout ``G`` of ``[h_1, ..., h_a]`` (Algorithm S1);
* ``per_layer``: one readout per layer ``i <= a``, fitted to ``F*`` on ``h_i`` alone;
* ``blocks``: ``G`` cut into its per-layer parts ``G_i = h_i W_i + b/a`` (``G = sum_i G_i``);
* ``reference``: ``F*`` itself, on the same held-out inputs.

Each readout gets its clean accuracy (estimate), robust accuracy under cross-entropy PGD
(attack), ``gamma = E[m(G(x + delta), y)]`` under margin PGD (attack: an upper estimate
of ``E[inf_delta m]``, caveat C1: named readout, its norms in ``settings``), and for the
fitted ones the fit quality on held-out inputs (R^2 and argmax agreement with ``F*``).

L2 reads ``G`` as the layer ``n = a + 1`` built linearly from layers ``1..a`` and is judged
twice: with the blocks ``G_i`` (the readouts ``lambda_i^T`` the lemma names; L2's linear
structure then holds by construction) and with the separately fitted per-layer readouts
(not the lemma's readouts: each one approximates ``F*`` by itself).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from functools import partial

import torch
from torch import nn

from semirobust.empirical.attacks import AttackSettings, build_attack
from semirobust.empirical.attacks.evaluation import evaluate_attack
from semirobust.empirical.attacks.objectives import negative_margin
from semirobust.empirical.attacks.threat import ThreatModel
from semirobust.empirical.measure.linear_readout import (
    FitQuality,
    LeastSquaresSettings,
    LinearReadout,
    block_readouts,
    fit_linear_readout,
    fit_quality,
)
from semirobust.empirical.model.stages import split_network
from semirobust.theory import judge
from semirobust.theory.measurement import Measurement
from semirobust.theory.verdict import Verdict

ROBUST_NETWORK = "F* (the checkpoint's network)"


@dataclass(frozen=True)
class S1Config:
    """The attack on every readout (``attack``: the same settings for the cross-entropy
    and the margin PGD) and the least-squares settings of every fit."""

    threat: ThreatModel
    attack: AttackSettings = field(default_factory=lambda: AttackSettings(steps=10, restarts=1))
    batch_size: int = 256
    least_squares: LeastSquaresSettings = field(default_factory=LeastSquaresSettings)

    def to_dict(self) -> dict:
        return {
            **self.threat.to_dict(),
            **self.attack.to_dict(),
            "attack_settings": self.attack.to_dict(),
            "attack_batch_size": self.batch_size,
            **self.least_squares.to_dict(),
        }


@dataclass(frozen=True)
class ReadoutReport:
    """One readout's measured numbers on the held-out inputs."""

    readout: dict
    clean_accuracy: Measurement
    robust_accuracy: Measurement
    gamma: Measurement
    fit: FitQuality | None = None

    def labelled(self) -> list[tuple[str, Measurement]]:
        """``(quantity, measurement)`` for every number of this readout, in table order."""
        quality = (
            []
            if self.fit is None
            else [("R^2 vs F*", self.fit.r2), ("agreement w. F*", self.fit.agreement)]
        )
        return [
            ("clean accuracy", self.clean_accuracy),
            ("robust accuracy", self.robust_accuracy),
            ("gamma", self.gamma),
            *quality,
        ]

    def to_dict(self) -> dict:
        return {
            **self.readout,
            "clean_accuracy": self.clean_accuracy.to_dict(),
            "robust_accuracy": self.robust_accuracy.to_dict(),
            "gamma": self.gamma.to_dict(),
            **({} if self.fit is None else self.fit.to_dict()),
        }


@dataclass(frozen=True)
class L2Check:
    """L2's verdict and which readout each ``gamma_i`` it read was measured with
    (``gamma_{a+1}`` is the combined readout, L2's ``f^(n)``)."""

    reads: dict[str, str]
    verdict: Verdict

    def to_dict(self) -> dict:
        return {"reads": self.reads, "verdict": self.verdict.to_dict()}


@dataclass(frozen=True)
class S1Study:
    """Every readout of the study and the two L2 verdicts."""

    a: int
    n: int
    fit_inputs: int
    held_out_inputs: int
    config: S1Config
    reference: ReadoutReport
    combined: ReadoutReport
    per_layer: tuple[ReadoutReport, ...]
    blocks: tuple[ReadoutReport, ...]
    l2_blocks: L2Check
    l2_per_layer: L2Check

    def reports(self) -> list[ReadoutReport]:
        return [self.reference, self.combined, *self.per_layer, *self.blocks]

    def to_dict(self) -> dict:
        return {
            "split": {"a": self.a, "n": self.n, "fb_layers": self.n - self.a},
            "inputs": {"fit": self.fit_inputs, "held_out": self.held_out_inputs},
            "settings": self.config.to_dict(),
            "reference": self.reference.to_dict(),
            "combined": self.combined.to_dict(),
            "per_layer": [r.to_dict() for r in self.per_layer],
            "blocks": [r.to_dict() for r in self.blocks],
            "L2": {"blocks": self.l2_blocks.to_dict(), "per_layer": self.l2_per_layer.to_dict()},
        }


def run_s1(
    model: nn.Sequential,
    a: int,
    x_fit: torch.Tensor,
    x_eval: torch.Tensor,
    y_eval: torch.Tensor,
    config: S1Config,
    *,
    device: torch.device | str = "cpu",
) -> S1Study:
    """Fit the readouts on ``x_fit`` against ``model``'s logits; attack and judge them on
    ``(x_eval, y_eval)``."""
    split = split_network(model, a)
    fit = partial(
        fit_linear_readout, split.f_a, model, x_fit, settings=config.least_squares, device=device
    )
    combined = fit(tuple(range(1, a + 1)), name=f"S1 combined h_1..h_{a}")
    per_layer = [fit((i,), name=f"S1 per-layer h_{i}") for i in range(1, a + 1)]

    def report(readout: LinearReadout, name: str) -> ReadoutReport:
        return evaluate_readout(
            readout,
            readout.description(),
            x_eval,
            y_eval,
            config,
            name=name,
            device=device,
            target=model,
        )

    combined_report = report(combined, f"combined_{a}")
    per_layer_reports = tuple(report(r, f"layer_{i}") for i, r in enumerate(per_layer, 1))
    block_reports = tuple(
        report(r, f"block_{i}") for i, r in enumerate(block_readouts(combined), 1)
    )
    reference = evaluate_readout(
        model, {"readout": ROBUST_NETWORK}, x_eval, y_eval, config, name="reference", device=device
    )
    return S1Study(
        a=a,
        n=split.n,
        fit_inputs=int(x_fit.shape[0]),
        held_out_inputs=int(x_eval.shape[0]),
        config=config,
        reference=reference,
        combined=combined_report,
        per_layer=per_layer_reports,
        blocks=block_reports,
        l2_blocks=judge_l2(combined_report, block_reports),
        l2_per_layer=judge_l2(combined_report, per_layer_reports),
    )


def evaluate_readout(
    readout: nn.Module,
    description: dict,
    x: torch.Tensor,
    y: torch.Tensor,
    config: S1Config,
    *,
    name: str,
    device: torch.device | str = "cpu",
    target: nn.Module | None = None,
) -> ReadoutReport:
    """Clean accuracy, robust accuracy (PGD, cross-entropy), gamma (PGD, negative margin)
    and, given ``target`` (``F*``), the fit quality of ``readout`` on ``(x, y)``."""
    ce_attack = build_attack("pgd", config.attack.config(config.threat))
    margin_attack = build_attack("pgd", config.attack.config(config.threat, negative_margin))
    accuracy = evaluate_attack(
        readout, x, y, ce_attack, batch_size=config.batch_size, device=device
    )
    margin = evaluate_attack(
        readout, x, y, margin_attack, batch_size=config.batch_size, device=device
    )
    gamma = margin.expected_adversarial_margin(f"gamma_{name}")
    return ReadoutReport(
        readout=description,
        clean_accuracy=accuracy.clean_accuracy(f"clean_accuracy_{name}"),
        robust_accuracy=accuracy.robust_accuracy(f"robust_accuracy_{name}"),
        gamma=replace(gamma, settings={**gamma.settings, **description}),
        fit=None
        if target is None
        else fit_quality(readout, target, x, name=name, seed=config.attack.seed, device=device),
    )


def judge_l2(combined: ReadoutReport, parts: tuple[ReadoutReport, ...]) -> L2Check:
    """L2 with ``gamma_i`` (``i = 1..a``) from ``parts`` and ``gamma_{a+1}`` from the combined
    readout: ``gamma_{a+1} >= sum_i gamma_i`` (THEORY.md 3, judged as an inequality: C4)."""
    ordered = [*parts, combined]
    measurements = {f"gamma_{i}": r.gamma for i, r in enumerate(ordered, 1)}
    reads = {f"gamma_{i}": r.readout["readout"] for i, r in enumerate(ordered, 1)}
    return L2Check(reads, judge("L2", measurements, layers={"n": len(ordered)}))
