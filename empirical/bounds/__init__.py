"""Certified bounds on networks under a threat model (docs/bounds.md).

* :func:`interval_bounds`: interval bound propagation (IBP) of a network's output;
* :func:`certified_margin_lower`: certified lower bound of ``inf_delta m(F(x+delta), y)``
  by IBP or a CROWN-style linear relaxation;
* :func:`gamma_sandwich`: certified lower and attacked upper ``E[inf m]``, per sample and
  as measurements;
* :func:`feature_sensitivity`, :func:`lipschitz_transfer_bound`,
  :func:`lipschitz_margin_lower`: THEORY.md section 5;
* registries for new layer types: :func:`register_interval_rule`,
  :func:`register_backward_rule`, :func:`register_residual_block`.
"""

from semirobust.empirical.bounds import zoo_blocks  # noqa: F401  (registers the zoo's residual blocks)
from semirobust.empirical.bounds.box import Box, input_box
from semirobust.empirical.bounds.interval import (
    interval_bounds,
    propagate_interval,
    register_interval_rule,
)
from semirobust.empirical.bounds.linear import register_backward_rule
from semirobust.empirical.bounds.margin import MARGIN_METHODS, certified_margin_lower
from semirobust.empirical.bounds.residual import ResidualParts, register_residual_block
from semirobust.empirical.bounds.sandwich import (
    GammaSandwich,
    default_margin_attack,
    gamma_sandwich,
)
from semirobust.empirical.bounds.sensitivity import (
    FeatureSensitivity,
    TransferBound,
    attacked_feature_sensitivity,
    certified_feature_sensitivity,
    feature_box,
    feature_sensitivity,
    lipschitz_margin_lower,
    lipschitz_transfer_bound,
)

__all__ = [
    "MARGIN_METHODS",
    "Box",
    "FeatureSensitivity",
    "GammaSandwich",
    "ResidualParts",
    "TransferBound",
    "attacked_feature_sensitivity",
    "certified_feature_sensitivity",
    "certified_margin_lower",
    "default_margin_attack",
    "feature_box",
    "feature_sensitivity",
    "gamma_sandwich",
    "input_box",
    "interval_bounds",
    "lipschitz_margin_lower",
    "lipschitz_transfer_bound",
    "propagate_interval",
    "register_backward_rule",
    "register_interval_rule",
    "register_residual_block",
]
