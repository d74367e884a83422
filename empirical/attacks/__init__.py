"""Attacks with the uniform call ``attack(model, x, y) -> x_adv`` and their registry."""

from semirobust.empirical.attacks.autoattack import AutoAttackStage, autoattack
from semirobust.empirical.attacks.base import (
    Attack,
    AttackOutcome,
    attack_mode,
    margins_of,
    objective_and_gradient,
    validate_batch,
)
from semirobust.empirical.attacks.cw import CarliniWagnerL2, CarliniWagnerLinf
from semirobust.empirical.attacks.diagnostics import AttackReliabilityWarning, ReliabilityFlag
from semirobust.empirical.attacks.ensemble import WorstCase
from semirobust.empirical.attacks.gradient import FGSM, IFGSM, PGD
from semirobust.empirical.attacks.registry import (
    STRENGTH_LADDER,
    AttackConfig,
    AttackSettings,
    attack_names,
    build_attack,
    register_attack,
)
from semirobust.empirical.attacks.targeted import PerTargetPGD

__all__ = [
    "Attack",
    "AttackConfig",
    "AttackSettings",
    "AttackOutcome",
    "AttackReliabilityWarning",
    "AutoAttackStage",
    "CarliniWagnerL2",
    "CarliniWagnerLinf",
    "FGSM",
    "IFGSM",
    "PGD",
    "PerTargetPGD",
    "ReliabilityFlag",
    "STRENGTH_LADDER",
    "WorstCase",
    "attack_mode",
    "attack_names",
    "autoattack",
    "build_attack",
    "margins_of",
    "objective_and_gradient",
    "register_attack",
    "validate_batch",
]
