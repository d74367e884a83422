"""Tightness witnesses for the Lipschitz transfer bound (THEORY.md 5): a network on which
``m(F(x+delta), y) >= m(F(x), y) - sqrt(2) L_b Delta_a(x)`` is an equality at the worst
``delta``, so that the constant ``sqrt(2)``, the factor ``L_b`` and the certified
``Delta_a`` are each attained, and a wrong constant or an attacked ``Delta_a`` in the
certified bound puts it above the exact worst-case margin.

The network: ``f_a(x) = ReLU(x - 1/2)`` on a scalar ``x``, ``f_b(h) = (w h, -w h)``.
Then ``L_b = ||(w, -w)||_2 = sqrt(2) w`` exactly, the margin of class 1 is ``-2 w h``,
and at ``x = 0.45``, ``eps = 0.1`` the threat interval ``[0.35, 0.55]`` gives
``Delta_a = 0.05`` (at ``x' = 0.55``), ``m(F(x)) = 0`` and ``inf m = -0.1 w``: exactly
``0 - sqrt(2) * sqrt(2) w * 0.05``. A feature-displacement attack that starts left of the
kink sees a zero gradient and stays at ``Delta = 0``; a bound built on its value would be
``0 > -0.1 w``.
"""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from semirobust.empirical.attacks.threat import ThreatModel
from semirobust.empirical.measure.exact_1d import extremum, margin
from semirobust.empirical.measure.transfer import lipschitz_transfer_bound
from semirobust.empirical.model.stages import split_network

W = 3.0
EPS = 0.1
THREAT = ThreatModel("linf", EPS)


def network() -> nn.Sequential:
    first, last = nn.Linear(1, 1), nn.Linear(1, 2)
    with torch.no_grad():
        first.weight.fill_(1.0)
        first.bias.fill_(-0.5)
        last.weight.copy_(torch.tensor([[W], [-W]]))
        last.bias.zero_()
    return nn.Sequential(nn.Sequential(first, nn.ReLU()), last).double().eval()


def test_the_transfer_bound_is_attained_and_never_above_the_exact_worst_case():
    model = network()
    x = torch.full((16, 1), 0.45, dtype=torch.float64)
    y = torch.ones(16, dtype=torch.long)
    bound = lipschitz_transfer_bound(split_network(model, 1), x, y, THREAT, steps=5, seed=0)
    exact = extremum([model], lambda z: margin(z, 1), 0.45, EPS)
    assert exact == pytest.approx(-2 * W * 0.05)
    assert bound.lipschitz_b.product == pytest.approx(math.sqrt(2) * W)
    assert torch.allclose(bound.sensitivity.certified, torch.full((16,), 0.05, dtype=torch.float64))
    # sound on every sample, and tight: sqrt(2), L_b and Delta_a are each attained
    assert (bound.certified <= exact + 1e-12).all()
    assert torch.allclose(bound.certified, torch.full((16,), exact, dtype=torch.float64), atol=1e-12)


def test_the_attack_on_delta_a_is_stuck_left_of_the_kink_on_some_samples():
    """What makes the kind of Delta_a matter here: the attacked Delta_a is 0 on samples
    whose random start sees a dead ReLU, so a bound using it would exceed the exact
    worst case; only the certified one may enter the certified bound."""
    model = network()
    x = torch.full((16, 1), 0.45, dtype=torch.float64)
    y = torch.ones(16, dtype=torch.long)
    bound = lipschitz_transfer_bound(split_network(model, 1), x, y, THREAT, steps=5, seed=0)
    stuck = bound.sensitivity.attacked < 0.05 - 1e-9
    assert stuck.any()
    exact = extremum([model], lambda z: margin(z, 1), 0.45, EPS)
    assert (bound.estimate[stuck] > exact + 1e-9).all()
