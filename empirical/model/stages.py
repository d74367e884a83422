"""Networks as ordered stages, their weight layers, and the split into f_a and f_b.

THEORY.md section 1: ``F = f^(n) o ... o f^(1)`` with one weight layer (conv or linear,
with its normalisation and nonlinearity) per ``f^(j)``. Here a network is an
``nn.Sequential`` of *stages*; a stage is any module (a residual block stays one stage).
Weight layers are the ``nn.Conv2d`` and ``nn.Linear`` modules, counted in forward order,
which is registration order for a sequential network. A module marked with
:func:`mark_not_counted` (a residual shortcut's 1x1 projection, say) is not counted, so
that layer counts match the paper's (ResNet-18 has 18 weight layers).

A *graph stage* is an ``fx.GraphModule`` cut from a traced model
(:func:`~semirobust.empirical.model.graph_stages.as_stages`): its counted weight layers are
the graph nodes it declares under :data:`COUNTED_LAYERS_KEY` in its ``meta``, modules or
functional calls (``F.linear``) alike, and the counting rules of
:mod:`~semirobust.empirical.model.graph` decided which they are; its modules are not
searched.

A split at ``a`` gives ``f_a`` = the stages holding the first ``a`` weight layers and
``f_b`` = the rest; a split that would cut a stage is refused.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import fx, nn

from semirobust.errors import BadInput

WEIGHT_LAYER_TYPES: tuple[type[nn.Module], ...] = (nn.Conv2d, nn.Linear)


def require_sequential(model: nn.Module) -> nn.Sequential:
    """Return ``model`` if it is a network of ordered stages, else raise :class:`BadInput`."""
    if not isinstance(model, nn.Sequential):
        raise BadInput(
            f"semirobust needs the model as an nn.Sequential of stages (got "
            f"{type(model).__name__}); wrap your blocks in order, keeping residual blocks whole"
        )
    return model


NOT_COUNTED_ATTRIBUTE = "semirobust_not_counted"


def mark_not_counted(module: nn.Module) -> nn.Module:
    """Exclude ``module`` (e.g. a shortcut projection) from the weight-layer count."""
    setattr(module, NOT_COUNTED_ATTRIBUTE, True)
    return module


def weight_layers(module: nn.Module) -> list[nn.Module]:
    """The counted conv and linear modules of ``module`` in forward (registration) order
    (a graph stage declares its counted layers instead: :func:`declared_weight_layers`)."""
    return [
        m for m in module.modules()
        if isinstance(m, WEIGHT_LAYER_TYPES) and not getattr(m, NOT_COUNTED_ATTRIBUTE, False)
    ]


#: Key of a graph stage's ``meta``: the names of its counted weight nodes, in execution order.
COUNTED_LAYERS_KEY = "semirobust_counted_layers"


def declared_weight_layers(module: nn.Module) -> tuple[str, ...] | None:
    """The counted weight nodes a graph stage declares (module docstring); None for any
    other module."""
    if isinstance(module, fx.GraphModule):
        return module.meta.get(COUNTED_LAYERS_KEY)
    return None


def _stage_count(stage: nn.Module) -> int:
    declared = declared_weight_layers(stage)
    return len(declared) if declared is not None else len(weight_layers(stage))


def stage_weight_counts(model: nn.Module) -> list[int]:
    """Number of weight layers in each stage of the sequential ``model``."""
    return [_stage_count(stage) for stage in require_sequential(model)]


def count_weight_layers(model: nn.Module) -> int:
    """``n``: the number of weight layers of the network (of a stage, or of a sequence of
    stages: graph stages count what they declare)."""
    if isinstance(model, nn.Sequential) and any(declared_weight_layers(s) is not None for s in model):
        return sum(stage_weight_counts(model))
    return _stage_count(model)


@dataclass(frozen=True)
class Split:
    """``F = f_b o f_a`` with ``a`` weight layers in ``f_a`` and ``n - a`` in ``f_b``."""

    f_a: nn.Sequential
    f_b: nn.Sequential
    a: int
    n: int

    @property
    def fb_layers(self) -> int:
        """Weight layers in ``f_b`` (the paper's name for a split)."""
        return self.n - self.a


def split_stage_index(model: nn.Module, a: int) -> int:
    """Index of the first stage of ``f_b`` for a split with ``a`` weight layers in ``f_a``.

    Raises :class:`BadInput` if ``a`` is outside ``1..n-1`` or falls inside a stage.
    """
    counts = stage_weight_counts(model)
    n = sum(counts)
    if not isinstance(a, int) or not 1 <= a <= n - 1:
        raise BadInput(
            f"split --split {a} is outside the network: f_a must hold 1..{n - 1} of its "
            f"{n} weight layers (f_b at least one)"
        )
    seen = 0
    for index, count in enumerate(counts):
        if seen == a:
            return index
        seen += count
        if seen > a:
            raise BadInput(
                f"split --split {a} would cut stage {index} "
                f"({type(model[index]).__name__} with {count} weight layers); "
                f"valid splits: {', '.join(str(s) for s in valid_splits(model))}"
            )
    raise AssertionError("unreachable: a < n")


def valid_splits(model: nn.Module) -> list[int]:
    """Every ``a`` (weight layers in ``f_a``) that falls on a stage boundary."""
    counts = stage_weight_counts(model)
    n = sum(counts)
    boundaries, seen = [], 0
    for count in counts[:-1]:
        seen += count
        if 1 <= seen <= n - 1 and seen not in boundaries:
            boundaries.append(seen)
    return boundaries


def split_network(model: nn.Module, a: int) -> Split:
    """Split ``model`` into ``f_a`` (first ``a`` weight layers) and ``f_b`` (the rest).

    Both parts share their modules with ``model``: ``f_b(f_a(x)) == model(x)`` exactly.
    Leading stages without weights (e.g. input normalisation) belong to ``f_a``; trailing
    ones to ``f_b``.
    """
    model = require_sequential(model)
    index = split_stage_index(model, a)
    return Split(f_a=model[:index], f_b=model[index:], a=a, n=count_weight_layers(model))


def fa_layers_from(model: nn.Module, *, split: int | None, fb_layers: int | None) -> int:
    """Resolve ``--split A`` or ``--fb-layers N`` (exactly one given) into ``a``."""
    if (split is None) == (fb_layers is None):
        raise BadInput("give exactly one of --split A (layers in f_a) or --fb-layers N")
    n = count_weight_layers(model)
    if split is not None:
        return split
    if not 1 <= fb_layers <= n - 1:
        raise BadInput(
            f"--fb-layers {fb_layers} is outside the network: f_b can hold 1..{n - 1} "
            f"of its {n} weight layers"
        )
    return n - fb_layers


def merge(split: Split) -> nn.Sequential:
    """``f_b o f_a`` as one sequential network (the inverse of :func:`split_network`)."""
    return nn.Sequential(*split.f_a, *split.f_b)


def layer_activations(model: nn.Module, x: torch.Tensor) -> tuple[list[torch.Tensor], torch.Tensor]:
    """Activations ``h_j`` of every weight layer ``j = 1..n`` and the logits.

    ``h_j`` is the output of the stage that holds weight layer ``j`` when the stage holds
    exactly one (the layer with its normalisation and nonlinearity, THEORY.md section 1);
    inside a stage with several weight layers (a residual block) it is that weight
    operation's own output (a module's, or a graph stage's node's). Returned flattened per
    sample, shape ``(batch, features)``. The stages run in order, as ``model(x)`` runs them.
    """
    model = require_sequential(model)
    captured: list[torch.Tensor] = []
    handles = []
    for stage in model:
        if _stage_count(stage) == 1:
            handles.append(stage.register_forward_hook(_capture_into(captured)))
        elif declared_weight_layers(stage) is None:
            handles.extend(m.register_forward_hook(_capture_into(captured)) for m in weight_layers(stage))
    try:
        h = x
        for stage in model:
            declared = declared_weight_layers(stage)
            if declared is not None and len(declared) > 1:
                values, h = record_nodes(stage, declared, h)
                captured.extend(value.flatten(start_dim=1) for value in values)
            else:
                h = stage(h)
    finally:
        for handle in handles:
            handle.remove()
    return captured, h


def record_nodes(module: fx.GraphModule, names: Sequence[str], *inputs: torch.Tensor
                 ) -> tuple[list[torch.Tensor], torch.Tensor]:
    """The outputs of the nodes ``names`` of ``module`` (in that order) and its output, from
    one run of its graph node by node (the same operations in the same order as its
    ``forward``)."""
    recorder = _Recorder(module, set(names))
    output = recorder.run(*inputs)
    return [recorder.values[name] for name in names], output


class _Recorder(fx.Interpreter):
    """Runs the graph and keeps the outputs of the named nodes."""

    def __init__(self, module: fx.GraphModule, names: set[str]) -> None:
        super().__init__(module)
        self.names = names
        self.values: dict[str, torch.Tensor] = {}

    def run_node(self, node: fx.Node):
        value = super().run_node(node)
        if node.name in self.names:
            self.values[node.name] = value
        return value


def _capture_into(store: list[torch.Tensor]):
    def hook(_module: nn.Module, _inputs: tuple, output: torch.Tensor) -> None:
        store.append(output.flatten(start_dim=1))

    return hook
