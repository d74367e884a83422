"""Certified lower bounds of the worst-case margin ``inf_{delta in S} m(F(x + delta), y)``.

The margin is ``m = min_{k != y} (z_y - z_k)``, so a lower bound of each
``c_k^T z = z_y - z_k`` (the *specification* ``c_k = e_y - e_k``) gives
``inf m >= min_{k != y} lower(c_k^T z)``. The specification is pushed back through the
network's trailing affine layers before any interval is taken, i.e. through the last
linear layer ``(e_y - e_k)^T W h + (b_y - b_k)``, which is far tighter than
``lower(z_y) - upper(z_k)``.

Methods (registry ``MARGIN_METHODS``):

* ``ibp``: interval propagation up to the trailing affine layers, then the spec;
* ``crown-ibp``: linear relaxation of the whole network, ReLU bounds from IBP;
* ``crown``: linear relaxation with every ReLU's bounds from the relaxation itself;
* ``alpha-crown``: ``crown`` with the lower slopes of unstable ReLUs optimised per sample
  and spec by projected gradient steps (:mod:`semirobust.empirical.bounds.alpha_crown`).

The ``crown*`` methods return the element-wise maximum with ``ibp`` (both are sound);
``alpha-crown`` the maximum with ``crown`` and ``ibp`` (its first step is ``crown``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from semirobust.empirical.attacks.threat import ThreatModel
from semirobust.empirical.bounds.alpha_crown import DEFAULT_ALPHA, AlphaSettings, alpha_crown_bound
from semirobust.empirical.bounds.box import Box, input_box
from semirobust.empirical.bounds.graph_nodes import require_rules
from semirobust.empirical.bounds.interval import has_interval_rule, propagate_interval
from semirobust.empirical.bounds.layer_rules import float64_eval_copy, is_affine, primitive_layers
from semirobust.empirical.bounds.linear import (
    Reach,
    backward,
    bound_layers,
    compound_rule_for,
    concretize,
    has_backward_rule,
    has_compound_rule,
)
from semirobust.empirical.bounds.residual import residual_parts
from semirobust.errors import BadInput

# ``bound(layers, input_box, spec, alpha_settings) -> lower bound per sample and spec``
SpecBound = Callable[[Sequence[nn.Module], Box, torch.Tensor, AlphaSettings], torch.Tensor]


def margin_specification(
    y: torch.Tensor, num_classes: int, device: torch.device | str = "cpu"
) -> torch.Tensor:
    """``C`` of shape ``(batch, K, K)``: row ``k`` is ``e_y - e_k`` (row ``y`` is zero)."""
    true = F.one_hot(y, num_classes).double().to(device)
    eye = torch.eye(num_classes, dtype=torch.float64, device=device)
    return true.unsqueeze(1) - eye.unsqueeze(0)


def _affine_tail_start(layers: Sequence[nn.Module]) -> int:
    """Index of the first layer of the longest suffix of affine layers with backward rules."""
    start = len(layers)
    while start > 0 and is_affine(layers[start - 1]) and has_backward_rule(layers[start - 1]):
        start -= 1
    return start


def _ibp_spec(
    layers: Sequence[nn.Module], box: Box, spec: torch.Tensor, _alpha: AlphaSettings | None = None
) -> torch.Tensor:
    start = _affine_tail_start(layers)
    structured = start > 0 and has_compound_rule(layers[start - 1])
    for layer in layers[: start - 1 if structured else start]:
        box = propagate_interval(layer, box)
    inner = None
    if structured:  # a traced graph: the spec goes on through its own trailing affine nodes
        inner, box = compound_rule_for(layers[start - 1])(
            layers[start - 1], box, "ibp", Reach.of_box(box)
        )
    tail_boxes = [box]
    for layer in layers[start:-1]:
        tail_boxes.append(propagate_interval(layer, tail_boxes[-1]))
    coefficients, constant = backward(layers[start:], tail_boxes[: len(layers) - start], spec)
    if inner is None:
        return concretize(coefficients, constant, box)
    return inner.tail_lower(coefficients) + constant


def _crown_spec(intermediate: str) -> SpecBound:
    def bound(
        layers: Sequence[nn.Module], box: Box, spec: torch.Tensor, _alpha: AlphaSettings
    ) -> torch.Tensor:
        bounded = bound_layers(layers, box, intermediate)
        coefficients, constant = backward(layers, bounded.bounds, spec)
        return torch.maximum(concretize(coefficients, constant, box), _ibp_spec(layers, box, spec))

    return bound


def _alpha_crown_spec(
    layers: Sequence[nn.Module], box: Box, spec: torch.Tensor, alpha: AlphaSettings
) -> torch.Tensor:
    result = alpha_crown_bound(layers, box, spec, alpha)
    with torch.no_grad():
        return torch.maximum(result.lower, _ibp_spec(layers, box, spec))


MARGIN_METHODS: dict[str, SpecBound] = {
    "ibp": _ibp_spec,
    "crown-ibp": _crown_spec("ibp"),
    "crown": _crown_spec("crown"),
    "alpha-crown": _alpha_crown_spec,
}
#: What each method's bound reads, for the settings of a Measurement.
METHOD_DESCRIPTIONS = {
    "ibp": "interval propagation, then the spec through the trailing affine layers",
    "crown-ibp": "linear relaxation, ReLU bounds by interval propagation",
    "crown": "linear relaxation, ReLU bounds by the relaxation itself",
    "alpha-crown": "crown with optimised ReLU lower slopes",
}


def method_settings(method: str, alpha: AlphaSettings = DEFAULT_ALPHA) -> dict[str, Any]:
    """The settings a bound by ``method`` depends on (alpha-CROWN's steps and rate)."""
    settings: dict[str, Any] = {"description": METHOD_DESCRIPTIONS[method]}
    if method == "alpha-crown":
        settings["alpha"] = alpha.to_dict()
    return settings


def has_margin_rules(module: nn.Module) -> bool:
    """Interval propagation and the linear relaxation both know ``module``."""
    return has_interval_rule(module) and (
        has_backward_rule(module) or residual_parts(module) is not None
    )


def certified_margin_lower(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    threat: ThreatModel,
    method: str = "ibp",
    *,
    alpha: AlphaSettings = DEFAULT_ALPHA,
    device: torch.device | str = "cpu",
) -> torch.Tensor:
    """Per sample, a certified lower bound of ``inf_{delta in S} m(model(x + delta), y)``
    (float64, computed on ``device``, returned on the CPU). ``method`` is one of
    ``MARGIN_METHODS``; ``alpha`` sets alpha-CROWN's slope optimisation."""
    if method not in MARGIN_METHODS:
        raise BadInput(f"method={method!r}: expected one of {', '.join(MARGIN_METHODS)}")
    if x.shape[0] != y.shape[0]:
        raise BadInput(f"inputs ({x.shape[0]}) and labels ({y.shape[0]}) differ in number")
    require_rules(model, has_margin_rules, "certified margin bounds")
    model64 = float64_eval_copy(model, device)
    model64.requires_grad_(False)
    layers = primitive_layers(model64)
    box = input_box(x.detach().to(device).double(), threat)
    y = y.detach().to(device).long()
    with torch.no_grad():
        num_classes = model64(box.lower[:1]).shape[1]
        spec = margin_specification(y, num_classes, device)
        bounds = MARGIN_METHODS[method](layers, box, spec, alpha)
    bounds = bounds.masked_fill(F.one_hot(y, num_classes).bool(), float("inf"))
    return bounds.min(dim=1).values.cpu()
