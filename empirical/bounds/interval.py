"""Interval bound propagation (IBP): one small rule per layer type, in a registry.

An interval rule maps the box of a layer's input to a box of its output that contains
``layer(h)`` for every ``h`` in the input box (Gowal et al. 2018):

* affine ``W h + b``: centre ``W c + b``, radius ``|W| r`` (``c``, ``r`` the box's
  centre and radius); this covers Linear, Conv2d, eval BatchNorm and ``Normalize``;
* monotone non-decreasing maps (ReLU, max/average pooling, flatten, identity, eval
  dropout, a positive ``Scale``): ``[f(lower), f(upper)]``;
* ``nn.Sequential``: the rules of its children in order;
* residual blocks: ``activation(box(branch) + box(shortcut))`` (see
  :mod:`semirobust.empirical.bounds.residual`).

New layer types (a residual block class, say) declare their rule with
:func:`register_interval_rule`; a missing rule is a :class:`BadInput` naming the type.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from semirobust.empirical.attacks.threat import ThreatModel
from semirobust.empirical.bounds.box import Box, input_box
from semirobust.empirical.bounds.graph_nodes import require_rules
from semirobust.empirical.bounds.layer_rules import (
    POOL_TYPES,
    SHAPE_TYPES,
    LayerRules,
    batch_norm_scale,
    float64_eval_copy,
)
from semirobust.empirical.model import Normalize, Scale

IntervalRule = Callable[[nn.Module, Box], Box]
_INTERVAL_RULES: LayerRules[IntervalRule] = LayerRules(
    "interval bound propagation",
    "Declare one with semirobust.empirical.bounds.register_interval_rule(YourType) "
    "or, for a residual block, register_residual_block.",
)
#: Decorator: ``rule(module, input_box) -> output_box`` for a type and its subclasses.
register_interval_rule = _INTERVAL_RULES.register
#: The rule registered for ``type(module)`` or its nearest registered base class.
interval_rule_for = _INTERVAL_RULES.rule_for
has_interval_rule = _INTERVAL_RULES.has


def propagate_interval(module: nn.Module, box: Box) -> Box:
    """The output box of ``module`` for inputs in ``box`` (module in eval mode)."""
    return interval_rule_for(module)(module, box)


def interval_bounds(
    model: nn.Module, x: torch.Tensor, threat: ThreatModel
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(lower, upper)``: a sound element-wise enclosure of ``model(x + delta)`` over the
    threat set (intersected with ``[0,1]``), computed by IBP in float64."""
    require_rules(model, has_interval_rule, _INTERVAL_RULES.what)
    model64 = float64_eval_copy(model)
    with torch.no_grad():
        box = propagate_interval(model64, input_box(x.detach().cpu().double(), threat))
    return box.lower, box.upper


@register_interval_rule(nn.Sequential)
def _sequential(module: nn.Sequential, box: Box) -> Box:
    for child in module:
        box = propagate_interval(child, box)
    return box


@register_interval_rule(nn.Linear)
def _linear(module: nn.Linear, box: Box) -> Box:
    radius = F.linear(box.radius, module.weight.abs())
    centre = module(box.centre)
    return Box(centre - radius, centre + radius)


@register_interval_rule(nn.Conv2d)
def _conv2d(module: nn.Conv2d, box: Box) -> Box:
    radius = module._conv_forward(box.radius, module.weight.abs(), None)
    centre = module(box.centre)
    return Box(centre - radius, centre + radius)


def _channel_view(values: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    return values.view(1, -1, *([1] * (like.dim() - 2)))


@register_interval_rule(nn.BatchNorm1d)
@register_interval_rule(nn.BatchNorm2d)
def _batch_norm(module: nn.Module, box: Box) -> Box:
    scale, _ = batch_norm_scale(module)
    radius = box.radius * _channel_view(scale.abs(), box.radius)
    centre = module(box.centre)
    return Box(centre - radius, centre + radius)


@register_interval_rule(Normalize)
def _normalize(module: Normalize, box: Box) -> Box:
    lower, upper = module(box.lower), module(box.upper)
    return Box(torch.minimum(lower, upper), torch.maximum(lower, upper))


def _monotone(module: nn.Module, box: Box) -> Box:
    return box.map_monotone(module)


for _type in (nn.ReLU, nn.MaxPool2d, Scale, *POOL_TYPES, *SHAPE_TYPES):
    register_interval_rule(_type)(_monotone)
