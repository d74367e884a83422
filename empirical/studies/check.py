"""``check``: every quantity of the theory on one trained network, and every verdict.

For a checkpoint and a split ``a`` (THEORY.md sections 2-5), on the first ``n`` test
inputs:

* robust accuracy under PGD (cross-entropy) and the gamma sandwich of the whole network
  with its trained logits as readout: certified lower bounds (IBP, CROWN-IBP) and the
  attacked upper estimate of ``E[inf_delta m(F(x+delta), y)]``;
* ``rho_j`` for every consecutive pair of weight layers on the PGD-attacked inputs, with
  the estimator's reading at independence;
* l2 Lipschitz bounds per layer and per part; the feature sensitivity ``Delta_a`` and
  the Lipschitz-transfer bound (section 5), certified and estimated, at every valid split;
* the judge's verdicts on T1, L1, T2 and LIP with canonical readouts (the trained rest of
  the network after each layer, caveat C1). With these readouts every layer's gamma is
  the whole network's, and A2's margin gap is exactly 0 (so A2/B2 cannot hold). L2 and
  T3 are about linear readouts of earlier layers and do not apply to a ReLU network's
  own layers; ``semirobust s1`` fits such readouts.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from semirobust.empirical.attacks import PGD
from semirobust.empirical.attacks.evaluation import evaluate_attack
from semirobust.empirical.attacks.threat import ThreatModel
from semirobust.empirical.bounds import interval_bounds
from semirobust.empirical.bounds.layer_rules import UnsupportedLayer
from semirobust.empirical.bounds.lipschitz import LipschitzBound, lipschitz_upper, split_lipschitz
from semirobust.empirical.dependency import dependency_per_layer_pair
from semirobust.empirical.measure.per_sample import lipschitz_transfer_rows
from semirobust.empirical.measure.sandwich import gamma_sandwich
from semirobust.empirical.measure.transfer import lipschitz_transfer_bound
from semirobust.empirical.model.stages import (
    count_weight_layers,
    layer_activations,
    split_network,
    valid_splits,
)
from semirobust.empirical.reports.tables import summarize_warnings
from semirobust.empirical.studies.algorithm1_verdicts import canonical_a2_measurements, renamed
from semirobust.theory.measurement import Measurement
from semirobust.theory.scope import judge_per_sample, judge_scopes

CANONICAL_READOUT = "canonical: the trained rest of the network after the layer (logits)"
NOT_APPLICABLE = {
    "L2": "does not apply: L2 reads linear readouts lambda_i^T f^(i) of earlier layers; "
          "fit them with `semirobust s1`",
    "T3": "does not apply: T3 assumes every layer of f_b is a linear combination of earlier "
          "layers, which a ReLU network's layers are not",
}


@dataclass(frozen=True)
class CheckSettings:
    """What ``check`` measures with (stored in report.json)."""

    a: int
    threat: ThreatModel
    n: int = 200
    estimator: str = "ksg"
    bound_methods: tuple[str, ...] = ("ibp", "crown-ibp")
    attack_steps: int = 20
    restarts: int = 2
    seed: int = 0


def run_check(model: nn.Sequential, x: torch.Tensor, y: torch.Tensor, settings: CheckSettings,
              *, device: torch.device) -> dict[str, Any]:
    """All measurements, per-split bounds and verdicts for ``model`` split at ``settings.a``."""
    model = model.to(device).eval()
    x, y = x[:settings.n], y[:settings.n]
    n_layers = count_weight_layers(model)
    split_network(model, settings.a)  # validates the split before any work
    lipschitz, uncertifiable = _certification(model, x, settings.threat, device)
    threat = settings.threat
    pgd = PGD(threat, steps=settings.attack_steps, restarts=settings.restarts, seed=settings.seed)
    attacked = evaluate_attack(model, x, y, pgd, device=device, keep_adversarial=True)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        sandwich = gamma_sandwich(model, x, y, threat,
                                  methods=settings.bound_methods if lipschitz else (),
                                  readout="the trained rest of the network (logits)")
        with torch.no_grad():
            activations, _ = layer_activations(model, attacked.x_adv.to(device))
        pairs = dependency_per_layer_pair(
            activations, y, settings.estimator,  # estimated where the activations live
            names=[f"rho_{j}" for j in range(2, n_layers + 1)], seed=settings.seed, permutations=5,
        )
    per_split = [_split_bounds(model, x, y, threat, lipschitz, a, settings) if lipschitz else {"a": a, "measurements": {}}
                 for a in valid_splits(model)]
    at_a = next(s for s in per_split if s["a"] == settings.a)
    named = _named_measurements(sandwich.measurements(), pairs, at_a["measurements"], n_layers)
    rho = {f"rho_{j}": pair.rho for j, pair in zip(range(2, n_layers + 1), pairs)}
    for entry in per_split:
        entry["T2_bound"] = _t2_bound(named["gamma_whole"], rho, entry["a"], n_layers)
    return {
        "split": {"a": settings.a, "n": n_layers, "fb_layers": n_layers - settings.a},
        "threat": threat.to_dict(),
        "samples": int(y.numel()),
        "robust_accuracy": attacked.robust_accuracy().to_dict(),
        "clean_accuracy": attacked.clean_accuracy().to_dict(),
        "measurements": {k: [m.to_dict() for m in v] for k, v in named.items()},
        "rho": [{"pair": [j - 1, j], **p.rho.to_dict(),
                 "independent": p.independent.to_dict() if p.independent else None}
                for j, p in zip(range(2, n_layers + 1), pairs)],
        "certification": uncertifiable or "certified bounds and Lipschitz bounds computed",
        "lipschitz_layers": [vars(layer) for layer in lipschitz.layers] if lipschitz else [],
        "per_split": [{k: v for k, v in s.items() if k not in ("measurements", "transfer")}
                      for s in per_split],
        "sandwich_violations": int(sandwich.violations().sum()),
        "warnings": summarize_warnings(caught),
        "verdicts": _verdicts(named, settings.a, n_layers, uncertifiable,
                              lipschitz_transfer_rows(at_a["transfer"], sandwich, CANONICAL_READOUT)
                              if "transfer" in at_a else []),
    }


def _certification(model: nn.Module, x: torch.Tensor, threat: ThreatModel,
                   device: torch.device) -> tuple[LipschitzBound | None, str | None]:
    """``(the model's Lipschitz bound, None)``, or ``(None, why)`` when interval propagation
    or the Lipschitz bound has no rule for one of its layers (a ViT's attention): then
    ``check`` reports the attacked and estimated quantities and no certified ones."""
    try:
        interval_bounds(model, x[:1], threat)
        return lipschitz_upper(model, tuple(x.shape[1:]), device=device), None
    except UnsupportedLayer as error:
        return None, f"no certified bounds: {error}"


def _split_bounds(model: nn.Sequential, x: torch.Tensor, y: torch.Tensor, threat: ThreatModel,
                  lipschitz, a: int, settings: CheckSettings) -> dict[str, Any]:
    """Lipschitz transfer (THEORY.md section 5) at split ``a``: certified and estimated."""
    _, lipschitz_b = split_lipschitz(model, lipschitz, a)
    transfer = lipschitz_transfer_bound(split_network(model, a), x, y, threat, lipschitz_b=lipschitz_b,
                                        steps=settings.attack_steps, seed=settings.seed)
    measurements = {m.name: m for m in transfer.measurements()}
    return {
        "a": a,
        "measurements": measurements,
        "transfer": transfer,
        **{name: m.to_dict() for name, m in measurements.items()},
    }


def _named_measurements(sandwich: list[Measurement], pairs, transfer: dict[str, Measurement],
                        n_layers: int) -> dict[str, list[Measurement]]:
    """The judge's names (docs/theory.md) for what was measured; a list under one name is
    a certified lower bound and an attack's value of the same quantity."""
    by_name = {m.name: m for m in sandwich}
    gamma = [renamed(by_name[name], "gamma_whole", readout=CANONICAL_READOUT)
             for name in ("gamma_certified", "gamma_attacked") if name in by_name]
    named: dict[str, list[Measurement]] = {
        "gamma_whole": gamma,
        "clean_margin": [renamed(by_name["margin_clean"], "clean_margin")],
    }
    if transfer:  # certified bounds exist for this model
        named.update({
            "L_b": [transfer["L_b"]],
            "Delta_a": [renamed(transfer["Delta_a_certified"], "Delta_a"),
                        renamed(transfer["Delta_a_attacked"], "Delta_a")],
            "gamma_transfer": [transfer["gamma_transfer_certified"], transfer["gamma_transfer_estimate"]],
        })
    for name in ("gamma_a", "gamma_b"):
        named[name] = [renamed(m, name) for m in gamma]
    for j in range(1, n_layers + 1):
        named[f"gamma_{j}"] = [renamed(m, f"gamma_{j}") for m in gamma]
    for j, pair in zip(range(2, n_layers + 1), pairs):
        named[f"rho_{j}"] = [pair.rho]
        named.update({k: [m] for k, m in canonical_a2_measurements(j, CANONICAL_READOUT).items()})
    return named


def _t2_bound(gamma_whole: list[Measurement], rho: dict[str, Measurement], a: int, n: int) -> dict[str, float]:
    """T2's claimed level ``gamma_a + sum_{j>a} rho_j`` (bits added to logits as the paper
    does, C6) with gamma_a read canonically: its attacked value and interval."""
    attacked = gamma_whole[-1]  # the attack's value (after the certified bound, when there is one)
    total = sum(rho[f"rho_{j}"].value for j in range(a + 1, n + 1))
    low = attacked.interval[0] + sum(rho[f"rho_{j}"].interval[0] for j in range(a + 1, n + 1))
    high = attacked.interval[1] + sum(rho[f"rho_{j}"].interval[1] for j in range(a + 1, n + 1))
    return {"value": attacked.value + total, "interval": [low, high], "unit": "logits + bits (C6)"}


def _verdicts(named: dict[str, list[Measurement]], a: int, n: int,
              uncertifiable: str | None = None, lip_rows: list | None = None) -> dict[str, Any]:
    """T1, L1, T2 and LIP judged on the test set (a certified statement about it; the clean
    margin is exact there) and for the population (``population``, at a stated joint
    confidence); L2 and T3 marked not applicable with the reason. LIP is judged twice: with
    the certified ``Delta_a`` (a sound bound: a violation is a bug), also on every sample
    (``per_sample``, from ``lip_rows``), and with the attacked one (an estimate of the
    bound); both are not applicable without a Lipschitz bound (``uncertifiable`` says why)."""
    judged = {
        "T1": ("T1", named, {"j": a}),
        "L1": ("L1", named, {"n": n}),
        "T2": ("T2", named, {"a": a, "n": n}),
    }
    not_applicable = dict(NOT_APPLICABLE)
    if uncertifiable is None:
        certified_delta, attacked_delta = named["Delta_a"]
        judged["LIP (certified Delta_a)"] = ("LIP", {**named, "Delta_a": [certified_delta]}, None)
        judged["LIP (attacked Delta_a)"] = ("LIP", {**named, "Delta_a": [attacked_delta]}, None)
    else:
        for label in ("LIP (certified Delta_a)", "LIP (attacked Delta_a)"):
            not_applicable[label] = f"needs the Lipschitz bound L_b of f_b: {uncertifiable}"
    verdicts: dict[str, Any] = {}
    for label, (result, measurements, numbers) in judged.items():
        scoped = judge_scopes(result, measurements, numbers, exact=("clean_margin",))
        verdicts[label] = {**scoped.test_set.to_dict(), "scope": "test set",
                           "population": scoped.population.to_dict(),
                           "markdown": scoped.test_set.describe()}
    if lip_rows and "LIP (certified Delta_a)" in verdicts:
        verdicts["LIP (certified Delta_a)"]["per_sample"] = judge_per_sample("LIP", lip_rows).to_dict()
    for result, reason in not_applicable.items():
        verdicts[result] = {"result": result, "status": "not applicable", "reason": reason,
                            "markdown": f"### {result} -- **not applicable**\n\n{reason}\n"}
    return verdicts
