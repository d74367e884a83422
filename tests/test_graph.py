"""Any nn.Module as a graph (empirical/model/graph.py): weight layers, counting rules, valid
splits, f_a and f_b that compose exactly, activations; the zoo's stage models give the same
splits, counts and activations through the graph as through the stage path."""

from __future__ import annotations

import pytest
import torch
import user_models
from torch import nn
from zoo_sizes import NARROW

from semirobust.empirical.model import ArchitectureSpec, build_model
from semirobust.empirical.model.graph import CountingRules, graph_view, trace_model
from semirobust.empirical.model.stages import (
    count_weight_layers,
    layer_activations,
    split_network,
    valid_splits,
)
from semirobust.empirical.model.zoo import ZOO_ARCHITECTURES
from semirobust.errors import BadInput

USER_MODELS = {
    # name: (factory, input shape, counted layers, uncounted shortcut projections)
    "resnet18": (lambda: user_models.resnet18(width=4), (3, 32, 32), 18, 3),
    "preact_resnet18": (lambda: user_models.preact_resnet18(width=4), (3, 32, 32), 18, 3),
    "wrn_28_10": (lambda: user_models.wrn_28_10(widen_factor=2, base=2), (3, 32, 32), 26, 3),
    "functional": (lambda: user_models.FunctionalNet(), (1, 8, 8), 4, 0),
}


def randomised(model: nn.Module) -> nn.Module:
    """Eval mode with non-trivial BatchNorm statistics, so that every layer matters."""
    generator = torch.Generator().manual_seed(0)
    for module in model.modules():
        if isinstance(module, nn.BatchNorm2d):
            module.running_mean.copy_(0.1 * torch.randn(module.num_features, generator=generator))
            module.running_var.copy_(0.5 + torch.rand(module.num_features, generator=generator))
    return model.eval()


