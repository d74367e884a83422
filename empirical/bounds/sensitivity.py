"""Certified feature sensitivity ``Delta_a(x) = sup_{delta in S} ||f_a(x + delta) - f_a(x)||_2``
(THEORY.md section 5).

With ``[l, u]`` a sound box of ``f_a`` over the threat set and ``c = f_a(x)`` (a point of the
box), ``|f_a(x+delta)_j - c_j| <= max(u_j - c_j, c_j - l_j)``, so
``Delta_a <= ||max(u - c, c - l)||_2`` (never above the box diagonal ``||u - l||_2``).
The attacked estimate and the transfer bound that uses both live in
:mod:`semirobust.empirical.measure.transfer`.
"""

from __future__ import annotations

import torch
from torch import nn

from semirobust.empirical.attacks.threat import ThreatModel
from semirobust.empirical.bounds.box import Box, input_box
from semirobust.empirical.bounds.graph_nodes import require_rules
from semirobust.empirical.bounds.interval import has_interval_rule, propagate_interval
from semirobust.empirical.bounds.layer_rules import float64_eval_copy, primitive_layers
from semirobust.empirical.bounds.linear import Reach, bound_layers, neuron_bounds
from semirobust.errors import BadInput

SENSITIVITY_METHODS = ("ibp", "crown")


def feature_box(model: nn.Module, x: torch.Tensor, threat: ThreatModel, method: str = "ibp") -> Box:
    """A sound box of ``model(x + delta)`` over the threat set (float64): by interval
    propagation, or (``crown``) with every layer feeding a nonlinearity and the output
    tightened by the linear relaxation."""
    if method not in SENSITIVITY_METHODS:
        raise BadInput(f"method={method!r}: expected one of {', '.join(SENSITIVITY_METHODS)}")
    require_rules(model, has_interval_rule, "the certified feature sensitivity")
    model64 = float64_eval_copy(model)
    box = input_box(x.detach().cpu().double(), threat)
    with torch.no_grad():
        if method == "ibp":
            return propagate_interval(model64, box)
        layers = primitive_layers(model64)
        bounded = bound_layers(layers, box, "crown")
        reach = Reach.of_box(box).through(layers, bounded.bounds)
        return bounded.output.intersect(neuron_bounds(reach, bounded.output))


def certified_feature_sensitivity(
    f_a: nn.Module, x: torch.Tensor, threat: ThreatModel, method: str = "ibp"
) -> torch.Tensor:
    """Per sample, a certified upper bound of ``Delta_a(x)``: ``||max(u - c, c - l)||_2``."""
    box = feature_box(f_a, x, threat, method)
    with torch.no_grad():
        centre = float64_eval_copy(f_a)(x.detach().cpu().double())
    reach = torch.maximum(box.upper - centre, centre - box.lower).clamp_min(0)
    return reach.flatten(start_dim=1).norm(dim=1)
