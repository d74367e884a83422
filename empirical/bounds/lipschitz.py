"""The certified l2 Lipschitz upper bound: one factor per layer, multiplied (THEORY.md section 5).

For ``F = g_m o ... o g_1`` with each ``g_i`` ``L_i``-Lipschitz in l2,
``Lip(F) <= prod_i L_i`` (the product upper bound; section 5 needs it for ``f_b``).
Per-layer bounds, one rule per layer type in a registry (the operator norms themselves
are computed in :mod:`semirobust.empirical.bounds.operator_norms`):

* Linear: ``||W||_2``, exact by SVD;
* Conv2d, average pooling (linear maps): the largest singular value of the unrolled
  operator for the layer's actual input shape (stride, padding, dilation, groups all
  included), exactly when the input has at most ``exact_input_limit`` elements
  (pooling: per channel). Larger zero-padded convs get the certified circular-FFT bound;
  other padding modes power iteration on ``J^T J``, which converges from below: such a
  factor is an estimate and the product is then not certified;
* eval BatchNorm directly after a conv/linear layer is folded into it (output channel
  ``c`` scaled by ``gamma_c / sqrt(var_c + eps)``), otherwise bounded by
  ``max_c |gamma_c / sqrt(var_c + eps)|``; ``Normalize`` by ``max 1/std``;
* ReLU, flatten, identity, eval dropout: 1; a positive ``Scale(c)``: ``c``;
* MaxPool2d: ``sqrt(M)`` with ``M = prod_dims ceil(((k-1) d + 1) / s)`` the most windows
  one input can fall in (1 for non-overlapping windows, ``stride >= kernel``), because
  ``sum_w (max_w x - max_w x')^2 <= sum_w max_{i in w} (x_i - x'_i)^2 <= M ||x - x'||^2``;
* residual blocks ``act(branch(h) + shortcut(h))``: ``Lip(shortcut) + prod Lip(branch)``
  (see :func:`semirobust.empirical.bounds.register_residual_block`).

The local lower bound that brackets it from below is
:mod:`semirobust.empirical.measure.local_lipschitz`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import fx, nn

from semirobust.empirical.bounds.graph_nodes import require_rules
from semirobust.empirical.bounds.layer_rules import (
    BATCH_NORM_TYPES,
    POOL_TYPES,
    SHAPE_TYPES,
    LayerRules,
    batch_norm_scale,
    float64_eval_copy,
)
from semirobust.empirical.bounds.operator_norms import (
    CIRCULAR_METHOD,
    OperatorNormSettings,
    circular_conv_bound,
    linear_map_norm,
)
from semirobust.empirical.model import Normalize, Scale
from semirobust.empirical.model.graph import graph_view
from semirobust.empirical.model.stages import split_stage_index
from semirobust.theory.measurement import Kind, Measurement

LIPSCHITZ_UNIT = "l2->l2 Lipschitz constant"


@dataclass(frozen=True)
class LayerLipschitz:
    """One factor of the product: the l2 Lipschitz bound of one layer (or folded group)."""

    path: str
    layer: str
    bound: float
    method: str
    certified: bool

    @property
    def stage_set(self) -> frozenset[int]:
        """Indices of the top-level stages the factor's layers are in: two for a
        BatchNorm folded into the conv that ends the previous stage (``"0+1"``,
        ``"0.2+1.0"``); ``{0}`` for a non-sequential model."""
        heads = {path.split(".")[0] for path in self.path.split("+")}
        return frozenset(int(h) if h.isdigit() else 0 for h in heads)

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "layer": self.layer,
            "bound": self.bound,
            "method": self.method,
            "certified": self.certified,
        }


@dataclass(frozen=True)
class LipschitzBound:
    """Per-layer factors and their product ``prod_i L_i >= Lip(F)`` (l2 -> l2)."""

    layers: tuple[LayerLipschitz, ...]
    settings: OperatorNormSettings = field(default_factory=OperatorNormSettings)
    input_shape: tuple[int, ...] | None = None

    @property
    def product(self) -> float:
        return float(math.prod(layer.bound for layer in self.layers))

    @property
    def certified(self) -> bool:
        """True when every factor is an exact norm or a proven bound (no power iteration)."""
        return all(layer.certified for layer in self.layers)

    def spans(self, boundary: int) -> list[LayerLipschitz]:
        """The factors with layers on both sides of the stage ``boundary`` (a BatchNorm
        that opens stage ``boundary`` folded into the conv that closes the one before)."""
        return [f for f in self.layers
                if min(f.stage_set) < boundary <= max(f.stage_set)]

    def stages(self, first: int, stop: int | None = None) -> LipschitzBound:
        """The factors of top-level stages ``first..stop-1``: a bound for that sub-network.
        A factor reaching outside the range is refused (ValueError), never assigned to
        one side: its layers must be bounded separately (:func:`split_lipschitz` does)."""
        end = math.inf if stop is None else stop
        crossing = [f.path for f in self.layers
                    if any(first <= s < end for s in f.stage_set)
                    and not all(first <= s < end for s in f.stage_set)]
        if crossing:
            raise ValueError(f"factors {', '.join(crossing)} span stages inside and outside "
                             f"{first}..{'end' if stop is None else stop - 1}")
        return LipschitzBound(
            tuple(f for f in self.layers if first <= min(f.stage_set) < end), self.settings
        )

    def measurement(self, name: str, unit: str = LIPSCHITZ_UNIT, **settings: Any) -> Measurement:
        """The product as a measurement (``unit`` names the spaces, e.g. THEORY's ``L_b``)."""
        kind = Kind.CERTIFIED if self.certified else Kind.ESTIMATE
        return Measurement(
            name=name,
            value=self.product,
            interval=(self.product, self.product),
            kind=kind,
            estimator="product of per-layer l2 operator norms",
            unit=unit,
            settings={
                "interval": "bound (no sampling)"
                if self.certified
                else "power-iteration factors approach each norm from below: not certified",
                "factors": len(self.layers),
                **settings,
            },
        )


LayerItem = tuple[str, nn.Module, tuple[int, ...]]  # (path, module, input shape without batch)
LipschitzRule = Callable[[Sequence[LayerItem], OperatorNormSettings], LayerLipschitz]
_LIPSCHITZ_RULES: LayerRules[LipschitzRule] = LayerRules(
    "the Lipschitz bound",
    "Declare one with semirobust.empirical.bounds.lipschitz.register_lipschitz_rule(YourType) "
    "or, for a residual block, semirobust.empirical.bounds.register_residual_block.",
)
#: Decorator: ``rule(items, settings) -> LayerLipschitz`` for a type and its subclasses;
#: ``items`` is the layer (and a BatchNorm folded into it, if any) with its path and input
#: shape, and the rule returns the group's l2 Lipschitz bound.
register_lipschitz_rule = _LIPSCHITZ_RULES.register
lipschitz_rule_for = _LIPSCHITZ_RULES.rule_for
has_lipschitz_rule = _LIPSCHITZ_RULES.has


def lipschitz_upper(
    model: nn.Module,
    input_shape: Sequence[int],
    settings: OperatorNormSettings = OperatorNormSettings(),
    *,
    device: torch.device | str = "cpu",
) -> LipschitzBound:
    """Per-layer l2 Lipschitz bounds of ``model`` (eval mode) for inputs of shape
    ``input_shape`` (without the batch dimension), and their product; computed in float64
    on ``device``."""
    require_rules(model, has_lipschitz_rule, _LIPSCHITZ_RULES.what)
    model64 = float64_eval_copy(model, device)
    with torch.no_grad():
        shape = tuple(int(s) for s in input_shape)
        items = layer_items(model64, shape)
        return LipschitzBound(tuple(layer_bounds(items, settings)), settings, shape)


def layer_bounds(
    items: Sequence[LayerItem], settings: OperatorNormSettings
) -> list[LayerLipschitz]:
    """One factor per item, a BatchNorm directly after a conv/linear folded into it."""
    factors, index = [], 0
    while index < len(items):
        group = items[index : index + 2] if _folds(items, index) else items[index : index + 1]
        factors.append(lipschitz_rule_for(group[0][1])(group, settings))
        index += len(group)
    return factors


def split_lipschitz(
    model: nn.Module, bound: LipschitzBound, a: int, *, device: torch.device | str = "cpu",
) -> tuple[LipschitzBound, LipschitzBound]:
    """Bounds of ``f_a`` and ``f_b`` for the split with ``a`` weight layers in ``f_a``.

    Each part's bound holds only the factors of its own layers: a BatchNorm is never
    folded across the split. When ``bound`` (of the whole ``model``) has a factor that
    spans the split (a BatchNorm opening ``f_b`` folded into ``f_a``'s last conv), both
    parts are bounded afresh, ``f_a`` on the model's input shape and ``f_b`` on ``f_a``'s
    output shape (``bound.input_shape``, which :func:`lipschitz_upper` records). A traced
    graph (``fx.GraphModule``) is split at its split tensor
    (:func:`~semirobust.empirical.model.graph.graph_view`) and both parts bounded afresh."""
    if isinstance(model, fx.GraphModule):
        if bound.input_shape is None:
            raise ValueError("a graph's parts are bounded afresh: the bound needs its input shape")
        f_a, f_b = graph_view(model).split(a)
        return _bound_parts(f_a, f_b, bound, device)
    index = split_stage_index(model, a)
    if not bound.spans(index):
        return bound.stages(0, index), bound.stages(index)
    if bound.input_shape is None:
        raise ValueError(
            f"the factor(s) {', '.join(f.path for f in bound.spans(index))} span the split "
            f"a={a}; bound each part afresh (lipschitz_upper records the input shape for this)"
        )
    f_a, f_b = nn.Sequential(*list(model)[:index]), nn.Sequential(*list(model)[index:])
    first, second = _bound_parts(f_a, f_b, bound, device)
    return _renamed(first, 0), _renamed(second, index)


def _bound_parts(f_a: nn.Module, f_b: nn.Module, bound: LipschitzBound,
                 device: torch.device | str) -> tuple[LipschitzBound, LipschitzBound]:
    """``f_a`` bounded on the model's input shape, ``f_b`` on ``f_a``'s output shape."""
    with torch.no_grad():
        probe = torch.zeros((1, *bound.input_shape), dtype=torch.float64)
        middle = tuple(float64_eval_copy(f_a)(probe).shape[1:])
    return (lipschitz_upper(f_a, bound.input_shape, bound.settings, device=device),
            lipschitz_upper(f_b, middle, bound.settings, device=device))


def _renamed(bound: LipschitzBound, offset: int) -> LipschitzBound:
    """Factor paths of a part (its own stage indices from 0) as paths in the whole model."""
    def whole(path: str) -> str:
        head, dot, rest = path.partition(".")
        return f"{int(head) + offset}{dot}{rest}" if head.isdigit() else path
    layers = tuple(LayerLipschitz("+".join(whole(p) for p in f.path.split("+")), f.layer,
                                  f.bound, f.method, f.certified) for f in bound.layers)
    return LipschitzBound(layers, bound.settings, bound.input_shape)


def _folds(items: Sequence[LayerItem], index: int) -> bool:
    return (
        index + 1 < len(items)
        and isinstance(items[index][1], (nn.Conv2d, nn.Linear))
        and isinstance(items[index + 1][1], BATCH_NORM_TYPES)
    )


def layer_items(model: nn.Module, input_shape: tuple[int, ...]) -> list[LayerItem]:
    """The primitive layers of ``model`` with their paths and input shapes (one probe pass)."""
    items: list[LayerItem] = []
    probe = torch.zeros((1, *input_shape), dtype=torch.float64, device=_device_of(model))
    for path, module in _primitive_named(model, ""):
        items.append((path, module, tuple(probe.shape[1:])))
        probe = module(probe)
    return items


def _device_of(model: nn.Module) -> torch.device:
    tensor = next(iter([*model.parameters(), *model.buffers()]), None)
    return tensor.device if tensor is not None else torch.device("cpu")


def _primitive_named(module: nn.Module, prefix: str) -> list[tuple[str, nn.Module]]:
    if isinstance(module, nn.Sequential):
        return [
            leaf
            for name, child in module.named_children()
            for leaf in _primitive_named(child, f"{prefix}.{name}" if prefix else name)
        ]
    return [(prefix or "model", module)]


def _describe(items: Sequence[LayerItem]) -> tuple[str, str]:
    return "+".join(path for path, _, _ in items), "+".join(type(m).__name__ for _, m, _ in items)


def _channel_scale(items: Sequence[LayerItem]) -> torch.Tensor | None:
    """The folded BatchNorm's per-channel scale, if the group has one."""
    return batch_norm_scale(items[1][1])[0] if len(items) > 1 else None


# ---- rules -------------------------------------------------------------------------------


@register_lipschitz_rule(nn.Linear)
def _linear_rule(items: Sequence[LayerItem], settings: OperatorNormSettings) -> LayerLipschitz:
    weight = items[0][1].weight.detach()
    scale = _channel_scale(items)
    if scale is not None:
        weight = scale.view(-1, 1) * weight
    path, layer = _describe(items)
    folded = " (BatchNorm folded)" if scale is not None else ""
    return LayerLipschitz(
        path, layer, float(torch.linalg.matrix_norm(weight, ord=2)), "SVD" + folded, True
    )


@register_lipschitz_rule(nn.Conv2d)
def _conv_rule(items: Sequence[LayerItem], settings: OperatorNormSettings) -> LayerLipschitz:
    conv, input_shape = items[0][1], items[0][2]
    weight = conv.weight.detach()
    scale = _channel_scale(items)
    if scale is not None:
        weight = scale.view(-1, 1, 1, 1) * weight
    if math.prod(input_shape) > settings.exact_input_limit and conv.padding_mode == "zeros":
        norm, method, exact = circular_conv_bound(conv, weight, input_shape), CIRCULAR_METHOD, True
    else:
        norm, method, exact = linear_map_norm(
            lambda v: conv._conv_forward(v, weight, None), input_shape, settings, weight.device
        )
    path, layer = _describe(items)
    return LayerLipschitz(
        path, layer, norm, method + (" (BatchNorm folded)" if scale is not None else ""), exact
    )


def _linear_pool_rule(items: Sequence[LayerItem], settings: OperatorNormSettings) -> LayerLipschitz:
    """Average pooling acts on each channel alike: its norm is that of one channel's map."""
    pool, input_shape = items[0][1], items[0][2]
    one_channel = (1, *input_shape[1:]) if len(input_shape) == 3 else input_shape
    norm, method, exact = linear_map_norm(pool, one_channel, settings, torch.device("cpu"))
    return LayerLipschitz(*_describe(items), norm, method + " (one channel)", exact)


def _batch_norm_rule(items: Sequence[LayerItem], settings: OperatorNormSettings) -> LayerLipschitz:
    scale, _ = batch_norm_scale(items[0][1])
    return LayerLipschitz(
        *_describe(items), float(scale.abs().max()), "max |gamma / sqrt(var + eps)|", True
    )


@register_lipschitz_rule(Normalize)
def _normalize_rule(items: Sequence[LayerItem], settings: OperatorNormSettings) -> LayerLipschitz:
    std = items[0][1].std
    return LayerLipschitz(*_describe(items), float((1.0 / std.abs()).max()), "max 1/std", True)


@register_lipschitz_rule(Scale)
def _scale_rule(items: Sequence[LayerItem], settings: OperatorNormSettings) -> LayerLipschitz:
    return LayerLipschitz(*_describe(items), items[0][1].factor, "the factor", True)


def _one_lipschitz_rule(
    items: Sequence[LayerItem], settings: OperatorNormSettings
) -> LayerLipschitz:
    return LayerLipschitz(*_describe(items), 1.0, "1-Lipschitz", True)


@register_lipschitz_rule(nn.MaxPool2d)
def _max_pool_rule(items: Sequence[LayerItem], settings: OperatorNormSettings) -> LayerLipschitz:
    pool = items[0][1]
    pair = nn.modules.utils._pair
    kernel, dilation = pair(pool.kernel_size), pair(pool.dilation)
    stride = pair(pool.stride if pool.stride is not None else pool.kernel_size)
    multiplicity = math.prod(
        math.ceil(((k - 1) * d + 1) / s) for k, d, s in zip(kernel, dilation, stride, strict=True)
    )
    method = (
        "1 (non-overlapping windows)"
        if multiplicity == 1
        else f"sqrt({multiplicity}): overlapping windows"
    )
    return LayerLipschitz(*_describe(items), math.sqrt(multiplicity), method, True)


for _type in POOL_TYPES:
    register_lipschitz_rule(_type)(_linear_pool_rule)
for _type in BATCH_NORM_TYPES:
    register_lipschitz_rule(_type)(_batch_norm_rule)
for _type in (nn.ReLU, *SHAPE_TYPES):
    register_lipschitz_rule(_type)(_one_lipschitz_rule)
