"""PGD run ``until_misclassified`` (robust accuracy only): each input stops at its first
misclassified iterate. Against the last-iterate PGD of the same seed, in float64 so that
batch composition cannot move a last bit: every input it breaks stays broken, every
input it leaves unbroken gets the very same point, and no margin is estimated from it."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch
from attack_fixtures import random_network

from semirobust.empirical.attacks import AttackSettings, build_attack
from semirobust.empirical.attacks.evaluation import evaluate_attack
from semirobust.empirical.attacks.gradient import PGD
from semirobust.empirical.attacks.threat import ThreatModel


def problem(seed: int, norm: str):
    network = random_network((1, 4, 4), 5, seed, conv=True).double()
    generator = torch.Generator().manual_seed(seed)
    x = torch.rand(64, 1, 4, 4, generator=generator, dtype=torch.float64)
    with torch.no_grad():
        y = network(x).argmax(dim=1)  # every input correct when clean
    y[:8] = (y[:8] + 1) % 5  # and a few wrong from the start
    eps = {"linf": 0.08, "l2": 0.4}[norm]
    return network, x, y, ThreatModel(norm, eps)


@pytest.mark.parametrize("norm", ["linf", "l2"])
@pytest.mark.parametrize("restarts", [1, 3])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_it_breaks_every_input_the_last_iterate_breaks_and_keeps_the_rest(seed, restarts, norm):
    network, x, y, threat = problem(seed, norm)
    config = AttackSettings(steps=8, restarts=restarts, seed=seed).config(threat)
    plain = build_attack("pgd", config)(network, x, y)
    early = build_attack("pgd", replace(config, until_misclassified=True))(network, x, y)
    with torch.no_grad():
        plain_wrong = network(plain).argmax(dim=1) != y
        early_wrong = network(early).argmax(dim=1) != y
    assert 0 < int(plain_wrong.sum()) < x.shape[0]  # the case is not trivial
    assert bool((early_wrong | ~plain_wrong).all())  # broken by plain => broken early
    if restarts == 1:  # one restart: an input never misclassified walked plain's path exactly
        assert torch.equal(early[~early_wrong], plain[~early_wrong])
    assert float((early - x).flatten(1).norm(p=float("inf") if norm == "linf" else 2, dim=1).max()) \
        <= threat.eps + 1e-12
    assert 0.0 <= float(early.min()) and float(early.max()) <= 1.0


class Sawtooth(torch.nn.Module):
    """Two classes on one input coordinate ``s``: logit gap ``z_1 - z_0 = g(s) =
    10 (s - 0.45) - 100 relu(s - 0.55)``, so class 0 is predicted at 0.40 and 0.60 and
    class 1 at 0.50, and ``g`` (the cross-entropy of label 0) rises at 0.40 and 0.50."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = x.flatten(1)[:, 0]
        gap = 10 * (s - 0.45) - 100 * torch.relu(s - 0.55)
        return torch.stack([torch.zeros_like(gap), gap], dim=1)


def test_a_misclassified_iterate_found_on_the_way_is_kept():
    """Two l-inf steps of 0.1 from 0.40: 0.50 (misclassified), then 0.60 (right again). The
    last-iterate PGD reports the input robust; the early-stopping one keeps 0.50."""
    x = torch.tensor([[0.40]], dtype=torch.float64)
    y = torch.tensor([0])
    threat = ThreatModel("linf", 0.2)
    plain = PGD(threat, steps=2, step_size=0.1, random_start=False)(Sawtooth(), x, y)
    early = PGD(threat, steps=2, step_size=0.1, random_start=False, until_misclassified=True)(Sawtooth(), x, y)
    assert float(plain) == pytest.approx(0.60)
    assert float(early) == pytest.approx(0.50)
    with torch.no_grad():
        assert int(Sawtooth()(plain).argmax(dim=1)) == 0
        assert int(Sawtooth()(early).argmax(dim=1)) == 1


def test_an_evaluation_until_misclassified_gives_robust_accuracy_but_no_margin():
    network, x, y, threat = problem(0, "linf")
    config = replace(AttackSettings(steps=8, restarts=1, seed=0).config(threat), until_misclassified=True)
    evaluation = evaluate_attack(network, x, y, build_attack("pgd", config), progress=False)
    plain = evaluate_attack(network, x, y, build_attack("pgd", replace(config, until_misclassified=False)),
                            progress=False)
    assert evaluation.robust_accuracy().value <= plain.robust_accuracy().value
    assert evaluation.settings["until_misclassified"] is True
    assert "first misclassified iterate" in evaluation.settings["returned_point"]
    with pytest.raises(ValueError, match="not margins"):
        evaluation.expected_adversarial_margin()
