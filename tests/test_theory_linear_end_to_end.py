"""The project's attack and evaluation against exact worst cases on a linear network, and
their measurements judged by the sound Lipschitz transfer (THEORY.md 5).

Points lie at least ``eps`` inside ``[0, 1]``, so the box never binds and the exact
infimum of ``proofs/linear_networks.py`` is the true one.
"""

from __future__ import annotations

import math
import sys
from pathlib import Path

import numpy as np
import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "proofs"))

from linear_networks import worst_case_margins

from semirobust.empirical.attacks import AttackConfig, build_attack
from semirobust.empirical.attacks.evaluation import evaluate_attack
from semirobust.empirical.attacks.objectives import negative_margin
from semirobust.empirical.attacks.threat import ThreatModel
from semirobust.theory import Kind, Measurement, Status, judge

EPS = 0.05


def linear_problem(seed: int = 0, samples: int = 64, dims: int = 6, classes: int = 3):
    generator = torch.Generator().manual_seed(seed)
    model = nn.Sequential(nn.Linear(dims, classes)).double()
    with torch.no_grad():
        model[0].weight.copy_(torch.randn(classes, dims, generator=generator, dtype=torch.double))
        model[0].bias.copy_(torch.randn(classes, generator=generator, dtype=torch.double) * 0.1)
    x = 0.2 + 0.6 * torch.rand(samples, dims, generator=generator, dtype=torch.double)
    y = model(x).argmax(dim=1)  # every point correctly classified: positive clean margins
    return model, x, y


def exact(model: nn.Sequential, x: torch.Tensor, y: torch.Tensor) -> np.ndarray:
    W, b = model[0].weight.detach().numpy(), model[0].bias.detach().numpy()
    return worst_case_margins(W, b, x.numpy(), y.numpy(), EPS, "linf")


def pgd_evaluation(model, x, y):
    attack = build_attack("pgd", AttackConfig(ThreatModel("linf", EPS), steps=40,
                                              objective=negative_margin))
    return evaluate_attack(model, x, y, attack)


def test_pgd_never_beats_the_exact_infimum_and_nearly_reaches_it():
    model, x, y = linear_problem()
    evaluation = pgd_evaluation(model, x, y)
    truth = exact(model, x, y)
    reached = evaluation.adversarial_margin.double().numpy()
    assert np.all(reached >= truth - 1e-6)           # an attack is an upper estimate
    assert np.mean(reached - truth) < 1e-3           # and here a tight one


def test_lipschitz_transfer_judged_on_the_projects_measurements():
    """f_a = identity (a = 0 weight layers), f_b = the linear layer: L_b = ||W||_2 exactly,
    Delta_a = sup_{||delta||_inf <= eps} ||delta||_2 = eps sqrt(d) exactly."""
    model, x, y = linear_problem()
    evaluation = pgd_evaluation(model, x, y)
    gamma_whole = evaluation.expected_adversarial_margin("gamma_whole")
    clean = float(evaluation.clean_margin.double().mean())
    readout = {"readout": "trained rest of the network"}
    lipschitz = float(torch.linalg.matrix_norm(model[0].weight.detach(), ord=2))
    measurements = {
        "gamma_whole": Measurement(gamma_whole.name, gamma_whole.value, gamma_whole.interval,
                                   gamma_whole.kind, gamma_whole.estimator, gamma_whole.unit,
                                   {**gamma_whole.settings, **readout}),
        "clean_margin": Measurement("clean_margin", clean, (clean, clean), Kind.EXACT,
                                    "exact on the test set", "logits", readout),
        "L_b": Measurement("L_b", lipschitz, (lipschitz, lipschitz), Kind.CERTIFIED,
                           "spectral norm", "logits per feature l2"),
        "Delta_a": Measurement("Delta_a", EPS * math.sqrt(x.shape[1]),
                               (EPS * math.sqrt(x.shape[1]),) * 2, Kind.CERTIFIED,
                               "exact for the identity", "feature l2"),
    }
    # with the evaluation's Student-t interval over inputs (a population claim) the
    # attack's interval straddles the bound; the sound result is never violated
    population = judge("LIP", measurements)
    assert population.status is Status.INCONCLUSIVE
    assert population.conclusion[0].margin > 0
    # on the test set itself the mean is exact: an attack value of an infimum cannot
    # establish the bound (the true infimum may be lower), so it is supported, not held
    point = gamma_whole.value
    measurements["gamma_whole"] = Measurement(
        "gamma_whole", point, (point, point), Kind.ATTACK, gamma_whole.estimator, "logits",
        readout)
    verdict = judge("LIP", measurements)
    assert verdict.status is Status.SUPPORTED and verdict.decided_by == "attack"
    (conclusion,) = verdict.conclusion
    assert conclusion.threshold <= float(exact(model, x, y).mean()) + 1e-9
    assert conclusion.relied_on == ("gamma_whole",)
    assert not any(note.startswith("BUG REPORT") for note in verdict.notes)
    assert not any("C6" in note for note in verdict.notes)  # logits throughout
