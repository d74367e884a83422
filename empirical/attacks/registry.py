"""Attacks by name, built from one typed :class:`AttackConfig` (no option dicts).

Names: ``fgsm``, ``ifgsm``, ``pgd``, ``pgd-per-target`` (margin PGD once per target
class, the minimum margin kept; its objective is fixed), ``cw`` (C&W l2 with binary
search for ``--norm l2``;
PGD on the C&W loss for ``--norm linf``), ``autoattack`` (standard version, via
pyautoattack) and its four stages by their own names. ``STRENGTH_LADDER`` is the order in
which robust accuracy must not increase (a reliability check, ``diagnostics``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from semirobust.empirical.attacks.autoattack import STANDARD_STAGES, AutoAttackStage, autoattack
from semirobust.empirical.attacks.base import Attack
from semirobust.empirical.attacks.cw import CarliniWagnerL2, CarliniWagnerLinf
from semirobust.empirical.attacks.gradient import FGSM, IFGSM, PGD
from semirobust.empirical.attacks.objectives import Objective, cross_entropy, cw_loss
from semirobust.empirical.attacks.targeted import PerTargetPGD
from semirobust.empirical.attacks.threat import ThreatModel
from semirobust.errors import BadInput

STRENGTH_LADDER = ("fgsm", "ifgsm", "pgd", "autoattack")


@dataclass(frozen=True)
class AttackConfig:
    """Everything an attack factory may read.

    ``steps``/``step_size``/``restarts`` apply to iterative attacks; ``None`` means the
    attack's own default (10 steps for I-FGSM and PGD, 50 for C&W, THEORY.md section 6).
    ``objective`` is what gradient attacks maximise; ``kappa`` is the C&W confidence.
    ``until_misclassified`` (PGD and I-FGSM; robust accuracy only) stops each input at its
    first misclassified iterate; the other attacks run whole (their settings say so).
    """

    threat: ThreatModel
    steps: int | None = None
    restarts: int = 1
    objective: Objective = cross_entropy
    seed: int = 0
    step_size: float | None = None
    kappa: float = 0.0
    amp: bool = False
    until_misclassified: bool = False


@dataclass(frozen=True)
class AttackSettings:
    """The budget and seed a study gives every attack it builds: robust accuracy, the
    gamma sandwich's margin attack, the attacked ``Delta_a`` of the transfer bound and the
    adversarial inputs behind rho (``--steps``, ``--restarts``, ``--seed``). A study records
    it once for the run and in the settings of each measurement an attack produced."""

    steps: int = 20
    restarts: int = 2
    seed: int = 0

    def __post_init__(self) -> None:
        for name, value in (("steps", self.steps), ("restarts", self.restarts)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise BadInput(f"--{name} {value!r}: expected a whole number >= 1")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int):
            raise BadInput(f"--seed {self.seed!r}: expected a whole number")

    def config(self, threat: ThreatModel, objective: Objective = cross_entropy) -> AttackConfig:
        """The :class:`AttackConfig` of an attack with these settings, ``threat`` and ``objective``."""
        return AttackConfig(threat=threat, steps=self.steps, restarts=self.restarts,
                            objective=objective, seed=self.seed)

    def to_dict(self) -> dict[str, int]:
        return {"steps": self.steps, "restarts": self.restarts, "seed": self.seed}


AttackFactory = Callable[[AttackConfig], Attack]
_ATTACKS: dict[str, AttackFactory] = {}


def register_attack(name: str) -> Callable[[AttackFactory], AttackFactory]:
    """Decorator: make ``factory(config) -> Attack`` available as ``--attack name``."""

    def decorate(factory: AttackFactory) -> AttackFactory:
        _ATTACKS[name] = factory
        return factory

    return decorate


def attack_names() -> list[str]:
    return sorted(_ATTACKS)


def build_attack(name: str, config: AttackConfig) -> Attack:
    if name not in _ATTACKS:
        raise BadInput(f"unknown attack {name!r}; known: {', '.join(attack_names())}")
    return _ATTACKS[name](config)


def _steps(config: AttackConfig, default: int) -> int:
    return default if config.steps is None else config.steps


@register_attack("fgsm")
def _fgsm(config: AttackConfig) -> Attack:
    return FGSM(config.threat, objective=config.objective, seed=config.seed, amp=config.amp)


@register_attack("ifgsm")
def _ifgsm(config: AttackConfig) -> Attack:
    return IFGSM(
        config.threat,
        objective=config.objective,
        seed=config.seed,
        amp=config.amp,
        steps=_steps(config, 10),
        step_size=config.step_size,
        until_misclassified=config.until_misclassified,
    )


@register_attack("pgd")
def _pgd(config: AttackConfig) -> Attack:
    return PGD(
        config.threat,
        objective=config.objective,
        seed=config.seed,
        amp=config.amp,
        steps=_steps(config, 10),
        step_size=config.step_size,
        restarts=config.restarts,
        until_misclassified=config.until_misclassified,
    )


@register_attack("pgd-per-target")
def _pgd_per_target(config: AttackConfig) -> Attack:
    return PerTargetPGD(
        config.threat,
        seed=config.seed,
        amp=config.amp,
        steps=_steps(config, 20),
        step_size=config.step_size,
        restarts=config.restarts,
    )


def _cw_l2(config: AttackConfig) -> Attack:
    return CarliniWagnerL2(
        config.threat,
        seed=config.seed,
        amp=config.amp,
        kappa=config.kappa,
        steps=_steps(config, 50),
        lr=config.step_size if config.step_size is not None else 0.01,
    )


def _cw_linf(config: AttackConfig) -> Attack:
    return CarliniWagnerLinf(
        config.threat,
        objective=cw_loss(config.kappa),
        seed=config.seed,
        amp=config.amp,
        steps=_steps(config, 50),
        step_size=config.step_size,
        restarts=config.restarts,
    )


_CW_BY_NORM: dict[str, AttackFactory] = {"l2": _cw_l2, "linf": _cw_linf}


@register_attack("cw")
def _cw(config: AttackConfig) -> Attack:
    return _CW_BY_NORM[config.threat.norm](config)


@register_attack("autoattack")
def _autoattack(config: AttackConfig) -> Attack:
    return autoattack(config.threat, seed=config.seed)


def _register_stage(stage: str) -> None:
    register_attack(stage)(
        lambda config: AutoAttackStage(config.threat, seed=config.seed, stage=stage)
    )


for _stage in STANDARD_STAGES:
    _register_stage(_stage)
