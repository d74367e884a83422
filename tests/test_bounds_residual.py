"""The linear relaxation (CROWN-IBP and full CROWN) on residual networks: a closed form,
a block that must be bounded exactly like its branch as a sequence, sampled and attacked
soundness on random residual networks (hypothesis), containment of the relaxation's
boxes, and what the bounds guarantee against interval propagation (docs/bounds.md)."""

from __future__ import annotations

import pytest
import torch
from bounds_networks import (
    RESIDUAL_KINDS,
    LinearResidualBlock,
    NestedResidualBlock,
    inputs,
    random_resnet,
    randomise_batch_norm,
    sample_threat_set,
)
from hypothesis import given
from hypothesis import strategies as st
from torch import nn

from semirobust.empirical.attacks.objectives import multiclass_margin
from semirobust.empirical.attacks.threat import ThreatModel
from semirobust.empirical.bounds import (
    certified_margin_lower,
    feature_box,
    input_box,
    propagate_interval,
)
from semirobust.empirical.bounds.layer_rules import float64_eval_copy, primitive_layers
from semirobust.empirical.bounds.linear import backward, bound_layers, concretize
from semirobust.empirical.bounds.margin import margin_specification
from semirobust.empirical.measure.sandwich import gamma_sandwich
from semirobust.empirical.model import Normalize
from semirobust.empirical.model.zoo.resnet import BasicBlock

CROWN_METHODS = ("crown-ibp", "crown", "alpha-crown")


def relaxation_margin(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, threat: ThreatModel, intermediate: str
) -> torch.Tensor:
    """The linear relaxation's own margin bound per sample: ``certified_margin_lower``
    without its element-wise max with the interval bound."""
    model64 = float64_eval_copy(model)
    layers = primitive_layers(model64)
    box = input_box(x.double(), threat)
    with torch.no_grad():
        classes = model64(box.lower[:1]).shape[1]
        spec = margin_specification(y, classes)
        coefficients, constant = backward(
            layers, bound_layers(layers, box, intermediate).bounds, spec
        )
        values = concretize(coefficients, constant, box)
    own = nn.functional.one_hot(y, classes).bool()
    return values.masked_fill(own, float("inf")).min(dim=1).values


def sampled_margins(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, threat: ThreatModel, seed: int
) -> torch.Tensor:
    """Per sample, the smallest margin at 64 points of the threat set (16 of them corners)."""
    model64 = float64_eval_copy(model)
    with torch.no_grad():
        margins = [multiclass_margin(model64(p), y) for p in sample_threat_set(x, threat, 64, seed)]
    return torch.stack(margins).min(dim=0).values


@pytest.mark.parametrize("method", CROWN_METHODS)
@pytest.mark.parametrize("projection", [False, True])
def test_the_relaxation_is_exact_on_an_affine_residual_network(method, projection):
    """Without ReLUs the network is affine, ``F(x) = M x + b``, and over a box that
    ``[0,1]`` does not clip ``inf m = min_k (M_y - M_k) x + b_y - b_k - eps ||M_y - M_k||_1``.
    The relaxation sums the branch's and the shortcut's coefficients before taking the
    box, so it reaches that value; intervals add the two paths' boxes and stay below."""
    torch.manual_seed(2)
    width = 8 if projection else 6
    model = nn.Sequential(
        Normalize([0.5] * 6, [0.3] * 6),
        LinearResidualBlock(6, width, inner_relu=False, activation=False),
        LinearResidualBlock(width, width, inner_relu=False, activation=False),
        nn.Linear(width, 4),
    )
    model = float64_eval_copy(randomise_batch_norm(model, torch.Generator().manual_seed(2)))
    x = 0.2 + 0.6 * torch.rand(9, 6, dtype=torch.float64)
    y = torch.randint(0, 4, (9,))
    threat = ThreatModel("linf", 0.05)
    with torch.no_grad():
        offset = model(torch.zeros(1, 6, dtype=torch.float64))[0]
        matrix = (model(torch.eye(6, dtype=torch.float64)) - offset).T  # (classes, inputs)
    diff = matrix[y].unsqueeze(1) - matrix.unsqueeze(0)  # (n, K, d): M_y - M_k
    values = (
        (diff * x.unsqueeze(1)).sum(-1)
        + (offset[y].unsqueeze(1) - offset)
        - threat.eps * diff.abs().sum(-1)
    )
    values[torch.arange(9), y] = float("inf")
    exact = values.min(dim=1).values
    torch.testing.assert_close(
        certified_margin_lower(model, x, y, threat, method), exact, rtol=0, atol=1e-10
    )
    ibp = certified_margin_lower(model, x, y, threat, "ibp")
    assert (ibp <= exact + 1e-10).all()
    assert ibp.mean() < exact.mean() - 0.01


