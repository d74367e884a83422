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
* the judge's verdicts on T1, L1, T2 and LIP with the named readouts of
  ``settings.readout`` (caveat C1). With canonical readouts (the default: the trained
  rest of the network after each layer) every layer's gamma is the whole network's, and
  A2's margin gap is exactly 0 (so A2/B2 cannot hold); probe and Lipschitz-normalised
  readouts are fitted or built per layer and every gamma and A2 gap is measured through
  them, certified and attacked (:mod:`semirobust.empirical.studies.check_readouts`). LIP
  reads the network's own logits. L2 and T3 are about linear readouts of earlier layers
  and do not apply to a ReLU network's own layers; ``semirobust s1`` fits such readouts.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import torch
from torch import nn

from semirobust.empirical.attacks import AttackSettings, build_attack
from semirobust.empirical.attacks.evaluation import evaluate_attack
from semirobust.empirical.attacks.threat import ThreatModel
from semirobust.empirical.bounds import interval_bounds
from semirobust.empirical.bounds.graph_nodes import missing_rules
from semirobust.empirical.bounds.interval import has_interval_rule
from semirobust.empirical.bounds.layer_rules import UnsupportedLayer
from semirobust.empirical.bounds.lipschitz import (
    LipschitzBound,
    has_lipschitz_rule,
    lipschitz_upper,
    split_lipschitz,
)
from semirobust.empirical.bounds.margin import has_margin_rules
from semirobust.empirical.dependency import dependency_per_layer_pair
from semirobust.empirical.measure.per_sample import lipschitz_transfer_rows
from semirobust.empirical.measure.sandwich import gamma_sandwich, margin_attack
from semirobust.empirical.measure.transfer import TransferBound, lipschitz_transfer_bound
from semirobust.empirical.model.graph_stages import as_stages
from semirobust.empirical.model.stages import (
    count_weight_layers,
    layer_activations,
    split_network,
    valid_splits,
)
from semirobust.empirical.studies.canonical_readouts import (
    CANONICAL_READOUT,
    canonical_a2_measurements,
    renamed,
)
from semirobust.empirical.studies.check_readouts import (
    FitData,
    ReadoutSettings,
    measure_through_readouts,
)
from semirobust.empirical.studies.layer_pairs import LayerPairRho, layer_pair_rhos
from semirobust.empirical.studies.warning_summary import summarize_warnings
from semirobust.theory import RESULTS
from semirobust.theory.measurement import Kind, Measurement
from semirobust.theory.scope import SampleVerdicts, judge_per_sample, judge_scopes
from semirobust.theory.verdict import Verdict

NOT_APPLICABLE = {
    "L2": "does not apply: L2 reads linear readouts lambda_i^T f^(i) of earlier layers; "
          "fit them with `semirobust s1`",
    "T3": "does not apply: T3 assumes every layer of f_b is a linear combination of earlier "
          "layers, which a ReLU network's layers are not",
}
LIP_LABELS = ("LIP (certified Delta_a)", "LIP (attacked Delta_a)")
T2_LEVEL_UNIT = "logits + bits (C6)"


@dataclass(frozen=True)
class CheckSettings:
    """What ``check`` measures with (stored in report.json). ``attack`` is given to every
    attack ``check`` builds (robust accuracy, whose points are also the inputs rho is
    estimated on; the sandwich's margin attack; the attacked ``Delta_a``); its seed also
    seeds the dependency estimator. ``readout`` names what every gamma and A2 gap is read
    through (:mod:`semirobust.empirical.studies.check_readouts`)."""

    a: int
    threat: ThreatModel
    n: int = 200
    estimator: str = "ksg"
    bound_methods: tuple[str, ...] = ("ibp", "crown-ibp")
    attack: AttackSettings = field(default_factory=AttackSettings)
    readout: ReadoutSettings = field(default_factory=ReadoutSettings)

    @property
    def seed(self) -> int:
        return self.attack.seed

    def to_dict(self) -> dict[str, Any]:
        return {"a": self.a, "threat": self.threat.to_dict(), "samples": self.n, "estimator": self.estimator,
                "bound_methods": list(self.bound_methods), "attack": self.attack.to_dict(),
                "readout": self.readout.to_dict()}


