"""The named readouts ``check`` reads its gammas and A2 gaps through (THEORY.md caveat C1).

``--readout`` chooses one readout ``G_j`` per layer ``j`` (THEORY.md 2: ``F^(j)`` is
``gamma_j``-semirobust with ``G_j`` when ``E[inf_delta m(G_j(F^(j)(X+delta)), y)] >=
gamma_j``); every gamma and every margin then names it:

* ``canonical`` (the default): the trained rest of the network after layer ``j``. Every
  gamma is the whole network's and A2's gap is the identity 0; ``check`` measures these
  itself (:mod:`semirobust.empirical.studies.canonical_readouts`), and nothing here runs.
* ``probe``: a linear probe ``G_j(h) = W_j h + b_j`` with ``||W_j||_2 <= bound`` per layer
  (:func:`semirobust.empirical.measure.readouts.fit_probe`), fitted on the activations
  ``F^(j)(x)`` of held-out fit inputs (``clean``) or ``F^(j)(x')`` at the points ``x'`` of
  the run's PGD attack on the whole network (``adversarial``); the method, the
  constraint, the norm of the stored weights and the fit data are recorded.
* ``lipschitz-normalised``: the trained rest ``F^(j+1,n)`` divided by its certified l2
  Lipschitz constant ``L_j`` (:func:`~semirobust.empirical.measure.readouts.lipschitz_normalised`),
  so its margin is ``m(F(x), y) / L_j``; ``G_n`` is the identity on the logits (``L_n = 1``).

What is measured through them, on the check's inputs, for the layers the verdicts read
(THEORY.md 3: T1 at ``j = a``, L1 at ``n``, T2 at ``a``, ``n``):

* ``gamma_j`` for ``j = a..n``, through ``F^(j)`` then ``G_j``: the certified lower bound
  (the check's bound methods propagated through the composition, the best per sample)
  and the margin attack's value through the same composition; ``gamma_a`` is
  ``gamma_j`` at ``j = a``, ``gamma_b`` at ``j = n`` (``f_b``'s output read by ``G_n``);
* A2's ``margin_gap_j = E[inf_delta (m(G_{j-1}(F^(j-1))) - m(G_j(F^(j))))]`` for
  ``j = a+1..n``, ``a+1`` included (``G_a`` against ``G_{a+1}``): certified by interval
  propagation (``lb m_{j-1} - ub m_j`` per sample) and attacked by PGD on the
  difference (:func:`~semirobust.empirical.measure.readouts.measured_gap`); ``U_j`` stated
  as with canonical readouts;
* T1's composed readouts: its proof reads layer ``i <= a`` by ``G_a o F^(i+1,a)``, so
  ``gamma_i`` is the very function ``gamma_a`` measures: one measurement under each name.

A layer ``j`` inside a stage (a residual block's inner conv) has no prefix ``F^(j)`` of
whole stages, and is refused with the layers that do.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from semirobust.empirical.attacks import AttackSettings, build_attack
from semirobust.empirical.attacks.evaluation import evaluate_attack
from semirobust.empirical.measure.readouts import (
    FIT_DATA,
    PROBE_METHODS,
    Readout,
    canonical,
    fit_probe,
    lipschitz_normalised,
    measured_gap,
    readout_gamma,
)
from semirobust.empirical.measure.sandwich import margin_attack
from semirobust.empirical.model.stages import count_weight_layers, split_network, valid_splits
from semirobust.empirical.studies.canonical_readouts import STATED_U, renamed
from semirobust.errors import BadInput
from semirobust.theory.measurement import Kind, Measurement

if TYPE_CHECKING:
    from semirobust.empirical.studies.check import CheckSettings

READOUTS = ("canonical", "probe", "lipschitz-normalised")
#: the judge's names a readout decides: layer gammas, f_a's and f_b's, A2's two sides
_REPLACED = re.compile(r"^(gamma_(\d+|a|b)|margin_gap_\d+|U_\d+)$")
COMPOSED = ("composed for T1: layer i <= a is read by G_a o F^(i+1,a) (the proof's "
            "rewriting), so gamma_i measures the same function as gamma_a")


@dataclass(frozen=True)
class ReadoutSettings:
    """The readout ``check`` reads every gamma and A2 gap through (module docstring);
    ``method``, ``fitted_on`` and ``norm_bound`` are the probe's (ignored otherwise)."""

    name: str = "canonical"
    method: str = "least-squares"
    fitted_on: str = "clean"
    norm_bound: float = 1.0

    def __post_init__(self) -> None:
        choices = {"--readout": (self.name, READOUTS), "--probe-method": (self.method, PROBE_METHODS),
                   "--probe-fit": (self.fitted_on, FIT_DATA)}
        for option, (value, accepted) in choices.items():
            if value not in accepted:
                raise BadInput(f"{option} {value!r}: expected one of {', '.join(accepted)}")
        if isinstance(self.norm_bound, bool) or not (
                isinstance(self.norm_bound, (int, float)) and 0 < self.norm_bound < float("inf")):
            raise BadInput(f"--probe-norm {self.norm_bound!r}: expected a finite positive number")

    @property
    def canonical(self) -> bool:
        return self.name == "canonical"

    def to_dict(self) -> dict[str, Any]:
        if self.name != "probe":
            return {"readout": self.name}
        return {"readout": self.name, "probe_method": self.method, "probe_fitted_on": self.fitted_on,
                "probe_constraint": f"||W||_2 <= {self.norm_bound:g}"}


