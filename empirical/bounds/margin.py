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
* ``crown``: linear relaxation with every ReLU's bounds from the relaxation itself.

The ``crown*`` methods return the element-wise maximum with ``ibp`` (both are sound).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from semirobust.empirical.attacks.threat import ThreatModel
from semirobust.empirical.bounds.box import Box, input_box
from semirobust.empirical.bounds.interval import propagate_interval
from semirobust.empirical.bounds.layer_rules import float64_eval_copy, is_affine, primitive_layers
from semirobust.empirical.bounds.linear import (
    backward,
    bound_layers,
    concretize,
    has_backward_rule,
)
from semirobust.errors import BadInput

SpecBound = Callable[[Sequence[nn.Module], Box, torch.Tensor], torch.Tensor]


def margin_specification(y: torch.Tensor, num_classes: int) -> torch.Tensor:
    """``C`` of shape ``(batch, K, K)``: row ``k`` is ``e_y - e_k`` (row ``y`` is zero)."""
    true = F.one_hot(y, num_classes).double()
    return true.unsqueeze(1) - torch.eye(num_classes, dtype=torch.float64).unsqueeze(0)


def _affine_tail_start(layers: Sequence[nn.Module]) -> int:
    """Index of the first layer of the longest suffix of affine layers with backward rules."""
    start = len(layers)
    while start > 0 and is_affine(layers[start - 1]) and has_backward_rule(layers[start - 1]):
        start -= 1
    return start


def _ibp_spec(layers: Sequence[nn.Module], box: Box, spec: torch.Tensor) -> torch.Tensor:
    start = _affine_tail_start(layers)
    for layer in layers[:start]:
        box = propagate_interval(layer, box)
    tail_boxes = [box]
    for layer in layers[start:-1]:
        tail_boxes.append(propagate_interval(layer, tail_boxes[-1]))
    coefficients, constant = backward(layers[start:], tail_boxes, spec)
    return concretize(coefficients, constant, box)


def _crown_spec(intermediate: str) -> SpecBound:
    def bound(layers: Sequence[nn.Module], box: Box, spec: torch.Tensor) -> torch.Tensor:
        bounded = bound_layers(layers, box, intermediate)
        coefficients, constant = backward(layers, bounded.bounds, spec)
        return torch.maximum(concretize(coefficients, constant, box), _ibp_spec(layers, box, spec))

    return bound


MARGIN_METHODS: dict[str, SpecBound] = {
    "ibp": _ibp_spec,
    "crown-ibp": _crown_spec("ibp"),
    "crown": _crown_spec("crown"),
}


def certified_margin_lower(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, threat: ThreatModel, method: str = "ibp"
) -> torch.Tensor:
    """Per sample, a certified lower bound of ``inf_{delta in S} m(model(x + delta), y)``
    (float64, on the CPU). ``method`` is one of ``MARGIN_METHODS``."""
    if method not in MARGIN_METHODS:
        raise BadInput(f"method={method!r}: expected one of {', '.join(MARGIN_METHODS)}")
    if x.shape[0] != y.shape[0]:
        raise BadInput(f"inputs ({x.shape[0]}) and labels ({y.shape[0]}) differ in number")
    model64 = float64_eval_copy(model)
    layers = primitive_layers(model64)
    box = input_box(x.detach().cpu().double(), threat)
    y = y.detach().cpu().long()
    with torch.no_grad():
        num_classes = model64(box.lower[:1]).shape[1]
        spec = margin_specification(y, num_classes)
        bounds = MARGIN_METHODS[method](layers, box, spec)
    return bounds.masked_fill(F.one_hot(y, num_classes).bool(), float("inf")).min(dim=1).values