@pytest.mark.parametrize("intermediate", ["ibp", "crown"])
def test_a_block_with_a_zero_shortcut_is_bounded_like_its_branch_as_a_sequence(intermediate):
    """``relu(branch(h) + 0)`` is the sequence ``branch, relu``: the residual rule (branch and
    shortcut carried back separately and summed, intermediate bounds inside the branch)
    must give the sequential rule's bound, up to rounding, with either kind of
    intermediate bounds."""
    torch.manual_seed(3)
    block = BasicBlock(1, 4, stride=2)  # projection shortcut: 1x1 conv + BatchNorm
    head = nn.Sequential(nn.Flatten(), nn.Linear(4 * 3 * 3, 3))
    residual = randomise_batch_norm(
        nn.Sequential(Normalize([0.4], [0.25]), block, head), torch.Generator().manual_seed(3)
    )
    with torch.no_grad():
        conv, norm = block.shortcut
        conv.weight.zero_()
        norm.running_mean.zero_()
        norm.bias.zero_()
    sequential = nn.Sequential(
        residual[0], block.conv1, block.bn1, nn.ReLU(), block.conv2, block.bn2, nn.ReLU(), head
    )
    x, y = inputs((1, 6, 6), 8, 3), torch.arange(8) % 3
    threat = ThreatModel("linf", 0.05)
    with torch.no_grad():
        torch.testing.assert_close(residual(x), sequential(x))
    torch.testing.assert_close(
        relaxation_margin(residual, x, y, threat, intermediate),
        relaxation_margin(sequential, x, y, threat, intermediate),
        rtol=0,
        atol=1e-9,
    )


@pytest.mark.parametrize("kind", RESIDUAL_KINDS)
def test_crown_ibp_reads_the_interval_boxes_of_residual_networks(kind):
    """With ``intermediate="ibp"`` the boxes the relaxation reads are interval propagation's
    (each block's rule: branch and shortcut from the block's input box), to the last output."""
    model, shape = random_resnet(4, kind, blocks=2, stem_pool=kind != "linear")
    model64 = float64_eval_copy(model)
    box = input_box(inputs(shape, 3, 4).double(), ThreatModel("linf", 0.05))
    with torch.no_grad():
        bounded = bound_layers(primitive_layers(model64), box, "ibp")
        interval = propagate_interval(model64, box)
    torch.testing.assert_close(bounded.output.lower, interval.lower, rtol=0, atol=0)
    torch.testing.assert_close(bounded.output.upper, interval.upper, rtol=0, atol=0)


@given(
    seed=st.integers(0, 10_000),
    kind=st.sampled_from(RESIDUAL_KINDS),
    blocks=st.integers(1, 3),
    projection=st.booleans(),
    stem_pool=st.booleans(),
    eps=st.sampled_from([0.01, 0.05, 0.2]),
    norm=st.sampled_from(["linf", "l2"]),
    method=st.sampled_from(CROWN_METHODS),
)
def test_certified_margin_of_a_residual_network_is_below_sampled_and_attacked_margins(
    seed, kind, blocks, projection, stem_pool, eps, norm, method
):
    """Soundness: per sample, the certified margin is at most the margin at 64 points of the
    threat set and at PGD's point; and (guaranteed by construction: each ``crown*`` value
    is the per-spec maximum with the interval bound) at least the interval bound."""
    model, shape = random_resnet(
        seed, kind, blocks=blocks, projection=projection, stem_pool=stem_pool
    )
    x, y = inputs(shape, 4, seed), torch.tensor([seed % 3, 0, 1, 2])
    threat = ThreatModel(norm, eps)
    sandwich = gamma_sandwich(model, x, y, threat, methods=("ibp", method))
    assert not sandwich.violations().any()
    certified = sandwich.certified[method]
    assert (certified <= sampled_margins(model, x, y, threat, seed) + 1e-10).all()
    assert (certified >= sandwich.certified["ibp"]).all()