@dataclass(frozen=True)
class SplitBounds:
    """At one split ``a``: T2's claimed level and, when the model has a Lipschitz bound,
    the Lipschitz transfer (THEORY.md section 5) by name: ``gamma_transfer_certified``,
    ``gamma_transfer_estimate``, ``clean_margin``, ``Delta_a_certified``,
    ``Delta_a_attacked``, ``L_b``."""

    a: int
    t2_level: Measurement
    transfer: Mapping[str, Measurement]

    def to_dict(self) -> dict[str, Any]:
        return {"a": self.a, "T2_bound": self.t2_level.to_dict(),
                **{name: m.to_dict() for name, m in self.transfer.items()}}


@dataclass(frozen=True)
class CheckResult:
    """Everything ``check`` measured on one network split at ``settings.a``, and the verdicts.

    ``measurements`` maps the judge's names to what was measured (a certified lower bound
    and an attack's value of the same quantity share a name); ``uncertifiable`` says why
    no certified bound exists (``None`` when they were computed); ``readouts`` describes
    the readout of each layer ``a..n`` (name, kind, constraint, fit data), empty for the
    canonical ones."""

    settings: CheckSettings
    n_layers: int
    samples: int
    clean_accuracy: Measurement
    robust_accuracy: Measurement
    measurements: Mapping[str, tuple[Measurement, ...]]
    rho: tuple[LayerPairRho, ...]
    uncertifiable: str | None
    lipschitz: LipschitzBound | None
    per_split: tuple[SplitBounds, ...]
    sandwich_violations: int
    warnings: tuple[str, ...]
    verdicts: Mapping[str, Verdict]
    population: Mapping[str, Verdict]
    per_sample: Mapping[str, SampleVerdicts]
    readouts: tuple[dict[str, Any], ...] = ()

    @property
    def certified(self) -> bool:
        return self.uncertifiable is None

    def to_dict(self) -> dict[str, Any]:
        """The JSON form (``report.json`` without the command's metadata)."""
        a = self.settings.a
        return {
            "split": {"a": a, "n": self.n_layers, "fb_layers": self.n_layers - a},
            "threat": self.settings.threat.to_dict(),
            "samples": self.samples,
            "settings": self.settings.to_dict(),
            "readouts": list(self.readouts),
            "attack_settings": self.settings.attack.to_dict(),
            "robust_accuracy": self.robust_accuracy.to_dict(),
            "clean_accuracy": self.clean_accuracy.to_dict(),
            "measurements": {k: [m.to_dict() for m in v] for k, v in self.measurements.items()},
            "rho": [pair.to_dict() for pair in self.rho],
            "certification": self.uncertifiable or "certified bounds and Lipschitz bounds computed",
            "lipschitz_layers": [layer.to_dict() for layer in self.lipschitz.layers] if self.lipschitz else [],
            "per_split": [entry.to_dict() for entry in self.per_split],
            "sandwich_violations": self.sandwich_violations,
            "warnings": list(self.warnings),
            "verdicts": {label: self._verdict_dict(label) for label in self.verdicts},
        }

    def _verdict_dict(self, label: str) -> dict[str, Any]:
        """A result's test-set verdict with, where judged, its population and per-sample ones."""
        verdict = self.verdicts[label]
        data = verdict.to_dict()
        if label in self.population:
            data.update(scope="test set", population=self.population[label].to_dict())
        if label in self.per_sample:
            data["per_sample"] = self.per_sample[label].to_dict()
        return {**data, "markdown": verdict.describe(label)}


