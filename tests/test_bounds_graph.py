"""Certified bounds over traced graphs (``fx.GraphModule``): models written as classes with a
``forward`` (tests/user_models.py) and random small ReLU graphs with residual adds,
concatenations and functional calls are bounded soundly (IBP and CROWN below the margin at
sampled points and at PGD's point; the Lipschitz bound above local Jacobian norms); the
zoo's models give the stage path's numbers through the graph path; a GraphModule works as
a stage of an ``nn.Sequential``; unsupported nodes are all named in one error."""

from __future__ import annotations

import operator

import pytest
import torch
import user_models
from bounds_networks import randomise_batch_norm, sample_threat_set
from hypothesis import given
from hypothesis import strategies as st
from test_bounds_zoo import zoo_model
from torch import fx, nn
from torch.nn import functional as F

from semirobust.empirical.attacks.objectives import multiclass_margin
from semirobust.empirical.attacks.threat import ThreatModel
from semirobust.empirical.bounds import (
    certified_feature_sensitivity,
    certified_margin_lower,
    input_box,
    interval_bounds,
    lipschitz_upper,
    split_lipschitz,
)
from semirobust.empirical.bounds.graph_nodes import graph_unsupported
from semirobust.empirical.bounds.interval import has_interval_rule
from semirobust.empirical.bounds.layer_rules import UnsupportedLayer, float64_eval_copy
from semirobust.empirical.bounds.linear import backward, bound_layers, concretize
from semirobust.empirical.measure.sandwich import gamma_sandwich
from semirobust.empirical.model import Normalize
from semirobust.empirical.model.graph import graph_view, trace_model
from semirobust.empirical.model.stages import split_network

METHODS = ("ibp", "crown-ibp", "crown")


def user_model(name: str) -> tuple[fx.GraphModule, tuple[int, ...]]:
    """A user model at small width, random weights, non-trivial BatchNorm, traced."""
    torch.manual_seed(0)
    builders = {
        "resnet18": (lambda: user_models.resnet18(num_classes=4, width=2), (3, 16, 16)),
        "preact_resnet18": (lambda: user_models.preact_resnet18(num_classes=4, width=2), (3, 8, 8)),
        "wrn": (lambda: user_models.WideResNet(10, 2, 4, base=2), (3, 8, 8)),
        "functional": (lambda: user_models.FunctionalNet(num_classes=4, width=3), (1, 8, 8)),
    }
    build, shape = builders[name]
    model = randomise_batch_norm(build(), torch.Generator().manual_seed(1))
    return trace_model(model), shape


USER_MODELS = ("resnet18", "preact_resnet18", "wrn", "functional")


def sampled_margins(model: nn.Module, x, y, threat: ThreatModel, count: int = 48) -> torch.Tensor:
    """Per input, the smallest margin at ``count`` points of the l-inf threat box."""
    points = sample_threat_set(x, threat, count, seed=7)
    model64 = model.double().eval()
    with torch.no_grad():
        margins = torch.stack([multiclass_margin(model64(p), y) for p in points])
    model.float()
    return margins.min(dim=0).values


@pytest.mark.parametrize("name", USER_MODELS)
def test_user_models_are_bounded_below_sampled_and_attacked_margins(name):
    model, shape = user_model(name)
    x = torch.rand((3, *shape), generator=torch.Generator().manual_seed(2))
    y = torch.tensor([0, 1, 2])
    threat = ThreatModel("linf", 0.01)
    lower, upper = interval_bounds(model, x, threat)
    points = sample_threat_set(x, threat, 16, seed=3)
    with torch.no_grad():
        outputs = torch.stack([model.double()(p) for p in points])
    model.float()
    assert ((outputs >= lower - 1e-10) & (outputs <= upper + 1e-10)).all()
    sandwich = gamma_sandwich(model, x, y, threat, methods=METHODS, progress=False)
    assert not sandwich.violations().any()  # certified <= attacked (PGD), per sample and method
    sampled = sampled_margins(model, x, y, threat)
    for method in METHODS:
        assert (sandwich.certified[method] <= sampled + 1e-10).all()
    assert (sandwich.certified["crown"] >= sandwich.certified["ibp"]).all()


