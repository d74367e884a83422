"""Interval propagation, the linear relaxation and certified margins: closed forms,
sampled containment, and certified <= attacked on random networks."""

from __future__ import annotations

import pytest
import torch
from bounds_networks import inputs, random_cnn, random_mlp, random_residual, sample_threat_set
from hypothesis import given
from hypothesis import strategies as st
from torch import nn

from semirobust.empirical.attacks.objectives import multiclass_margin
from semirobust.empirical.attacks.threat import ThreatModel
from semirobust.empirical.bounds import certified_margin_lower, input_box, interval_bounds
from semirobust.empirical.bounds.box import Box, threat_point64
from semirobust.empirical.bounds.linear import backward
from semirobust.empirical.measure.sandwich import gamma_sandwich
from semirobust.errors import BadInput

NETWORKS = {
    "mlp": (random_mlp, (6,)),
    "cnn-max": (lambda seed: random_cnn(seed, pool="max"), (1, 6, 6)),
    "cnn-avg": (lambda seed: random_cnn(seed, pool="avg"), (1, 6, 6)),
    "cnn-adaptive": (lambda seed: random_cnn(seed, pool="adaptive"), (1, 6, 6)),
    "cnn-overlapping": (lambda seed: random_cnn(seed, pool="overlapping"), (1, 6, 6)),
    "residual": (random_residual, (1, 6, 6)),
}


@given(
    seed=st.integers(0, 10_000),
    eps=st.sampled_from([0.0, 0.01, 0.05, 0.2]),
    name=st.sampled_from(sorted(NETWORKS)),
)
def test_interval_bounds_contain_sampled_outputs(seed, eps, name):
    build, shape = NETWORKS[name]
    model, x, threat = build(seed), inputs(shape, 4, seed), ThreatModel("linf", eps)
    lower, upper = interval_bounds(model, x, threat)
    model64 = model.double()
    with torch.no_grad():
        for point in sample_threat_set(x, threat, 64, seed):
            out = model64(point)
            assert (out >= lower - 1e-10).all() and (out <= upper + 1e-10).all()


def test_interval_bounds_of_a_linear_layer_are_the_closed_form():
    torch.manual_seed(0)
    layer = nn.Linear(5, 3).double()
    x = 0.25 + 0.5 * torch.rand(7, 5, dtype=torch.float64)  # box not clipped by [0,1]
    threat = ThreatModel("linf", 0.1)
    lower, upper = interval_bounds(layer, x, threat)
    radius = threat.eps * layer.weight.abs().sum(dim=1)
    centre = layer(x).detach()
    torch.testing.assert_close(lower, centre - radius, rtol=0, atol=1e-12)
    torch.testing.assert_close(upper, centre + radius, rtol=0, atol=1e-12)


@pytest.mark.parametrize("method", ["ibp", "crown-ibp", "crown", "alpha-crown"])
def test_certified_margin_of_a_linear_model_is_exact(method):
    """For logits ``W x + b``: ``inf m = min_k (w_y - w_k) x + b_y - b_k - eps ||w_y - w_k||_1``."""
    torch.manual_seed(1)
    model = nn.Sequential(nn.Flatten(), nn.Linear(6, 4)).double()
    x = 0.2 + 0.6 * torch.rand(9, 6, dtype=torch.float64)
    y = torch.randint(0, 4, (9,))
    threat = ThreatModel("linf", 0.05)
    w, b = model[1].weight.detach(), model[1].bias.detach()
    diff = w[y].unsqueeze(1) - w.unsqueeze(0)  # (n, K, d): w_y - w_k
    values = (
        (diff * x.unsqueeze(1)).sum(-1) + b[y].unsqueeze(1) - b - threat.eps * diff.abs().sum(-1)
    )
    values[torch.arange(9), y] = float("inf")
    expected = values.min(dim=1).values
    torch.testing.assert_close(
        certified_margin_lower(model, x, y, threat, method), expected, rtol=0, atol=1e-10
    )


@pytest.mark.parametrize("name", sorted(NETWORKS))
def test_zero_radius_certifies_the_clean_margin(name):
    build, shape = NETWORKS[name]
    model, x = build(3), inputs(shape, 5, 3)
    y = torch.arange(5) % 3
    with torch.no_grad():
        clean = multiclass_margin(model.double()(x.double()), y)
    bound = certified_margin_lower(model, x, y, ThreatModel("linf", 0.0), "ibp")
    torch.testing.assert_close(bound, clean, rtol=0, atol=1e-10)


@given(
    seed=st.integers(0, 10_000),
    eps=st.sampled_from([0.01, 0.05, 0.2]),
    name=st.sampled_from(sorted(NETWORKS)),
    method=st.sampled_from(["ibp", "crown-ibp", "crown", "alpha-crown"]),
)
def test_certified_margin_is_below_every_sampled_margin(seed, eps, name, method):
    build, shape = NETWORKS[name]
    model, x, threat = build(seed), inputs(shape, 4, seed), ThreatModel("linf", eps)
    y = torch.tensor([seed % 3, 0, 1, 2])
    bound = certified_margin_lower(model, x, y, threat, method)
    model64 = model.double()
    with torch.no_grad():
        sampled = torch.stack(
            [multiclass_margin(model64(p), y) for p in sample_threat_set(x, threat, 64, seed)]
        )
    assert (bound <= sampled.min(dim=0).values + 1e-10).all()