def run_check(model: nn.Module, x: torch.Tensor, y: torch.Tensor, settings: CheckSettings,
              *, device: torch.device, fit: FitData | None = None) -> CheckResult:
    """All measurements, per-split bounds and verdicts for ``model`` split at ``settings.a``;
    ``fit`` holds the inputs a probe readout is fitted on (held out from ``x``).

    ``model`` is an ``nn.Sequential`` of stages, or any module, which is traced into stages
    first (:func:`~semirobust.empirical.model.graph_stages.as_stages`: its splits, weight
    layers and activations are the graph's)."""
    if not isinstance(model, nn.Sequential):
        model = as_stages(model)
    model = model.to(device).eval()
    x, y = x[:settings.n], y[:settings.n]
    n_layers = count_weight_layers(model)
    split_network(model, settings.a)  # validates the split before any work
    lipschitz, uncertifiable = _certification(model, x, settings, device)
    threat, attack = settings.threat, settings.attack
    pgd = build_attack("pgd", attack.config(threat))
    attacked = evaluate_attack(model, x, y, pgd, device=device, keep_adversarial=True)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        sandwich = gamma_sandwich(model, x, y, threat, margin_attack(threat, attack),
                                  methods=settings.bound_methods if lipschitz else (),
                                  readout="the trained rest of the network (logits)")
        with torch.no_grad():
            activations, _ = layer_activations(model, attacked.x_adv.to(device))
        pairs = layer_pair_rhos(dependency_per_layer_pair(
            activations, y, settings.estimator,  # estimated where the activations live
            names=[f"rho_{j}" for j in range(2, n_layers + 1)], seed=settings.seed, permutations=5,
        ), first_j=2)
        readouts = None if settings.readout.canonical else measure_through_readouts(
            model, x, y, settings, fit=fit, device=device, certify=uncertifiable is None)
    on_adversarial = {"inputs": "the robust-accuracy attack's points", "attack": pgd.settings()}
    pairs = tuple(replace(p, rho=_attacked(renamed(p.rho, p.rho.name, **on_adversarial), attack),
                          independent=None if p.independent is None else
                          _attacked(renamed(p.independent, p.independent.name, **on_adversarial), attack))
                  for p in pairs)
    bounds = {a: _transfer_at(model, x, y, threat, lipschitz, a, settings) if lipschitz else None
              for a in valid_splits(model)}
    transfer = {a: _transfer_measurements(bound, attack) if bound else {} for a, bound in bounds.items()}
    named = _named_measurements([_attacked(m, attack) if m.name == "gamma_attacked" else m
                                 for m in sandwich.measurements()], pairs, transfer[settings.a], n_layers)
    if readouts is not None:
        named = readouts.applied_to(named)
    rho = {pair.rho.name: pair.rho for pair in pairs}
    per_split = tuple(SplitBounds(a, _attacked(_t2_bound(named["gamma_whole"], rho, a, n_layers), attack), bounds)
                      for a, bounds in transfer.items())
    return CheckResult(
        settings=settings,
        n_layers=n_layers,
        samples=int(y.numel()),
        clean_accuracy=attacked.clean_accuracy(),
        robust_accuracy=_attacked(attacked.robust_accuracy(), attack),
        measurements=named,
        rho=pairs,
        uncertifiable=uncertifiable,
        lipschitz=lipschitz,
        per_split=per_split,
        sandwich_violations=int(sandwich.violations().sum()),
        warnings=tuple(summarize_warnings(caught)),
        **_verdicts(named, settings.a, n_layers, uncertifiable,
                    lipschitz_transfer_rows(bounds[settings.a], sandwich, CANONICAL_READOUT)
                    if bounds[settings.a] else (), t1=readouts.t1 if readouts else None),
        readouts=readouts.records() if readouts else (),
    )


def missing_bound_rules(model: nn.Sequential, bound_methods: Sequence[str]) -> list[str]:
    """Every operation of ``model`` (a layer, or a node of a traced stage) that ``check``'s
    certified bounds have no rule for, one entry each (``name: op target``, stage-prefixed):
    interval propagation and the Lipschitz bound always, the linear relaxation when a
    ``bound_methods`` entry other than IBP needs it. Empty: everything can be bounded."""
    rules = [has_interval_rule, has_lipschitz_rule]
    if any(method != "ibp" for method in bound_methods):
        rules.append(has_margin_rules)
    return list(dict.fromkeys(entry for has_rule in rules for entry in missing_rules(model, has_rule)))