@pytest.mark.parametrize("seed", range(3))
def test_nested_residual_blocks_are_bounded_soundly(seed):
    """A registered block inside a branch is bounded by the same rules, recursively: the
    certified margin by every method is below the margin at 128 sampled points, and
    full CROWN is tighter on average than IBP."""
    torch.manual_seed(seed)
    model = nn.Sequential(
        Normalize([0.4], [0.25]),
        nn.Sequential(nn.Conv2d(1, 2, 3, padding=1), nn.ReLU()),
        NestedResidualBlock(2),
        NestedResidualBlock(2),
        nn.Sequential(nn.Flatten(), nn.Linear(2 * 6 * 6, 3)),
    )
    model = randomise_batch_norm(model, torch.Generator().manual_seed(seed))
    x, y = inputs((1, 6, 6), 4, seed), torch.tensor([0, 1, 2, 0])
    threat = ThreatModel("linf", 0.05)
    bounds = {m: certified_margin_lower(model, x, y, threat, m) for m in ("ibp", *CROWN_METHODS)}
    model64 = float64_eval_copy(model)
    with torch.no_grad():
        points = sample_threat_set(x, threat, 128, seed)
        sampled = torch.stack([multiclass_margin(model64(p), y) for p in points]).min(dim=0).values
    for method, values in bounds.items():
        assert (values <= sampled + 1e-10).all(), method
    assert bounds["crown"].mean() > bounds["ibp"].mean()


@given(
    seed=st.integers(0, 10_000),
    kind=st.sampled_from(RESIDUAL_KINDS),
    projection=st.booleans(),
    eps=st.sampled_from([0.01, 0.05, 0.2]),
)
def test_full_crown_box_of_residual_features_contains_sampled_features(seed, kind, projection, eps):
    """The features after the last block (the network without its head, so the output
    box is bounded back through a residual block) lie in the full-CROWN box at sampled
    points of the threat set, and that box lies in the interval box (up to rounding: the
    interval box is recomputed from intersected boxes, so it can move by an ulp)."""
    model, shape = random_resnet(seed, kind, blocks=2, projection=projection)
    features = nn.Sequential(*model[:-1])
    x, threat = inputs(shape, 3, seed), ThreatModel("linf", eps)
    crown, interval = feature_box(features, x, threat, "crown"), feature_box(features, x, threat)
    assert (crown.lower >= interval.lower - 1e-12).all()
    assert (crown.upper <= interval.upper + 1e-12).all()
    features64 = float64_eval_copy(features)
    with torch.no_grad():
        for point in sample_threat_set(x, threat, 64, seed):
            assert crown.contains(features64(point), tol=1e-10).all()


def test_full_crown_is_tighter_than_intervals_on_residual_networks():
    """What is guaranteed: ``crown*`` bounds are never below ``ibp`` (the max is taken per
    spec). What is not: the relaxation alone can be looser than intervals (a ReLU's lower
    line ``z`` goes below 0 on ``[l, u]``), so its gain is checked as measured on fixed
    networks, with room: at eps 0.05 the mean full-CROWN margin bound is at least 50% of
    the way from the interval bound to the sampled minimum (measured: 68% to 98%)."""
    for kind in RESIDUAL_KINDS:
        model, shape = random_resnet(0, kind, blocks=2)
        x, y = inputs(shape, 8, 0), torch.arange(8) % 3
        threat = ThreatModel("linf", 0.05)
        ibp = certified_margin_lower(model, x, y, threat, "ibp")
        crown_ibp = certified_margin_lower(model, x, y, threat, "crown-ibp")
        crown = certified_margin_lower(model, x, y, threat, "crown")
        assert (crown_ibp >= ibp).all() and (crown >= ibp).all(), kind
        sampled = sampled_margins(model, x, y, threat, 0)
        closed = (crown.mean() - ibp.mean()) / (sampled.mean() - ibp.mean())
        assert closed >= 0.5, (kind, float(closed))
