"""Any nn.Module as stages (empirical/model/graph_stages.py): the stage path (counts, splits,
activations) on as_stages(model) gives the graph view's numbers, f_b(f_a(x)) is the model's
output exactly at every valid split, and the zoo's stage models give the same splits,
weight-layer counts and activations through as_stages as through their own stages, and the
same numbers in ``check``, certified ones included."""

from __future__ import annotations

import pytest
import torch
import user_models
from test_graph import USER_MODELS, randomised
from zoo_sizes import NARROW

from semirobust.empirical.model import ArchitectureSpec, build_model
from semirobust.empirical.model.graph import CountingRules, graph_view
from semirobust.empirical.model.graph_stages import as_stages
from semirobust.empirical.model.stages import (
    count_weight_layers,
    layer_activations,
    split_network,
    stage_weight_counts,
    valid_splits,
)
from semirobust.empirical.model.zoo import ZOO_ARCHITECTURES
from semirobust.errors import BadInput


@pytest.mark.parametrize("name", sorted(USER_MODELS))
def test_the_stage_path_of_a_user_model_is_its_graph(name):
    factory, shape, n, _ = USER_MODELS[name]
    model = randomised(factory())
    view, stages = graph_view(model), as_stages(model)
    assert count_weight_layers(stages) == n and valid_splits(stages) == view.valid_splits
    # one stage per region between split tensors: one counted layer, or a residual block
    assert len(stages) == len(view.valid_splits) + 1 and all(1 <= c <= 2 for c in stage_weight_counts(stages))
    x = torch.rand(3, *shape, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        expected = model(x)
        assert torch.equal(stages(x), expected)
        for a in valid_splits(stages):
            split = split_network(stages, a)
            assert (split.a, split.n) == (a, n)
            features = split.f_a(x)
            assert torch.equal(features, view.split(a)[0](x)), f"f_a at a = {a}"
            assert torch.equal(split.f_b(features), expected), f"a = {a}"
        graph_activations, _ = view.activations(x)
        stage_activations, output = layer_activations(stages, x)
    assert torch.equal(output, expected) and len(stage_activations) == n
    for j, (graph_h, stage_h) in enumerate(zip(graph_activations, stage_activations), start=1):
        assert torch.equal(graph_h, stage_h), f"h_{j}"


def test_stages_share_the_models_parameters_and_follow_its_counting_rules():
    model = randomised(user_models.resnet18(width=4))
    stages = as_stages(model)
    parameters = {id(p) for p in model.parameters()}
    assert {id(p) for p in stages.parameters()} == parameters
    # the functional F.linear layer is counted although it is no module
    assert count_weight_layers(as_stages(randomised(user_models.FunctionalNet()))) == 4
    assert count_weight_layers(as_stages(model, CountingRules(skip_shortcuts=False))) == 21
    with torch.no_grad():
        model.fc.bias.add_(1.0)  # one model: a change to its weights is a change to its stages
        x = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(0))
        assert torch.equal(stages(x), model(x))