def _certification(model: nn.Module, x: torch.Tensor, settings: CheckSettings,
                   device: torch.device) -> tuple[LipschitzBound | None, str | None]:
    """``(the model's Lipschitz bound, None)``, or ``(None, why)`` when a bound has no rule for
    some of its operations (a ViT's attention, a traced model's softmax; all of them named):
    then ``check`` reports the attacked and estimated quantities and no certified ones."""
    missing = missing_bound_rules(model, settings.bound_methods)
    if missing:
        return None, (f"no certified bounds: no bound rule for {len(missing)} operation(s): "
                      f"{'; '.join(missing)}")
    try:
        interval_bounds(model, x[:1], settings.threat)
        return lipschitz_upper(model, tuple(x.shape[1:]), device=device), None
    except UnsupportedLayer as error:
        return None, f"no certified bounds: {error}"


def _attacked(measurement: Measurement, attack: AttackSettings) -> Measurement:
    """``measurement`` (whose value an attack produced) with the run's attack settings."""
    return renamed(measurement, measurement.name, attack_settings=attack.to_dict())


#: transfer measurements whose value comes from the attacked Delta_a
ATTACKED_TRANSFER = ("Delta_a_attacked", "gamma_transfer_estimate")


def _transfer_at(model: nn.Sequential, x: torch.Tensor, y: torch.Tensor, threat: ThreatModel,
                 lipschitz: LipschitzBound, a: int, settings: CheckSettings) -> TransferBound:
    """Lipschitz transfer (THEORY.md section 5) at split ``a``: certified and estimated."""
    _, lipschitz_b = split_lipschitz(model, lipschitz, a)
    attack = settings.attack
    return lipschitz_transfer_bound(split_network(model, a), x, y, threat, lipschitz_b=lipschitz_b,
                                    steps=attack.steps, restarts=attack.restarts, seed=attack.seed)


def _transfer_measurements(transfer: TransferBound, attack: AttackSettings) -> dict[str, Measurement]:
    """The transfer's measurements by name, the attacked ones with the run's attack settings."""
    return {m.name: _attacked(m, attack) if m.name in ATTACKED_TRANSFER else m for m in transfer.measurements()}


def _named_measurements(sandwich: list[Measurement], pairs: tuple[LayerPairRho, ...],
                        transfer: Mapping[str, Measurement], n_layers: int) -> dict[str, tuple[Measurement, ...]]:
    """The judge's names (docs/theory.md) for what was measured; a tuple under one name is
    a certified lower bound and an attack's value of the same quantity."""
    by_name = {m.name: m for m in sandwich}
    gamma = tuple(renamed(by_name[name], "gamma_whole", readout=CANONICAL_READOUT)
                  for name in ("gamma_certified", "gamma_attacked") if name in by_name)
    named: dict[str, tuple[Measurement, ...]] = {
        "gamma_whole": gamma,
        "clean_margin": (renamed(by_name["margin_clean"], "clean_margin"),),
    }
    if transfer:  # certified bounds exist for this model
        named.update({
            "L_b": (transfer["L_b"],),
            "Delta_a": (renamed(transfer["Delta_a_certified"], "Delta_a"),
                        renamed(transfer["Delta_a_attacked"], "Delta_a")),
            "gamma_transfer": (transfer["gamma_transfer_certified"], transfer["gamma_transfer_estimate"]),
        })
    for name in ("gamma_a", "gamma_b"):
        named[name] = tuple(renamed(m, name) for m in gamma)
    for j in range(1, n_layers + 1):
        named[f"gamma_{j}"] = tuple(renamed(m, f"gamma_{j}") for m in gamma)
    for pair in pairs:
        named[f"rho_{pair.j}"] = (pair.rho,)
        named.update({k: (m,) for k, m in canonical_a2_measurements(pair.j, CANONICAL_READOUT).items()})
    return named