def spectral_norm_of_jacobian(model: nn.Module, point: torch.Tensor) -> float:
    jacobian = torch.autograd.functional.jacobian(lambda v: model(v.unsqueeze(0)).squeeze(0), point)
    return float(torch.linalg.matrix_norm(jacobian.reshape(jacobian.shape[0], -1), ord=2))


@pytest.mark.parametrize("name", USER_MODELS)
def test_the_graph_lipschitz_bound_is_above_local_jacobian_norms(name):
    model, shape = user_model(name)
    bound = lipschitz_upper(model, shape)
    assert bound.certified and len(bound.layers) == 1
    model64 = model.double().eval()
    points = torch.rand(
        (3, *shape), generator=torch.Generator().manual_seed(4), dtype=torch.float64
    )
    for point in points:
        assert spectral_norm_of_jacobian(model64, point) <= bound.product * (1 + 1e-9)


class RandomGraph(nn.Module):
    """A small ReLU graph drawn from ``seed``: a stem, two branches (conv or average pool,
    functional or module ReLU) joined by ``add``, ``sub``-and-scale or ``cat``, a fan-out
    value reused by the head, a flatten written as ``view``, ``torch.flatten`` or ``mean``,
    and a functional linear layer."""

    def __init__(self, seed: int) -> None:
        super().__init__()
        generator = torch.Generator().manual_seed(seed)
        self.choice = [int(c) for c in torch.randint(0, 3, (4,), generator=generator)]
        torch.manual_seed(seed)
        self.stem = nn.Conv2d(1, 3, 3, padding=1)
        self.left = nn.Conv2d(3, 3, 3, padding=1)
        self.right = nn.Conv2d(3, 3, 1)
        self.scale = nn.Parameter(torch.rand(1, 3, 1, 1) + 0.5)
        joined = 6 if self.choice[0] == 2 else 3
        features = joined if self.choice[2] == 2 else joined * 4 * 4
        self.hidden = nn.Parameter(torch.randn(5, features) * 0.3)
        self.out = nn.Linear(5 + 3, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.relu(self.stem(x))
        left = torch.relu(self.left(h)) if self.choice[1] else self.left(h).relu()
        right = self.right(h)
        if self.choice[0] == 0:
            joined = left + right
        elif self.choice[0] == 1:
            joined = (left - right) * self.scale
        else:
            joined = torch.cat([left, right], dim=1)
        joined = F.relu(joined)
        if self.choice[2] == 0:
            flat = joined.view(joined.size(0), -1)
        elif self.choice[2] == 1:
            flat = torch.flatten(joined, 1)
        else:
            flat = joined.mean((2, 3))
        pooled = F.avg_pool2d(h, 4).flatten(1)  # h used three times (fan-out)
        return self.out(torch.cat([F.relu(F.linear(flat, self.hidden)), pooled], dim=1))


@given(seed=st.integers(0, 10_000), eps=st.sampled_from([0.02, 0.1]))
def test_random_graphs_are_bounded_soundly(seed, eps):
    model = trace_model(RandomGraph(seed).eval())
    x = torch.rand((3, 1, 4, 4), generator=torch.Generator().manual_seed(seed))
    y = torch.tensor([0, 1, 2])
    threat = ThreatModel("linf", eps)
    lower, upper = interval_bounds(model, x, threat)
    points = sample_threat_set(x, threat, 32, seed)
    with torch.no_grad():
        outputs = torch.stack([model.double()(p) for p in points])
    model.float()
    assert ((outputs >= lower - 1e-10) & (outputs <= upper + 1e-10)).all()
    sampled = sampled_margins(model, x, y, threat)
    for method in (*METHODS, "alpha-crown"):
        assert (certified_margin_lower(model, x, y, threat, method) <= sampled + 1e-10).all()
    bound = lipschitz_upper(model, (1, 4, 4))
    point = x[0].double()
    assert spectral_norm_of_jacobian(model.double(), point) <= bound.product * (1 + 1e-9)


ZOO_NAMES = ("alexnet", "resnet18", "resnet50", "vgg16-bn", "wrn-34-10")


def relative(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(((a - b).abs() / b.abs().clamp_min(1e-12)).max())


@pytest.mark.parametrize("name", ZOO_NAMES)
def test_zoo_models_give_the_stage_paths_bounds_through_the_graph(name):
    """IBP boxes, every margin method, the Lipschitz product, the bounds of both parts of a
    split and the certified feature sensitivity of ``f_a``: the traced zoo model and the
    stage model agree within 1e-6 (relative)."""
    model, shape = zoo_model(name)
    graph = trace_model(model)
    x = torch.rand((2, *shape), generator=torch.Generator().manual_seed(1))
    y = torch.tensor([0, 1])
    threat = ThreatModel("linf", 0.01)
    for stage_bound, graph_bound in zip(
        interval_bounds(model, x, threat), interval_bounds(graph, x, threat), strict=True
    ):
        assert relative(graph_bound, stage_bound) <= 1e-6
    methods = (
        ("ibp", "crown-ibp", "crown", "alpha-crown")
        if name in ("alexnet", "resnet18")
        else ("ibp", "crown-ibp")
    )
    for method in methods:
        stage = certified_margin_lower(model, x, y, threat, method)
        assert relative(certified_margin_lower(graph, x, y, threat, method), stage) <= 1e-6, method
    stage_lipschitz = lipschitz_upper(model, shape)
    graph_lipschitz = lipschitz_upper(graph, shape)
    assert abs(graph_lipschitz.product / stage_lipschitz.product - 1) <= 1e-6
    a = graph_view(graph).valid_splits[1]
    for stage_part, graph_part in zip(
        split_lipschitz(model, stage_lipschitz, a),
        split_lipschitz(graph, graph_lipschitz, a),
        strict=True,
    ):
        assert abs(graph_part.product / stage_part.product - 1) <= 1e-6
    f_a_graph, _ = graph_view(model).split(a)
    f_a_stage = split_network(model, a).f_a
    with torch.no_grad():
        assert torch.equal(f_a_graph(x), f_a_stage(x))
    stage_sensitivity = certified_feature_sensitivity(f_a_stage, x, threat)
    graph_sensitivity = certified_feature_sensitivity(f_a_graph, x, threat)
    assert relative(graph_sensitivity, stage_sensitivity) <= 1e-6


def test_graph_modules_are_stages_of_a_sequential():
    """``f_a`` and ``f_b`` of a traced ResNet as the two stages of an ``nn.Sequential``:
    the same bounds as the whole graph, and a certified ``Delta_a`` above the attained one."""
    model, shape = user_model("resnet18")
    view = graph_view(model)
    a = view.valid_splits[len(view.valid_splits) // 2]
    f_a, f_b = view.split(a)
    staged = nn.Sequential(f_a, f_b)
    x = torch.rand((2, *shape), generator=torch.Generator().manual_seed(5))
    y = torch.tensor([0, 3])
    threat = ThreatModel("linf", 0.01)
    for method in METHODS:
        whole = certified_margin_lower(model, x, y, threat, method)
        assert relative(certified_margin_lower(staged, x, y, threat, method), whole) <= 1e-6
    assert (
        abs(lipschitz_upper(staged, shape).product / lipschitz_upper(model, shape).product - 1)
        < 1e-6
    )
    sensitivity = certified_feature_sensitivity(f_a, x, threat, method="crown")
    points = sample_threat_set(x, threat, 16, seed=6)
    f_a64 = f_a.double()
    with torch.no_grad():
        moved = torch.stack([(f_a64(p) - f_a64(x.double())).flatten(1).norm(dim=1) for p in points])
    assert (moved <= sensitivity + 1e-10).all()


class MixedHead(nn.Module):
    """Supported layers around three unsupported operations (a sort, a layer norm and an
    attention-style softmax of a product of input-dependent values)."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(4, 4)
        self.norm = nn.LayerNorm(4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.relu(self.fc(x))
        ranked = torch.sort(h, dim=1).values
        scores = torch.softmax(ranked * h, dim=1)
        return self.norm(scores) + h


def test_every_unsupported_node_is_named_in_one_error():
    model = trace_model(MixedHead())
    listed = graph_unsupported(model, has_interval_rule)
    assert [entry.split(":")[0] for entry in listed] == [
        "sort",
        "getattr_1",
        "mul",
        "softmax",
        "norm",
    ]
    assert "norm: call_module norm (LayerNorm)" in listed
    x, y = torch.rand(2, 4), torch.tensor([0, 1])
    threat = ThreatModel("linf", 0.01)
    calls = [
        lambda: interval_bounds(model, x, threat),
        lambda: certified_margin_lower(model, x, y, threat, "crown"),
        lambda: lipschitz_upper(model, (4,)),
    ]
    for call in calls:
        with pytest.raises(UnsupportedLayer, match="5 graph node") as error:
            call()
        for entry in listed:
            assert entry in str(error.value)
    staged = nn.Sequential(model, nn.Tanh(), trace_model(MixedHead()))
    with pytest.raises(UnsupportedLayer, match="11 graph node") as error:
        interval_bounds(staged, x, threat)
    assert "stage 0 sort: call_function torch.sort" in str(error.value)
    assert "stage 1 Tanh: no rule for layer type" in str(error.value)
    assert "stage 2 norm: call_module norm (LayerNorm)" in str(error.value)


def test_inplace_relu_and_augmented_add_leave_the_boxes_alone():
    """torchvision writes ``nn.ReLU(inplace=True)`` and ``out += identity``; the boxes of the
    values they read are used again (fan-out) and must not be overwritten."""
    model, shape = user_model("resnet18")
    assert any(n.target is operator.add for n in model.graph.nodes)
    x = torch.rand((2, *shape), generator=torch.Generator().manual_seed(8))
    threat = ThreatModel("linf", 0.0)
    lower, upper = interval_bounds(model, x, threat)
    with torch.no_grad():
        exact = model.double()(x.double())
    torch.testing.assert_close(lower, exact, rtol=0, atol=1e-10)
    torch.testing.assert_close(upper, exact, rtol=0, atol=1e-10)


class FunctionalMLP(nn.Module):
    """An MLP written with ``F.linear`` on parameters, an ``nn.Linear``, and functional ReLUs."""

    def __init__(self, seed: int, d_in: int = 6, width: int = 8, classes: int = 3) -> None:
        super().__init__()
        generator = torch.Generator().manual_seed(seed)
        self.w1 = nn.Parameter(torch.randn(width, d_in, generator=generator) / d_in**0.5)
        self.b1 = nn.Parameter(0.1 * torch.randn(width, generator=generator))
        self.hidden = nn.Linear(width, width)
        self.w3 = nn.Parameter(torch.randn(classes, width, generator=generator) / width**0.5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.relu(F.linear(x, self.w1, self.b1))
        h = self.hidden(h).relu()
        return F.linear(h, self.w3)

    def as_sequential(self) -> nn.Sequential:
        first, last = nn.Linear(*self.w1.shape[::-1]), nn.Linear(*self.w3.shape[::-1], bias=False)
        with torch.no_grad():
            first.weight.copy_(self.w1)
            first.bias.copy_(self.b1)
            last.weight.copy_(self.w3)
        return nn.Sequential(first, nn.ReLU(), self.hidden, nn.ReLU(), last).double()


@given(seed=st.integers(0, 10_000), eps=st.sampled_from([0.01, 0.05]))
def test_a_functional_mlp_graph_agrees_with_the_oracle(seed, eps):
    """The ``bound-propagation`` package (dev extra) on the same MLP as a Sequential: IBP,
    CROWN-IBP and full CROWN of every output agree within 1e-5 (float64)."""
    bound_propagation = pytest.importorskip("bound_propagation")
    torch.manual_seed(seed)
    mlp = FunctionalMLP(seed)
    graph = trace_model(mlp)
    x = torch.rand((4, 6), generator=torch.Generator().manual_seed(seed))
    threat = ThreatModel("linf", eps)
    box = input_box(x.double(), threat)
    oracle = bound_propagation.BoundModelFactory(adaptive_relu=True).build(mlp.as_sequential())
    flat = bound_propagation.HyperRectangle(box.lower, box.upper)
    with torch.no_grad():
        reference = oracle.ibp(flat)
    lower, upper = interval_bounds(graph, x, threat)
    torch.testing.assert_close(lower, reference.lower, rtol=0, atol=1e-5)
    torch.testing.assert_close(upper, reference.upper, rtol=0, atol=1e-5)
    layers = [float64_eval_copy(graph).requires_grad_(False)]
    spec = torch.eye(3, dtype=torch.float64).expand(4, -1, -1)
    for intermediate, method in (("ibp", oracle.crown_ibp), ("crown", oracle.crown)):
        with torch.no_grad():
            bounded = bound_layers(layers, box, intermediate)
            ours = concretize(*backward(layers, bounded.bounds, spec), box)
            theirs = method(flat, bound_upper=False).concretize().lower
        torch.testing.assert_close(ours, theirs, rtol=0, atol=1e-5)


class FunctionalConvNet(nn.Module):
    """A CNN written in functions only: normalisation by buffers, ``F.conv2d`` and
    ``F.batch_norm`` (eval) on parameters, ``F.relu``, ``F.max_pool2d``,
    ``F.adaptive_avg_pool2d``, ``F.linear``; :meth:`as_sequential` is the same network of
    modules for the stage path."""

    def __init__(self, seed: int) -> None:
        super().__init__()
        generator = torch.Generator().manual_seed(seed)

        def draw(*shape: int, scale: float = 1.0, shift: float = 0.0) -> torch.Tensor:
            return shift + scale * torch.randn(*shape, generator=generator)

        self.register_buffer("mean", torch.tensor([0.4]).view(1, 1, 1, 1))
        self.register_buffer("std", torch.tensor([0.25]).view(1, 1, 1, 1))
        self.conv_weight = nn.Parameter(draw(4, 1, 3, 3, scale=0.5))
        self.conv_bias = nn.Parameter(draw(4, scale=0.1))
        self.register_buffer("running_mean", draw(4, scale=0.2))
        self.register_buffer("running_var", 0.5 + torch.rand(4, generator=generator))
        self.gamma = nn.Parameter(draw(4, scale=0.2, shift=1.0))
        self.beta = nn.Parameter(draw(4, scale=0.1))
        self.head = nn.Parameter(draw(3, 4, scale=0.5))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = (x - self.mean) / self.std
        h = F.conv2d(x, self.conv_weight, self.conv_bias, padding=1)
        h = F.batch_norm(h, self.running_mean, self.running_var, self.gamma, self.beta, False)
        h = F.max_pool2d(F.relu(h), 2)
        return F.linear(torch.flatten(F.adaptive_avg_pool2d(h, 1), 1), self.head)

    def as_sequential(self) -> nn.Sequential:
        conv, norm = nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4)
        head = nn.Linear(4, 3, bias=False)
        with torch.no_grad():
            conv.weight.copy_(self.conv_weight)
            conv.bias.copy_(self.conv_bias)
            norm.running_mean.copy_(self.running_mean)
            norm.running_var.copy_(self.running_var)
            norm.weight.copy_(self.gamma)
            norm.bias.copy_(self.beta)
            head.weight.copy_(self.head)
        layers = [Normalize([0.4], [0.25]), conv, norm, nn.ReLU(), nn.MaxPool2d(2),
                  nn.AdaptiveAvgPool2d(1), nn.Flatten(), head]
        return nn.Sequential(*layers).eval()


@pytest.mark.parametrize("seed", range(3))
def test_functional_calls_are_bounded_like_their_modules(seed):
    """The same network written with functions (traced) and with modules (stage path): IBP
    boxes, every margin method and the Lipschitz product (conv and functional batch norm
    folded alike) agree within 1e-9."""
    functional = FunctionalConvNet(seed)
    graph, stages = trace_model(functional), functional.as_sequential()
    x = torch.rand((3, 1, 6, 6), generator=torch.Generator().manual_seed(seed))
    y = torch.tensor([0, 1, 2])
    threat = ThreatModel("linf", 0.03)
    for ours, theirs in zip(interval_bounds(graph, x, threat), interval_bounds(stages, x, threat),
                            strict=True):
        torch.testing.assert_close(ours, theirs, rtol=1e-9, atol=1e-12)
    for method in (*METHODS, "alpha-crown"):
        torch.testing.assert_close(certified_margin_lower(graph, x, y, threat, method),
                                   certified_margin_lower(stages, x, y, threat, method),
                                   rtol=1e-9, atol=1e-12)
    graph_bound, stage_bound = lipschitz_upper(graph, (1, 6, 6)), lipschitz_upper(stages, (1, 6, 6))
    assert "(1 BatchNorms folded)" in graph_bound.layers[0].method
    assert graph_bound.product == pytest.approx(stage_bound.product, rel=1e-9)
