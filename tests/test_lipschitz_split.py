"""The split Lipschitz bound is an upper bound of each part (THEORY.md 5): for every
placement of conv, BatchNorm and split point, in flat and nested ``nn.Sequential``s, the
certified ``L(f_a)`` and ``L(f_b)`` are at least the l2 norm of each part's Jacobian at a
point. A BatchNorm is never folded across the split (issue 13's "2+3" bug)."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from torch import nn

from semirobust.empirical.bounds.lipschitz import lipschitz_upper, split_lipschitz
from semirobust.empirical.model.stages import split_network, valid_splits

SIDE = 4  # inputs 1 x 4 x 4


def jacobian_norm(part: nn.Module, point: torch.Tensor) -> float:
    """``||J_part(point)||_2`` (largest singular value of the full Jacobian, float64)."""
    jacobian = torch.autograd.functional.jacobian(lambda v: part(v.unsqueeze(0)).flatten(),
                                                  point)
    return float(torch.linalg.matrix_norm(jacobian.reshape(jacobian.shape[0], -1), ord=2))


def batch_norm(channels: int, variance: float, seed: int) -> nn.BatchNorm2d:
    generator = torch.Generator().manual_seed(seed)
    layer = nn.BatchNorm2d(channels)
    layer.running_var.fill_(variance)
    layer.running_mean.normal_(generator=generator)
    with torch.no_grad():
        layer.weight.uniform_(0.5, 2.0, generator=generator)
        layer.bias.normal_(generator=generator)
    return layer


def issue_example() -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(1, 2, 3, padding=1), batch_norm(2, 0.01, 0), nn.ReLU(),
                         nn.Flatten(), nn.Linear(2 * SIDE * SIDE, 3)).double().eval()


def check_every_split(model: nn.Sequential, seed: int) -> None:
    torch.manual_seed(seed)
    x = torch.randn(1, SIDE, SIDE, dtype=torch.float64)
    whole = lipschitz_upper(model, (1, SIDE, SIDE))
    for a in valid_splits(model):
        bound_a, bound_b = split_lipschitz(model, whole, a)
        split = split_network(model, a)
        with torch.no_grad():
            middle = split.f_a(x.unsqueeze(0))[0]
        local_a, local_b = jacobian_norm(split.f_a, x), jacobian_norm(split.f_b, middle)
        assert bound_a.product >= local_a * (1 - 1e-9), (a, model, bound_a, local_a)
        assert bound_b.product >= local_b * (1 - 1e-9), (a, model, bound_b, local_b)
        assert bound_a.certified and bound_b.certified


def test_the_issue_example_is_bounded_on_both_sides():
    model = issue_example()
    whole = lipschitz_upper(model, (1, SIDE, SIDE))
    assert [f.path for f in whole.layers][0] == "0+1"  # folded in the whole network
    bound_a, bound_b = split_lipschitz(model, whole, 1)
    # f_b opens with the BatchNorm (scale up to 2 / sqrt(0.01 + 1e-5) ~ 20): it is f_b's
    assert [f.path for f in bound_b.layers][0] == "1"
    assert [f.path for f in bound_a.layers] == ["0"]
    check_every_split(model, seed=0)


def test_a_part_of_the_bound_refuses_a_factor_that_crosses_its_range():
    whole = lipschitz_upper(issue_example(), (1, SIDE, SIDE))
    with pytest.raises(ValueError, match="span stages"):
        whole.stages(1)


LAYER = st.sampled_from(["conv", "bn", "relu"])


@st.composite
def conv_bn_networks(draw) -> nn.Sequential:
    """Conv, BatchNorm and ReLU in any order (at least one conv), then Flatten and
    Linear; consecutive modules grouped at random into nested Sequentials."""
    kinds = draw(st.lists(LAYER, min_size=1, max_size=5).filter(lambda k: "conv" in k))
    seed = draw(st.integers(0, 2**16))
    torch.manual_seed(seed)
    layers: list[nn.Module] = []
    channels = 1
    for index, kind in enumerate(kinds):
        if kind == "conv":
            out = draw(st.integers(1, 2))
            layers.append(nn.Conv2d(channels, out, 3, padding=1))
            channels = out
        elif kind == "bn":
            variance = draw(st.sampled_from([0.01, 0.1, 1.0]))
            layers.append(batch_norm(channels, variance, seed + index))
        else:
            layers.append(nn.ReLU())
    layers += [nn.Flatten(), nn.Linear(channels * SIDE * SIDE, 3)]
    cuts = sorted(set(draw(st.lists(st.integers(1, len(layers) - 1), max_size=3))))
    if draw(st.booleans()) and cuts:  # nested: groups of consecutive modules
        bounds = [0, *cuts, len(layers)]
        groups = [layers[b:e] for b, e in zip(bounds, bounds[1:])]
        stages = [nn.Sequential(*g) if len(g) > 1 else g[0] for g in groups]
        return nn.Sequential(*stages).double().eval()
    return nn.Sequential(*layers).double().eval()


@given(model=conv_bn_networks(), seed=st.integers(0, 100))
def test_split_bounds_exceed_each_parts_local_jacobian_norm(model, seed):
    check_every_split(model, seed)