@dataclass(frozen=True)
class FitData:
    """Labelled inputs probes are fitted on (never the measured inputs), and what they are."""

    x: torch.Tensor
    y: torch.Tensor
    source: str


@dataclass(frozen=True)
class ReadoutEvidence:
    """What was measured through the readouts: the readouts by layer (``a..n``), the
    judge's measurements (``gamma_j``, ``gamma_a``, ``gamma_b``, ``margin_gap_j``,
    ``U_j``) and T1's composed ``gamma_i`` (``i = 1..a``)."""

    readouts: Mapping[int, Readout]
    measurements: Mapping[str, tuple[Measurement, ...]]
    t1: Mapping[str, tuple[Measurement, ...]] = field(default_factory=dict)

    def records(self) -> tuple[dict[str, Any], ...]:
        """One record per layer: the readout's name, kind, constraint and fit data."""
        return tuple(self.readouts[j].describe() for j in sorted(self.readouts))

    def applied_to(self, named: Mapping[str, tuple[Measurement, ...]]
                   ) -> dict[str, tuple[Measurement, ...]]:
        """``named`` with every canonical gamma and A2 quantity replaced by these."""
        kept = {k: v for k, v in named.items() if not _REPLACED.match(k)}
        return {**kept, **self.measurements}


def measure_through_readouts(model: nn.Sequential, x: torch.Tensor, y: torch.Tensor,
                             settings: CheckSettings, *, fit: FitData | None,
                             device: torch.device, certify: bool = True) -> ReadoutEvidence:
    """Fit or build ``settings.readout``'s readouts and measure the gammas and A2 gaps
    through them (module docstring). ``certify=False`` (a model bound propagation cannot
    handle) leaves only the attacked values."""
    readout = settings.readout
    if readout.canonical:
        raise ValueError("canonical readouts are measured by check itself")
    a, n = settings.a, count_weight_layers(model)
    prefixes = {j: _prefix(model, j, n) for j in range(a, n + 1)}
    if readout.name == "probe":
        readouts = _probes(model, prefixes, settings, fit, device)
    else:
        readouts = {j: _normalised(model, prefix, j, n, x) for j, prefix in prefixes.items()}
    threat, attack = settings.threat, settings.attack
    methods = settings.bound_methods if certify else ()
    measured: dict[str, tuple[Measurement, ...]] = {}
    for j, prefix in prefixes.items():
        gamma = readout_gamma(prefix, readouts[j], x, y, threat, f"gamma_{j}", methods=methods,
                              attack=margin_attack(threat, attack))
        measured[f"gamma_{j}"] = tuple(_with_attack(m, attack) for m in gamma)
    measured["gamma_a"] = tuple(renamed(m, "gamma_a") for m in measured[f"gamma_{a}"])
    measured["gamma_b"] = tuple(renamed(m, "gamma_b") for m in measured[f"gamma_{n}"])
    for j in range(a + 1, n + 1):
        before, after = readouts[j - 1], readouts[j]
        gap = measured_gap(nn.Sequential(prefixes[j - 1], before.module).eval(), before.name,
                           nn.Sequential(prefixes[j], after.module).eval(), after.name, x, y, threat,
                           f"margin_gap_{j}", steps=attack.steps, restarts=attack.restarts,
                           seed=attack.seed, certify=certify)
        measured[f"margin_gap_{j}"] = tuple(
            renamed(m, m.name, previous_readout_settings=before.describe(),
                    current_readout_settings=after.describe(), attack_settings=attack.to_dict())
            for m in gap)
        measured[f"U_{j}"] = (Measurement(f"U_{j}", 1.0, (1.0, 1.0), Kind.CERTIFIED, STATED_U, "logits",
                                          {"readout": f"{before.name} | {after.name}"}),)
    t1 = {f"gamma_{i}": tuple(renamed(m, f"gamma_{i}", composed_readout=COMPOSED)
                              for m in measured[f"gamma_{a}"]) for i in range(1, a + 1)}
    return ReadoutEvidence(readouts, measured, t1)