def test_a_model_that_cannot_be_traced_is_one_line():
    with pytest.raises(BadInput, match=r"BranchesOnValues cannot be traced .* if x\.sum\(\) > 0:") as caught:
        as_stages(user_models.BranchesOnValues())
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize("name", ZOO_ARCHITECTURES + ("digits-cnn", "mlp"))
def test_zoo_models_split_count_and_activate_the_same_through_as_stages(name):
    shape = (1, 8, 8) if name in ("digits-cnn", "mlp") else (3, 32, 32)
    spec = ArchitectureSpec(name, shape, 10, (0.5,) * shape[0], (0.25,) * shape[0], NARROW.get(name, {}))
    model = randomised(build_model(spec))
    stages = as_stages(model)
    assert count_weight_layers(stages) == count_weight_layers(model)
    assert valid_splits(stages) == valid_splits(model)
    x = torch.rand(2, *shape, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        zoo_activations, zoo_output = layer_activations(model, x)
        staged_activations, staged_output = layer_activations(stages, x)
        for a in valid_splits(model):
            assert torch.equal(split_network(stages, a).f_a(x), split_network(model, a).f_a(x)), f"f_a at a = {a}"
    assert torch.equal(staged_output, zoo_output)
    assert len(staged_activations) == len(zoo_activations)
    for j, (staged_h, zoo_h) in enumerate(zip(staged_activations, zoo_activations), start=1):
        assert torch.equal(staged_h, zoo_h), f"h_{j}"


#: keys of check's JSON that say how long something took or how many factors a product has
#: (one per layer on the stage path, one per graph stage on the graph path), not what it is
NOT_NUMBERS = ("seconds", "factors", "lipschitz_layers")
#: relative tolerance of the numbers of the two paths (float64 bounds; float32 attacks)
RELATIVE = 1e-6


def assert_same_numbers(ours, theirs, path: str = "") -> None:
    """Every number of ``ours`` within ``RELATIVE`` of ``theirs``; every other value equal."""
    if isinstance(ours, dict):
        assert set(ours) == set(theirs), path
        for key in ours:
            if key not in NOT_NUMBERS:
                assert_same_numbers(ours[key], theirs[key], f"{path}/{key}")
    elif isinstance(ours, list):
        assert len(ours) == len(theirs), path
        for index, (mine, other) in enumerate(zip(ours, theirs)):
            assert_same_numbers(mine, other, f"{path}[{index}]")
    elif isinstance(ours, float) and isinstance(theirs, float):
        assert ours == pytest.approx(theirs, rel=RELATIVE, abs=1e-12), path
    else:
        assert ours == theirs, path


@pytest.mark.parametrize("name", ("digits-cnn", "resnet18"))
def test_check_measures_a_zoo_model_the_same_through_the_graph(name):
    """Every number ``check`` reports, certified ones included (the certified gammas, the
    Lipschitz product and L_b, Delta_a, the transfer bounds at every split, every verdict
    with its population and per-sample verdicts), is the same within 1e-6 (relative)
    through the graph path (the zoo's model as graph stages, and traced whole) as through
    its own stages; so are the bounds of both parts at every split."""
    from semirobust.empirical.attacks import AttackSettings
    from semirobust.empirical.attacks.threat import ThreatModel
    from semirobust.empirical.bounds import split_lipschitz
    from semirobust.empirical.data import load_dataset
    from semirobust.empirical.model.graph import trace_model
    from semirobust.empirical.studies.check import CheckSettings, run_check

    data = load_dataset("digits")
    spec = ArchitectureSpec(name, (1, 8, 8), 10, (0.3,), (0.4,), NARROW.get(name, {}))
    torch.manual_seed(0)
    model = randomised(build_model(spec))
    settings = CheckSettings(a=valid_splits(model)[0], threat=ThreatModel("linf", 0.05), n=120,
                             bound_methods=("ibp", "crown-ibp"),
                             attack=AttackSettings(steps=2, restarts=1, seed=0))
    zoo = run_check(model, data.x_test, data.y_test, settings, device=torch.device("cpu"))
    assert zoo.certified and zoo.lipschitz.certified and zoo.sandwich_violations == 0
    for label, graph in (("graph stages", as_stages(model)), ("traced whole", trace_model(model))):
        staged = run_check(graph, data.x_test, data.y_test, settings, device=torch.device("cpu"))
        assert staged.certified, label
        assert_same_numbers(staged.to_dict(), zoo.to_dict(), label)
        assert staged.lipschitz.product == pytest.approx(zoo.lipschitz.product, rel=RELATIVE)
        stages = as_stages(graph)
        for a in valid_splits(model):
            for ours, theirs in zip(split_lipschitz(stages, staged.lipschitz, a),
                                    split_lipschitz(model, zoo.lipschitz, a), strict=True):
                assert ours.product == pytest.approx(theirs.product, rel=RELATIVE), f"{label}, a = {a}"
