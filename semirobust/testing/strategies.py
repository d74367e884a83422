"""Hypothesis strategies for semirobust's objects: random networks, datasets, threat models,
labelled input batches and dependent sample pairs with known mutual information.

Every strategy takes keyword-only arguments, and each argument is itself a strategy
(``depth=st.integers(1, 2)``, or ``depth=st.just(2)`` for a fixed value), so a test
narrows exactly what it needs. Passing a plain value instead of a strategy raises
``hypothesis.errors.InvalidArgument`` saying how to write the call.

Networks follow the project's model convention (``semirobust.empirical.model.registry``): an
``nn.Sequential`` whose first stage is ``Normalize`` and whose other stages each hold one
weight layer with its ReLU. Every weight layer is rescaled so that its l2 operator norm
(bias excluded) is exactly ``lipschitz_scale``; with 1-Lipschitz ReLUs and a ``Normalize``
of unit standard deviation the whole network is then ``lipschitz_scale ** n``-Lipschitz
(l2 -> l2) for ``n`` weight layers, a ground truth for Lipschitz bounds (THEORY.md 5).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from hypothesis import strategies as st
from hypothesis.errors import InvalidArgument
from torch import nn

from semirobust.empirical.attacks.threat import ThreatModel
from semirobust.empirical.dependency.ground_truth import gaussian_pair, gaussian_pair_mi
from semirobust.empirical.model import Normalize
from semirobust.empirical.model.stages import weight_layers
from semirobust.empirical.runtime.device import seeded_torch_rng

NETWORK_KINDS = ("mlp", "cnn")
DATASET_KINDS = ("separable", "overlapping")
NORM_NAMES = ("linf", "l2")


@dataclass(frozen=True)
class RandomNetwork:
    """A drawn network with what was asked for, in eval mode and float64.

    ``lipschitz_upper`` = ``lipschitz_scale ** weight_layers``: an exact upper bound on the
    network's l2 Lipschitz constant (each layer's operator norm is ``lipschitz_scale``).
    """

    model: nn.Sequential
    kind: str
    input_shape: tuple[int, ...]
    num_classes: int
    depth: int
    width: int
    lipschitz_scale: float

    @property
    def weight_layers(self) -> int:
        return len(weight_layers(self.model))

    @property
    def lipschitz_upper(self) -> float:
        return self.lipschitz_scale ** self.weight_layers

    def __repr__(self) -> str:
        return (
            f"RandomNetwork({self.kind}, input {self.input_shape}, {self.num_classes} classes, "
            f"depth {self.depth}, width {self.width}, layer norm {self.lipschitz_scale:.3g})"
        )

    def _repr_pretty_(self, printer, cycle) -> None:
        """Hypothesis and IPython print the one-line summary, not every tensor."""
        printer.text(repr(self))


@dataclass(frozen=True)
class LabelledData:
    """Points ``x`` in ``[0,1]^dim`` (float64) with labels ``y`` in ``0..num_classes-1``.

    ``separation``: the smallest l-inf distance between points of different classes that
    the construction guarantees (0 for overlapping data).
    """

    x: torch.Tensor
    y: torch.Tensor
    num_classes: int
    kind: str
    separation: float

    def __repr__(self) -> str:
        return (
            f"LabelledData({self.kind}, {self.x.shape[0]} points in {self.x.shape[1]} dims, "
            f"{self.num_classes} classes, separation {self.separation:.3g})"
        )

    def _repr_pretty_(self, printer, cycle) -> None:
        """Hypothesis and IPython print the one-line summary, not every tensor."""
        printer.text(repr(self))


@dataclass(frozen=True)
class DependentPair:
    """``Y = r X + sqrt(1 - r^2) Z`` in ``dim`` dimensions; ``mutual_information`` in nats."""

    x: torch.Tensor
    y: torch.Tensor
    correlation: float
    mutual_information: float

    def __repr__(self) -> str:
        return (
            f"DependentPair(n={self.x.shape[0]}, dim={self.x.shape[1]}, r={self.correlation:.3g}, "
            f"MI={self.mutual_information:.4g} nats)"
        )

    def _repr_pretty_(self, printer, cycle) -> None:
        """Hypothesis and IPython print the one-line summary, not every tensor."""
        printer.text(repr(self))


def _require_strategy(function: str, name: str, value: object, example: str) -> None:
    if not isinstance(value, st.SearchStrategy):
        raise InvalidArgument(
            f"{function}({name}={value!r}): pass a hypothesis strategy, e.g. "
            f"{name}=st.just({value!r}) for a fixed value or {name}={example}"
        )


def _rescale_to_operator_norm(layer: nn.Module, input_shape: tuple[int, ...], norm: float) -> None:
    """Scale ``layer``'s weight so that its l2 operator norm (bias excluded) is ``norm``.

    Linear: the largest singular value of ``W``. Conv: the largest singular value of the
    unrolled linear map on ``input_shape``, built from the basis vectors (inputs are tiny).
    """
    with torch.no_grad():
        if isinstance(layer, nn.Linear):
            current = torch.linalg.matrix_norm(layer.weight, ord=2)
        else:
            basis = torch.eye(math.prod(input_shape), dtype=layer.weight.dtype).view(-1, *input_shape)
            unrolled = nn.functional.conv2d(
                basis, layer.weight, None, layer.stride, layer.padding, layer.dilation, layer.groups
            ).flatten(start_dim=1)
            current = torch.linalg.matrix_norm(unrolled, ord=2)
        layer.weight.mul_(norm / current)


def _build_network(
    kind: str, input_shape: tuple[int, ...], num_classes: int, depth: int, width: int,
    scale: float, seed: int,
) -> nn.Sequential:
    with seeded_torch_rng(seed):  # initial weights from ``seed``, the caller's RNG untouched
        return _network_of(kind, input_shape, num_classes, depth, width, scale)


def _network_of(
    kind: str, input_shape: tuple[int, ...], num_classes: int, depth: int, width: int, scale: float,
) -> nn.Sequential:
    channels = input_shape[0]
    stages: list[nn.Module] = [Normalize((0.5,) * channels, (1.0,) * channels)]
    shapes: list[tuple[int, ...]] = []
    if kind == "mlp":
        features = math.prod(input_shape)
        for index in range(depth):
            linear = nn.Linear(features if index == 0 else width, width)
            shapes.append((features if index == 0 else width,))
            prefix = [nn.Flatten()] if index == 0 else []
            stages.append(nn.Sequential(*prefix, linear, nn.ReLU()))
        shapes.append((width if depth else features,))
        head = [nn.Flatten()] if depth == 0 else []
        stages.append(nn.Sequential(*head, nn.Linear(width if depth else features, num_classes)))
    else:
        shape = input_shape
        for index in range(depth):
            conv = nn.Conv2d(shape[0], width, 3, padding=1)
            shapes.append(shape)
            stages.append(nn.Sequential(conv, nn.ReLU()))
            shape = (width, *shape[1:])
        shapes.append((math.prod(shape),))
        stages.append(nn.Sequential(nn.Flatten(), nn.Linear(math.prod(shape), num_classes)))
    model = nn.Sequential(*stages).double()
    for layer, shape in zip(weight_layers(model), shapes):
        _rescale_to_operator_norm(layer, shape, scale)
    return model.eval()


@st.composite
def _networks(draw, kind, depth, width, input_shape, num_classes, lipschitz_scale, seed):
    chosen_kind = draw(kind)
    if chosen_kind not in NETWORK_KINDS:
        raise InvalidArgument(f"networks(kind=...) drew {chosen_kind!r}; accepted: {', '.join(NETWORK_KINDS)}")
    shape = draw(input_shape) if input_shape is not None else draw(_default_input_shape(chosen_kind))
    if chosen_kind == "cnn" and len(shape) != 3:
        raise InvalidArgument(f"networks(kind='cnn') needs input_shape (C, H, W), drew {shape}")
    chosen = {
        "depth": draw(depth), "width": draw(width), "num_classes": draw(num_classes),
        "scale": draw(lipschitz_scale), "seed": draw(seed),
    }
    if chosen["num_classes"] < 2 or chosen["width"] < 1 or chosen["depth"] < 0 or chosen["scale"] <= 0:
        raise InvalidArgument(
            f"networks drew {chosen}: need num_classes >= 2, width >= 1, depth >= 0, lipschitz_scale > 0"
        )
    model = _build_network(
        chosen_kind, tuple(shape), chosen["num_classes"], chosen["depth"], chosen["width"],
        chosen["scale"], chosen["seed"],
    )
    return RandomNetwork(
        model, chosen_kind, tuple(shape), chosen["num_classes"], chosen["depth"], chosen["width"],
        chosen["scale"],
    )


def _default_input_shape(kind: str) -> st.SearchStrategy[tuple[int, ...]]:
    if kind == "mlp":
        return st.tuples(st.integers(2, 8))
    return st.tuples(st.integers(1, 2), st.integers(3, 5), st.integers(3, 5))


def networks(
    *,
    kind: st.SearchStrategy[str] = st.sampled_from(NETWORK_KINDS),
    depth: st.SearchStrategy[int] = st.integers(1, 3),
    width: st.SearchStrategy[int] = st.integers(2, 8),
    input_shape: st.SearchStrategy[tuple[int, ...]] | None = None,
    num_classes: st.SearchStrategy[int] = st.integers(2, 4),
    lipschitz_scale: st.SearchStrategy[float] = st.floats(0.5, 2.0),
    seed: st.SearchStrategy[int] = st.integers(0, 2**16),
) -> st.SearchStrategy[RandomNetwork]:
    """Random ReLU networks (:class:`RandomNetwork`), float64, eval mode.

    ``kind``: ``"mlp"`` (``depth`` hidden linear layers of ``width`` units) or ``"cnn"``
    (``depth`` 3x3 convolutions of ``width`` channels, then a linear head); either way
    ``depth + 1`` weight layers. ``input_shape`` defaults to ``(d,)``, ``d`` in 2..8, for
    MLPs and ``(C, H, W)``, ``C`` in 1..2, ``H, W`` in 3..5, for CNNs. Each weight layer's
    l2 operator norm is exactly the drawn ``lipschitz_scale``.
    """
    for name, value, example in (
        ("kind", kind, "st.sampled_from(['mlp', 'cnn'])"), ("depth", depth, "st.integers(1, 3)"),
        ("width", width, "st.integers(2, 8)"), ("num_classes", num_classes, "st.integers(2, 4)"),
        ("lipschitz_scale", lipschitz_scale, "st.floats(0.5, 2.0)"), ("seed", seed, "st.integers(0, 9)"),
    ):
        _require_strategy("networks", name, value, example)
    if input_shape is not None:
        _require_strategy("networks", "input_shape", input_shape, "st.just((1, 4, 4))")
    return _networks(kind, depth, width, input_shape, num_classes, lipschitz_scale, seed)


@st.composite
def _labelled_inputs(draw, network: RandomNetwork, batch_size, seed):
    n = draw(batch_size)
    if n < 1:
        raise InvalidArgument(f"labelled_inputs drew batch_size={n}; need >= 1")
    generator = torch.Generator().manual_seed(draw(seed))
    x = torch.rand((n, *network.input_shape), generator=generator, dtype=torch.float64)
    y = torch.randint(0, network.num_classes, (n,), generator=generator)
    return x, y


def labelled_inputs(
    network: RandomNetwork,
    *,
    batch_size: st.SearchStrategy[int] = st.integers(1, 6),
    seed: st.SearchStrategy[int] = st.integers(0, 2**16),
) -> st.SearchStrategy[tuple[torch.Tensor, torch.Tensor]]:
    """``(x, y)``: a batch of inputs uniform in ``[0,1]`` of ``network``'s input shape
    (float64) and labels uniform in ``0..num_classes-1``. Draw it inside a test with
    ``data.draw(labelled_inputs(network))``."""
    if not isinstance(network, RandomNetwork):
        raise InvalidArgument(
            f"labelled_inputs(network={network!r}): pass a RandomNetwork drawn from networks()"
        )
    _require_strategy("labelled_inputs", "batch_size", batch_size, "st.integers(1, 6)")
    _require_strategy("labelled_inputs", "seed", seed, "st.integers(0, 9)")
    return _labelled_inputs(network, batch_size, seed)


@st.composite
def _datasets(draw, kind, n_per_class, dim, num_classes, seed):
    chosen_kind, n, d, k = draw(kind), draw(n_per_class), draw(dim), draw(num_classes)
    if chosen_kind not in DATASET_KINDS:
        raise InvalidArgument(f"datasets(kind=...) drew {chosen_kind!r}; accepted: {', '.join(DATASET_KINDS)}")
    if n < 1 or d < 1 or k < 2:
        raise InvalidArgument(f"datasets drew n_per_class={n}, dim={d}, num_classes={k}; need >= 1, >= 1, >= 2")
    generator = torch.Generator().manual_seed(draw(seed))
    labels = torch.arange(k).repeat_interleave(n)
    if chosen_kind == "separable":
        # class c lives in the slab where coordinate 0 is in [c/k + gap/2, (c+1)/k - gap/2]
        gap = 0.2 / k
        x = torch.rand((n * k, d), generator=generator, dtype=torch.float64)
        low = labels.double() / k + gap / 2
        x[:, 0] = low + x[:, 0] * (1.0 / k - gap)
        separation = gap
    else:
        centres = 0.5 + 0.05 * torch.randn((k, d), generator=generator, dtype=torch.float64)
        noise = 0.2 * torch.randn((n * k, d), generator=generator, dtype=torch.float64)
        x = (centres[labels] + noise).clamp(0.0, 1.0)
        separation = 0.0
    return LabelledData(x, labels, k, chosen_kind, separation)


def datasets(
    *,
    kind: st.SearchStrategy[str] = st.sampled_from(DATASET_KINDS),
    n_per_class: st.SearchStrategy[int] = st.integers(4, 16),
    dim: st.SearchStrategy[int] = st.integers(1, 6),
    num_classes: st.SearchStrategy[int] = st.integers(2, 4),
    seed: st.SearchStrategy[int] = st.integers(0, 2**16),
) -> st.SearchStrategy[LabelledData]:
    """Labelled points in ``[0,1]^dim`` (:class:`LabelledData`), ``n_per_class`` per class.

    ``"separable"``: class ``c`` occupies the slab ``c/K + g/2 <= x_0 <= (c+1)/K - g/2``
    (``g = 0.2/K``), so points of different classes are at least ``g`` apart in every
    l_p norm and the classes are linearly separable along ``x_0``. ``"overlapping"``:
    Gaussian classes (std 0.2) whose centres lie within about 0.05 of the cube's centre,
    clipped to the cube.
    """
    for name, value, example in (
        ("kind", kind, "st.sampled_from(['separable', 'overlapping'])"),
        ("n_per_class", n_per_class, "st.integers(4, 16)"), ("dim", dim, "st.integers(1, 6)"),
        ("num_classes", num_classes, "st.integers(2, 4)"), ("seed", seed, "st.integers(0, 9)"),
    ):
        _require_strategy("datasets", name, value, example)
    return _datasets(kind, n_per_class, dim, num_classes, seed)


@st.composite
def _threat_models(draw, norm, eps):
    return ThreatModel(draw(norm), draw(eps))


def threat_models(
    *,
    norm: st.SearchStrategy[str] = st.sampled_from(NORM_NAMES),
    eps: st.SearchStrategy[float] = st.floats(0.0, 0.3),
) -> st.SearchStrategy[ThreatModel]:
    """``ThreatModel(norm, eps)``: ``||delta||_norm <= eps`` with inputs kept in ``[0,1]``."""
    _require_strategy("threat_models", "norm", norm, "st.sampled_from(['linf', 'l2'])")
    _require_strategy("threat_models", "eps", eps, "st.floats(0.0, 0.3)")
    return _threat_models(norm, eps)


@st.composite
def _dependent_pairs(draw, n, dim, correlation, seed):
    size, d, r = draw(n), draw(dim), draw(correlation)
    if not -1 < r < 1 or size < 2 or d < 1:
        raise InvalidArgument(f"dependent_pairs drew n={size}, dim={d}, correlation={r}; need n >= 2, dim >= 1, -1 < r < 1")
    x, y = gaussian_pair(size, d, r, torch.Generator().manual_seed(draw(seed)))
    return DependentPair(x, y, r, gaussian_pair_mi(d, r))


def dependent_pairs(
    *,
    n: st.SearchStrategy[int] = st.just(1000),
    dim: st.SearchStrategy[int] = st.integers(1, 2),
    correlation: st.SearchStrategy[float] = st.floats(0.0, 0.9),
    seed: st.SearchStrategy[int] = st.integers(0, 2**16),
) -> st.SearchStrategy[DependentPair]:
    """Correlated Gaussian pairs with known MI ``-dim/2 log(1 - r^2)`` nats (THEORY.md C2)."""
    for name, value, example in (
        ("n", n, "st.just(1000)"), ("dim", dim, "st.integers(1, 2)"),
        ("correlation", correlation, "st.floats(0.0, 0.9)"), ("seed", seed, "st.integers(0, 9)"),
    ):
        _require_strategy("dependent_pairs", name, value, example)
    return _dependent_pairs(n, dim, correlation, seed)
