"""Certified bounds on networks under a threat model (docs/bounds.md).

* :func:`interval_bounds`: interval bound propagation (IBP) of a network's output;
* :func:`certified_margin_lower`: certified lower bound of ``inf_delta m(F(x+delta), y)``
  by IBP, a CROWN-style linear relaxation, or alpha-CROWN (optimised ReLU slopes);
* :func:`certified_feature_sensitivity`, :func:`feature_box`: a certified ``Delta_a``
  (THEORY.md section 5);
* :func:`lipschitz_upper`, :func:`split_lipschitz`: the certified l2 Lipschitz product bound;
* registries for new layer types: :func:`register_interval_rule`,
  :func:`register_backward_rule`, :func:`register_residual_block`.
"""

from semirobust.empirical.bounds import (  # noqa: F401  (register the rules of fx.GraphModule)
    graph_interval,
    graph_linear,
    graph_lipschitz,
    zoo_blocks,
)
from semirobust.empirical.bounds.alpha_crown import AlphaSettings, alpha_crown_bound
from semirobust.empirical.bounds.box import Box, input_box
from semirobust.empirical.bounds.interval import (
    interval_bounds,
    propagate_interval,
    register_interval_rule,
)
from semirobust.empirical.bounds.linear import register_backward_rule
from semirobust.empirical.bounds.lipschitz import lipschitz_upper, split_lipschitz
from semirobust.empirical.bounds.margin import MARGIN_METHODS, certified_margin_lower
from semirobust.empirical.bounds.residual import ResidualParts, register_residual_block
from semirobust.empirical.bounds.sensitivity import certified_feature_sensitivity, feature_box

__all__ = [
    "MARGIN_METHODS",
    "AlphaSettings",
    "Box",
    "ResidualParts",
    "alpha_crown_bound",
    "certified_feature_sensitivity",
    "certified_margin_lower",
    "feature_box",
    "input_box",
    "interval_bounds",
    "lipschitz_upper",
    "propagate_interval",
    "register_backward_rule",
    "register_interval_rule",
    "register_residual_block",
    "split_lipschitz",
]
