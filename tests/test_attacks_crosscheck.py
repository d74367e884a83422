"""Cross-check against an independent library on the same trained model and test set.

Reference: torchattacks 3.5.1 (installed by the Makefile with --no-deps). Our PGD must
be at most 0.5 percentage points above torchattacks' PGD with the same budget (10 steps
of eps/4 from a uniform random start; robust accuracy averaged over 5 seeds on each side,
since one random start moves robust accuracy by about 0.7 points on 899 inputs), and
standard AutoAttack (pyautoattack) must be at most our PGD on the same inputs.
"""

import pytest
import torch
import torchattacks
from attack_fixtures import trained_digits_model

from semirobust.empirical.attacks import PGD, autoattack
from semirobust.empirical.attacks.evaluation import evaluate_attack
from semirobust.empirical.attacks.threat import ThreatModel

SEEDS = range(5)


@pytest.fixture(scope="module")
def trained():
    model, _, data = trained_digits_model("digits-cnn", epochs=2, width=4)
    return model, data.x_test, data.y_test


def our_pgd(model, x, y, eps, seed):
    attack = PGD(ThreatModel("linf", eps), steps=10, step_size=eps / 4, seed=seed)
    return evaluate_attack(model, x, y, attack, diagnose=False).robust_accuracy().value


def reference_pgd(model, x, y, eps, seed):
    attack = torchattacks.PGD(model, eps=eps, alpha=eps / 4, steps=10, random_start=True)
    torch.manual_seed(seed)
    x_adv = attack(x, y)
    with torch.no_grad():
        return float((model(x_adv).argmax(dim=1) == y).double().mean())


@pytest.mark.parametrize("eps", [0.05, 0.1])
def test_our_pgd_is_as_strong_as_torchattacks(trained, eps):
    model, x, y = trained
    ours = sum(our_pgd(model, x, y, eps, seed) for seed in SEEDS) / len(SEEDS)
    reference = sum(reference_pgd(model, x, y, eps, seed) for seed in SEEDS) / len(SEEDS)
    assert 0.05 < reference < 0.9, (
        "the comparison needs a model that is neither broken nor untouched"
    )
    assert ours <= reference + 0.005, (ours, reference)


def test_autoattack_is_at_least_as_strong_as_our_pgd(trained):
    model, x, y = trained
    x, y = x[:200], y[:200]
    pgd = our_pgd(model, x, y, 0.1, seed=0)
    evaluation = evaluate_attack(model, x, y, autoattack(ThreatModel("linf", 0.1), seed=0))
    stages = evaluation.stage_robust_accuracy()
    assert list(stages) == ["apgd-ce", "apgd-t", "fab-t", "square"]
    assert list(stages.values()) == sorted(stages.values(), reverse=True)
    assert evaluation.robust_accuracy().value <= pgd
    assert evaluation.robust_accuracy().value == stages["square"]