def _layers_of(model: nn.Sequential) -> list[int]:
    """The layers ``j`` with a prefix of whole stages: the valid splits and ``n``."""
    return [*valid_splits(model), count_weight_layers(model)]


def _prefix(model: nn.Sequential, j: int, n: int) -> nn.Sequential:
    """``F^(j)``: the stages up to the one holding weight layer ``j`` (the whole network at
    ``n``), the split's convention for trailing stages without weights."""
    if j == n:
        return model
    if j not in valid_splits(model):
        raise BadInput(f"--readout needs the activations of layer {j}, which lies inside a stage; "
                       f"layers with their own readout: {', '.join(map(str, _layers_of(model)))}")
    return split_network(model, j).f_a


def _probes(model: nn.Sequential, prefixes: Mapping[int, nn.Sequential], settings: CheckSettings,
            fit: FitData | None, device: torch.device) -> dict[int, Readout]:
    """A norm-constrained linear probe per layer, fitted on ``fit``'s clean activations or
    on those at the run's PGD points of the whole network (module docstring)."""
    readout = settings.readout
    if fit is None:
        raise BadInput("--readout probe needs fit data (inputs held out from the measured ones)")
    inputs, fit_data, recorded = fit.x.to(device), fit.source, {}
    if readout.fitted_on == "adversarial":
        pgd = build_attack("pgd", settings.attack.config(settings.threat))
        inputs = evaluate_attack(model, fit.x, fit.y, pgd, device=device, keep_adversarial=True,
                                 progress=False, diagnose=False).x_adv.to(device)
        recorded = {"fit_attack": pgd.settings()}
        fit_data = f"{fit.source}, at the points of {pgd.name} on the whole network (fit_attack)"
    dtype = next(model.parameters()).dtype
    with torch.no_grad():
        classes = int(model(inputs[:1]).shape[1])
    probes = {}
    for j, prefix in prefixes.items():
        with torch.no_grad():
            features = prefix(inputs)
        probe = fit_probe(features, fit.y, classes, layer=j, method=readout.method,
                          norm_bound=readout.norm_bound, fitted_on=readout.fitted_on,
                          seed=settings.seed, dtype=dtype)
        probes[j] = replace(probe, module=probe.module.to(device),
                            settings={**probe.settings, "fit_data": fit_data, **recorded})
    return probes


def _normalised(model: nn.Sequential, prefix: nn.Sequential, j: int, n: int, x: torch.Tensor
                ) -> Readout:
    """The trained rest after layer ``j`` divided by its certified Lipschitz constant."""
    if j == n:
        rest = Readout(f"identity: the logits of layer {n}", "canonical", nn.Sequential(), {"layer": n})
    else:
        rest = canonical(split_network(model, j).f_b, j)
    with torch.no_grad():
        shape = tuple(prefix(x[:1]).shape[1:])
    return lipschitz_normalised(rest, shape)


def _with_attack(m: Measurement, attack: AttackSettings) -> Measurement:
    """An attacked measurement with the run's attack settings (as check records them)."""
    return renamed(m, m.name, attack_settings=attack.to_dict()) if m.kind is Kind.ATTACK else m