def _t2_bound(gamma_whole: tuple[Measurement, ...], rho: Mapping[str, Measurement], a: int, n: int) -> Measurement:
    """T2's claimed level ``gamma_a + sum_{j>a} rho_j`` (bits added to logits as the paper
    does, C6) with gamma_a read canonically, as a measurement: the attacked ``gamma_a``
    (an upper estimate) plus the rho estimates, their intervals added end to end. Neither
    end is sound, so its kind is ``estimate``."""
    attacked = gamma_whole[-1]  # the attack's value (after the certified bound, when there is one)
    summed = [rho[f"rho_{j}"] for j in range(a + 1, n + 1)]
    total = sum(m.value for m in summed)
    low = attacked.interval[0] + sum(m.interval[0] for m in summed)
    high = attacked.interval[1] + sum(m.interval[1] for m in summed)
    return Measurement(
        name=f"T2_level_a{a}",
        value=attacked.value + total,
        interval=(low, high),
        kind=Kind.ESTIMATE,
        estimator=f"gamma_a ({attacked.kind.value}: {attacked.estimator}) + sum_(j>{a}) rho_j "
                  f"({summed[0].estimator if summed else 'no pair'})",
        unit=T2_LEVEL_UNIT,
        settings={"a": a, "gamma_a": attacked.name, "gamma_a_settings": dict(attacked.settings),
                  "rho": [m.name for m in summed],
                  "interval": "the ends of the summed intervals added (no joint coverage claimed)"},
    )


def _verdicts(named: Mapping[str, tuple[Measurement, ...]], a: int, n: int,
              uncertifiable: str | None = None, lip_rows: Sequence[Mapping[str, list[Measurement]]] = (),
              t1: Mapping[str, tuple[Measurement, ...]] | None = None,
              ) -> dict[str, Mapping[str, Any]]:
    """T1, L1, T2 and LIP judged on the test set (a certified statement about it; the clean
    margin is exact there) and for the population (at a stated joint confidence); L2 and T3
    not applicable with the reason. LIP is judged twice: with the certified ``Delta_a`` (a
    sound bound: a violation is a bug), also on every sample (from ``lip_rows``), and with
    the attacked one (an estimate of the bound); both are not applicable without a Lipschitz
    bound (``uncertifiable`` says why). ``t1`` replaces T1's ``gamma_i`` by those of its
    composed readouts (non-canonical readouts). Returns CheckResult's ``verdicts``, ``population``
    and ``per_sample``."""
    judged = {
        "T1": ("T1", {**named, **(t1 or {})}, {"j": a}),
        "L1": ("L1", named, {"n": n}),
        "T2": ("T2", named, {"a": a, "n": n}),
    }
    verdicts: dict[str, Verdict] = {}
    if uncertifiable is None:
        certified_delta, attacked_delta = named["Delta_a"]
        for label, delta in zip(LIP_LABELS, (certified_delta, attacked_delta)):
            judged[label] = ("LIP", {**named, "Delta_a": [delta]}, None)
    else:
        for label in LIP_LABELS:
            verdicts[label] = Verdict.not_applicable(
                "LIP", RESULTS["LIP"].title, f"needs the Lipschitz bound L_b of f_b: {uncertifiable}")
    population: dict[str, Verdict] = {}
    for label, (result, measurements, numbers) in judged.items():
        scoped = judge_scopes(result, measurements, numbers, exact=("clean_margin",))
        verdicts[label], population[label] = scoped.test_set, scoped.population
    for result, reason in NOT_APPLICABLE.items():
        verdicts[result] = Verdict.not_applicable(result, RESULTS[result].title, reason)
    per_sample = {LIP_LABELS[0]: judge_per_sample("LIP", lip_rows)} if lip_rows and LIP_LABELS[0] in population else {}
    return {"verdicts": verdicts, "population": population, "per_sample": per_sample}
