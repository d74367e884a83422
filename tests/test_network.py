"""Stages, weight layers and the split F = f_b o f_a (THEORY.md section 1)."""

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from torch import nn

from semirobust.empirical.model import ArchitectureSpec, build_model
from semirobust.empirical.model.stages import (
    count_weight_layers,
    fa_layers_from,
    layer_activations,
    merge,
    split_network,
    valid_splits,
)
from semirobust.errors import BadInput


def digits_cnn(batch_norm: bool = True) -> nn.Sequential:
    spec = ArchitectureSpec("digits-cnn", (1, 8, 8), 10, (0.3,), (0.4,), {"batch_norm": batch_norm})
    return build_model(spec).eval()


def mlp(depth: int, width: int) -> nn.Sequential:
    spec = ArchitectureSpec("mlp", (6,), 3, (0.5,) * 6, (0.2,) * 6, {"depth": depth, "width": width})
    return build_model(spec).eval()


def test_digits_cnn_has_seven_weight_layers_one_per_stage():
    model = digits_cnn()
    assert count_weight_layers(model) == 7
    assert valid_splits(model) == [1, 2, 3, 4, 5, 6]


@given(depth=st.integers(1, 5), width=st.integers(1, 12), data=st.data())
def test_split_then_merge_is_the_same_function(depth, width, data):
    torch.manual_seed(depth * 100 + width)
    model = mlp(depth, width)
    a = data.draw(st.sampled_from(valid_splits(model)))
    split = split_network(model, a)
    x = torch.rand(7, 6)
    assert split.a == a and split.fb_layers == depth + 1 - a
    assert torch.equal(split.f_b(split.f_a(x)), model(x))
    assert torch.equal(merge(split)(x), model(x))


@pytest.mark.parametrize("a", range(1, 7))
def test_cnn_split_is_exact_at_every_boundary(a):
    torch.manual_seed(a)
    model = digits_cnn()
    x = torch.rand(5, 1, 8, 8)
    split = split_network(model, a)
    assert count_weight_layers(split.f_a) == a
    assert count_weight_layers(split.f_b) == 7 - a
    assert torch.equal(split.f_b(split.f_a(x)), model(x))


@pytest.mark.parametrize("a", [0, 7, 8, -1])
def test_split_outside_the_network_is_bad_input(a):
    with pytest.raises(BadInput, match="outside the network"):
        split_network(digits_cnn(), a)


def test_split_inside_a_stage_is_refused():
    block = nn.Sequential(nn.Linear(4, 4), nn.ReLU(), nn.Linear(4, 4))
    model = nn.Sequential(nn.Linear(3, 4), block, nn.Linear(4, 2))
    assert valid_splits(model) == [1, 3]
    with pytest.raises(BadInput, match="would cut stage 1"):
        split_network(model, 2)


def test_non_sequential_model_is_refused_with_what_is_needed():
    with pytest.raises(BadInput, match="nn.Sequential of stages"):
        split_network(nn.Linear(2, 2), 1)


def test_fb_layers_resolves_to_the_same_split():
    model = digits_cnn()
    assert fa_layers_from(model, split=None, fb_layers=3) == 4
    assert fa_layers_from(model, split=4, fb_layers=None) == 4
    with pytest.raises(BadInput):
        fa_layers_from(model, split=None, fb_layers=7)


def test_layer_activations_follow_the_split():
    torch.manual_seed(0)
    model = digits_cnn()
    x = torch.rand(4, 1, 8, 8)
    activations, logits = layer_activations(model, x)
    assert len(activations) == 7
    assert torch.equal(activations[-1], logits)
    split = split_network(model, 4)
    assert torch.equal(activations[3], split.f_a(x).flatten(1))
