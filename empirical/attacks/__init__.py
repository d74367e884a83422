"""Attacks with the uniform call ``attack(model, x, y) -> x_adv`` and their registry."""

from semirobust.empirical.attacks.base import Attack, objective_and_gradient, validate_batch
from semirobust.empirical.attacks.gradient import FGSM, PGD
from semirobust.empirical.attacks.registry import AttackConfig, attack_names, build_attack, register_attack

__all__ = [
    "Attack", "AttackConfig", "FGSM", "PGD", "attack_names", "build_attack",
    "objective_and_gradient", "register_attack", "validate_batch",
]
