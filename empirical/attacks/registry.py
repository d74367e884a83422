"""Attacks by name, built from one typed :class:`AttackConfig` (no option dicts)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from semirobust.empirical.attacks.base import Attack
from semirobust.empirical.attacks.gradient import FGSM, PGD
from semirobust.empirical.errors import BadInput
from semirobust.empirical.objectives import Objective, cross_entropy
from semirobust.empirical.threat import ThreatModel


@dataclass(frozen=True)
class AttackConfig:
    """Everything an attack factory may read. ``steps``/``restarts`` apply to iterative ones."""

    threat: ThreatModel
    steps: int = 10
    restarts: int = 1
    objective: Objective = cross_entropy
    seed: int = 0


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


@register_attack("fgsm")
def _fgsm(config: AttackConfig) -> Attack:
    return FGSM(config.threat, objective=config.objective, seed=config.seed)


@register_attack("pgd")
def _pgd(config: AttackConfig) -> Attack:
    return PGD(
        config.threat, objective=config.objective, seed=config.seed,
        steps=config.steps, restarts=config.restarts,
    )