@pytest.mark.parametrize("name", sorted(USER_MODELS))
def test_user_models_count_and_split_as_the_paper_counts(name):
    factory, shape, n, shortcuts = USER_MODELS[name]
    model = randomised(factory())
    view = graph_view(model)
    assert view.n == n
    assert sum(not layer.counted for layer in view.weight_layers) == shortcuts
    x = torch.rand(3, *shape, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        expected = model(x)
        assert view.valid_splits, "a network of blocks has splits between them"
        for a in view.valid_splits:
            f_a, f_b = view.split(a)
            assert torch.equal(f_b(f_a(x)), expected), f"a = {a}"
        activations, output = view.activations(x)
    assert torch.equal(output, expected)
    assert len(activations) == n and activations[-1].shape == (3, 10)


def test_a_split_inside_a_residual_block_is_refused_naming_the_valid_ones():
    view = graph_view(randomised(user_models.resnet18(width=4)))
    assert 2 not in view.valid_splits  # between the two convs of the first block
    with pytest.raises(BadInput, match=r"--split 2 would cut a residual block .* valid splits: 1, 3, 5"):
        view.split(2)
    with pytest.raises(BadInput, match=r"--split 18 is outside the network: f_a must hold 1\.\.17"):
        view.split(18)


def test_a_layer_written_in_forward_ends_after_its_unary_ops_and_constant_combinations():
    functional_view = graph_view(randomised(user_models.FunctionalNet()))
    tokens_view = graph_view(randomised(user_models.TokensNet()))
    x = torch.rand(2, 1, 8, 8, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        # relu(conv2(.)) before torch.flatten: the flatten belongs to the linear layer after it
        assert functional_view.split(2)[0](x).shape == (2, 16, 4, 4)
        # the patch conv's output with the class token and the positions: 1 + 4 tokens of 8
        f_a, f_b = tokens_view.split(1)
        assert f_a(x).shape == (2, 5, 8)
        assert torch.equal(f_b(f_a(x)), tokens_view.module(x))


def test_counting_rules_are_configurable():
    model = user_models.resnet18(width=4)
    assert graph_view(model, CountingRules(skip_shortcuts=False)).n == 21
    named = graph_view(model, CountingRules(not_counted=frozenset({"fc"})))
    assert named.n == 17 and "fc" not in [layer.target for layer in named.counted]


def test_data_dependent_control_flow_is_one_line_naming_the_source_line():
    with pytest.raises(BadInput) as caught:
        graph_view(user_models.BranchesOnValues())
    message = str(caught.value)
    assert "\n" not in message
    assert "BranchesOnValues cannot be traced by torch.fx" in message
    assert "user_models.py" in message and "if x.sum() > 0:" in message


@pytest.mark.parametrize("name", ZOO_ARCHITECTURES + ("digits-cnn", "mlp"))
def test_zoo_models_split_count_and_activate_the_same_through_the_graph(name):
    shape = (1, 8, 8) if name in ("digits-cnn", "mlp") else (3, 32, 32)
    spec = ArchitectureSpec(name, shape, 10, (0.5,) * shape[0], (0.25,) * shape[0], NARROW.get(name, {}))
    model = randomised(build_model(spec))
    view = graph_view(model)
    assert view.n == count_weight_layers(model)
    assert view.valid_splits == valid_splits(model)
    x = torch.rand(2, *shape, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        graph_activations, graph_output = view.activations(x)
        stage_activations, stage_output = layer_activations(model, x)
        for a in view.valid_splits:
            f_a, f_b = view.split(a)
            features = f_a(x)
            assert torch.equal(features, split_network(model, a).f_a(x)), f"f_a at a = {a}"
            assert torch.equal(f_b(features), stage_output)
    assert torch.equal(graph_output, stage_output)
    assert len(graph_activations) == len(stage_activations)
    for j, (graph_h, stage_h) in enumerate(zip(graph_activations, stage_activations), start=1):
        assert torch.equal(graph_h, stage_h), f"h_{j}"


ZOO_NAMES = ZOO_ARCHITECTURES + ("digits-cnn", "mlp")
EVERY_MODEL = (*USER_MODELS, "tokens", "readme example", *(f"zoo {name}" for name in ZOO_NAMES))


def any_model(name: str) -> tuple[nn.Module, tuple[int, ...]]:
    """A user model, the ViT-style stem, the README's example or a zoo model, and its input shape."""
    if name in USER_MODELS:
        factory, shape, _, _ = USER_MODELS[name]
        return factory(), shape
    if name == "tokens":
        return user_models.TokensNet(), (1, 8, 8)
    if name == "readme example":
        from examples.my_model import SmallResNet

        return SmallResNet(), (1, 8, 8)
    zoo = name.removeprefix("zoo ")
    shape = (1, 8, 8) if zoo in ("digits-cnn", "mlp") else (3, 32, 32)
    spec = ArchitectureSpec(zoo, shape, 10, (0.5,) * shape[0], (0.25,) * shape[0], NARROW.get(zoo, {}))
    return build_model(spec), shape


@pytest.mark.parametrize("name", EVERY_MODEL)
def test_a_traced_model_has_the_splits_of_the_model_it_was_traced_from(name):
    """``graph_view(trace_model(m))`` is ``graph_view(m)``: the traced graph keeps the module
    stack of its function nodes (a residual block's ``relu`` and ``add``), so the split tensor
    after a block is its final ReLU in both, not its ``add``."""
    model, shape = any_model(name)
    model = randomised(model)
    view, traced = graph_view(model), graph_view(trace_model(model))
    assert traced.split_nodes == view.split_nodes
    assert traced.weight_layers == view.weight_layers
    x = torch.rand(2, *shape, generator=torch.Generator().manual_seed(4))
    with torch.no_grad():
        for a in view.valid_splits:
            assert torch.equal(traced.split(a)[0](x), view.split(a)[0](x)), f"f_a at a = {a}"