@given(
    seed=st.integers(0, 10_000),
    eps=st.sampled_from([0.02, 0.1]),
    name=st.sampled_from(sorted(NETWORKS)),
    norm=st.sampled_from(["linf", "l2"]),
)
def test_sandwich_certified_never_exceeds_attacked_on_random_networks(seed, eps, name, norm):
    build, shape = NETWORKS[name]
    model, x, threat = build(seed), inputs(shape, 6, seed), ThreatModel(norm, eps)
    y = torch.arange(6) % 3
    sandwich = gamma_sandwich(model, x, y, threat, methods=("ibp", "crown-ibp", "crown"))
    for method, values in sandwich.certified.items():
        assert (values <= sandwich.attacked + 1e-9).all(), method
    assert not sandwich.violations().any()
    assert (sandwich.attacked <= sandwich.clean + 1e-6).all()


def test_linear_relaxation_is_tighter_than_intervals_on_a_deeper_network():
    model, x = random_mlp(7, depth=4, width=16), inputs((6,), 32, 7)
    y = torch.arange(32) % 3
    threat = ThreatModel("linf", 0.05)
    ibp = certified_margin_lower(model, x, y, threat, "ibp")
    crown_ibp = certified_margin_lower(model, x, y, threat, "crown-ibp")
    crown = certified_margin_lower(model, x, y, threat, "crown")
    assert (crown_ibp >= ibp).all() and (crown >= ibp).all()  # each crown* is max'ed with ibp
    assert crown.mean() > ibp.mean() + 0.1 * ibp.abs().mean()


def test_input_box_is_the_clipped_linf_ball():
    x = torch.tensor([[0.0, 0.5, 0.98]])
    box = input_box(x, ThreatModel("l2", 0.05))
    torch.testing.assert_close(box.lower, torch.tensor([[0.0, 0.45, 0.93]]))
    torch.testing.assert_close(box.upper, torch.tensor([[0.05, 0.55, 1.0]]))


def test_unsupported_layer_is_named():
    model = nn.Sequential(nn.Linear(4, 4), nn.Tanh(), nn.Linear(4, 2))
    with pytest.raises(BadInput, match="Tanh"):
        interval_bounds(model, torch.rand(2, 4), ThreatModel("linf", 0.1))


@pytest.mark.parametrize(
    "pool",
    [
        nn.MaxPool2d(2),
        nn.MaxPool2d(3, stride=2, padding=1),
        nn.MaxPool2d(3, stride=1),
        nn.MaxPool2d(2, stride=1, padding=1),
        nn.MaxPool2d(3, stride=2, padding=1, dilation=2),
        nn.MaxPool2d((3, 2), stride=(1, 2), padding=(1, 0)),
    ],
    ids=str,
)
def test_max_pool_relaxation_holds_on_sampled_points_and_is_exact_at_zero_width(pool):
    """``A . pool(h) >= A_in . h + c`` for random ``A`` at random points and corners of a
    box (overlapping windows, padding, dilation); on a zero-width box, equality."""
    generator = torch.Generator().manual_seed(0)
    centre = torch.randn(2, 2, 7, 7, generator=generator, dtype=torch.float64)
    radius = torch.rand(centre.shape, generator=generator, dtype=torch.float64)
    coefficients = torch.randn(
        2, 3, *pool(centre).shape[1:], generator=generator, dtype=torch.float64
    )
    pulled, constant = backward([pool], [Box(centre - radius, centre + radius)], coefficients)
    noise = torch.rand((256, *centre.shape), generator=generator, dtype=torch.float64) * 2 - 1
    noise[:64] = noise[:64].sign()
    for h in centre + radius * noise:
        value = (coefficients * pool(h).unsqueeze(1)).flatten(start_dim=2).sum(dim=2)
        assert (
            value >= (pulled * h.unsqueeze(1)).flatten(start_dim=2).sum(dim=2) + constant - 1e-10
        ).all()
    pulled, constant = backward([pool], [Box(centre, centre)], coefficients)
    value = (coefficients * pool(centre).unsqueeze(1)).flatten(start_dim=2).sum(dim=2)
    exact = (pulled * centre.unsqueeze(1)).flatten(start_dim=2).sum(dim=2) + constant
    torch.testing.assert_close(value, exact, rtol=0, atol=1e-12)


def test_linear_relaxation_refuses_ceil_mode_pooling():
    x, y = inputs((1, 6, 6), 2, 0), torch.tensor([0, 1])
    ceil = nn.Sequential(
        nn.Conv2d(1, 2, 3),
        nn.ReLU(),
        nn.MaxPool2d(3, stride=2, ceil_mode=True),
        nn.Flatten(),
        nn.Linear(8, 3),
    )
    with pytest.raises(BadInput, match="ceil_mode"):
        certified_margin_lower(ceil, x, y, ThreatModel("linf", 0.1), "crown")
    assert certified_margin_lower(ceil, x, y, ThreatModel("linf", 0.1), "ibp").shape == (2,)


def test_bad_method_is_refused():
    with pytest.raises(BadInput, match="method='fast'"):
        certified_margin_lower(
            random_mlp(0), torch.rand(2, 6), torch.tensor([0, 1]), ThreatModel("linf", 0.1), "fast"
        )


@pytest.mark.parametrize("norm", ["linf", "l2"])
def test_attack_points_are_moved_exactly_into_the_threat_set(norm):
    threat = ThreatModel(norm, 0.1)
    x = torch.rand(5, 1, 4, 4, generator=torch.Generator().manual_seed(0))
    outside = (x + 0.1 * (1 + 1e-6) * torch.randn(x.shape).sign()).clamp(0, 1)
    point = threat_point64(outside, x, threat)
    delta = (point - x.double()).flatten(start_dim=1)
    size = delta.abs().max(dim=1).values if norm == "linf" else delta.norm(dim=1)
    assert (size <= threat.eps).all() and point.min() >= 0 and point.max() <= 1
    box = input_box(x.double(), threat)
    assert box.contains(point).all()
