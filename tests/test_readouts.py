"""The readouts of C1 (semirobust.empirical.measure.readouts): probes that respect their
norm constraint and name it, Lipschitz normalisation, and gammas and A2 gaps measured
through named readouts, certified below the attack's value."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from semirobust.empirical.attacks.threat import ThreatModel
from semirobust.empirical.measure.readouts import (
    canonical,
    fit_probe,
    lipschitz_normalised,
    margin_gap,
    readout_gamma,
)
from semirobust.errors import BadInput
from semirobust.theory.measurement import Kind

THREAT = ThreatModel("linf", 0.05)


def data(n=80, seed=0):
    generator = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % 2
    x = (0.5 + 0.2 * (2 * y.double() - 1).view(-1, 1) * torch.ones(n, 2, dtype=torch.float64)
         + 0.05 * torch.randn(n, 2, generator=generator, dtype=torch.float64)).clamp(0, 1)
    return x, y


def mlp(seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(2, 4), nn.ReLU(), nn.Linear(4, 2)).double().eval()


@pytest.mark.parametrize("method", ["least-squares", "logistic"])
def test_a_probe_respects_and_records_its_norm_constraint(method):
    x, y = data()
    probe = fit_probe(x, y, 2, layer=0, method=method, norm_bound=0.5)
    weight = probe.module[1].weight
    assert float(torch.linalg.matrix_norm(weight, ord=2)) <= 0.5 * (1 + 1e-12)
    assert probe.settings["constraint"] == "||W||_2 <= 0.5" and "0.5" in probe.name
    # a separable problem: the probe classifies the fitting data
    with torch.no_grad():
        assert (probe.module(x).argmax(1) == y).float().mean() > 0.95


def test_a_loose_constraint_leaves_the_least_squares_solution_alone():
    x, y = data()
    probe = fit_probe(x, y, 2, layer=0, norm_bound=1e6)
    assert probe.settings["rescaled_by"] == 1.0
    design = torch.cat([x, torch.ones(len(x), 1, dtype=x.dtype)], 1)
    targets = torch.nn.functional.one_hot(y, 2).double() - 0.5
    best = torch.linalg.lstsq(design, targets).solution
    assert torch.allclose(probe.module[1].weight, best[:-1].T, atol=1e-10)


def test_lipschitz_normalisation_divides_by_the_certified_constant():
    layer = nn.Sequential(nn.Linear(2, 2)).double()
    with torch.no_grad():
        layer[0].weight.copy_(torch.tensor([[3.0, 0.0], [0.0, -1.0]]))
        layer[0].bias.zero_()
    normalised = lipschitz_normalised(canonical(layer, 1), (2,))
    assert normalised.settings["lipschitz_constant"] == pytest.approx(3.0)
    h = torch.tensor([[1.0, 2.0]], dtype=torch.float64)
    assert torch.allclose(normalised.module(h), layer(h) / 3.0)


def test_gamma_through_a_readout_is_a_sandwich_that_names_it():
    x, y = data()
    model = mlp()
    rest = canonical(model[2:], 1)
    certified, attacked = readout_gamma(model[:2], rest, x, y, THREAT, "gamma_1")
    assert certified.kind is Kind.CERTIFIED and attacked.kind is Kind.ATTACK
    assert certified.value <= attacked.value
    assert certified.settings["readout"] == attacked.settings["readout"] == rest.name


def test_the_gap_of_one_readout_with_itself_is_attacked_at_zero_and_certified_below():
    x, y = data()
    model = mlp()
    certified, attacked = margin_gap(model, "whole", model, "whole", x, y, THREAT, "margin_gap_2")
    assert attacked.value == pytest.approx(0.0, abs=1e-12)
    assert certified.value <= 0.0 and certified.kind is Kind.CERTIFIED


def test_the_gap_between_a_network_and_its_doubled_copy_is_exact_on_a_linear_model():
    """m(z) - m(2z) = -m(z): for a linear two-class model the worst case is the largest
    margin, and IBP is exact on one linear layer, so certified = attacked = -E[sup m]."""
    x, y = data()
    linear = nn.Sequential(nn.Linear(2, 2)).double().eval()
    doubled = nn.Sequential(nn.Linear(2, 2)).double().eval()
    with torch.no_grad():
        doubled[0].weight.copy_(2 * linear[0].weight)
        doubled[0].bias.copy_(2 * linear[0].bias)
    certified, attacked = margin_gap(linear, "G", doubled, "2G", x, y, THREAT, "margin_gap_2",
                                     steps=50)
    # per sample: inf_delta -m(z(x+delta)) = -(m(z(x)) + eps * ||w_y - w_k||_1)
    w = linear[0].weight
    direction = (w[1] - w[0]) * (2 * y.double() - 1).view(-1, 1)
    clean = (linear(x)[torch.arange(len(y)), y] - linear(x)[torch.arange(len(y)), 1 - y])
    exact = -(clean + THREAT.eps * direction.abs().sum(1))
    assert attacked.value == pytest.approx(float(exact.mean()), abs=1e-6)
    assert certified.value <= attacked.value + 1e-9
    assert math.isfinite(certified.value)


def test_bad_probe_arguments_are_named():
    x, y = data()
    with pytest.raises(BadInput, match="method="):
        fit_probe(x, y, 2, layer=0, method="svm")
    with pytest.raises(BadInput, match="fitted_on="):
        fit_probe(x, y, 2, layer=0, fitted_on="noisy")
    with pytest.raises(BadInput, match="norm_bound="):
        fit_probe(x, y, 2, layer=0, norm_bound=0.0)


def test_a_lipschitz_normalised_readout_is_certified_through_every_bound():
    """The normalised readout ends in a ``Scale`` layer, which interval propagation, the
    linear relaxation and the Lipschitz bound all have rules for: its gamma is the
    canonical one divided by ``L_G``, certified below the attack's value."""
    x, y = data()
    model = mlp()
    rest = canonical(model[2:], 1)
    normalised = lipschitz_normalised(rest, (4,))
    constant = normalised.settings["lipschitz_constant"]
    plain = readout_gamma(model[:2], rest, x, y, THREAT, "gamma_1", methods=("ibp", "crown-ibp"))
    scaled = readout_gamma(model[:2], normalised, x, y, THREAT, "gamma_1", methods=("ibp", "crown-ibp"))
    assert [m.kind for m in scaled] == [Kind.CERTIFIED, Kind.ATTACK]
    assert scaled[0].value <= scaled[1].value
    for before, after in zip(plain, scaled, strict=True):
        assert after.value == pytest.approx(before.value / constant, rel=1e-12)
    assert scaled[0].settings["lipschitz_constant"] == constant
