"""semirobust.testing: property tests of robustness claims, for a lab's own CI (docs/testing.md).

* :mod:`semirobust.testing.strategies`: hypothesis strategies for random networks (MLP
  and small CNN with controlled depth, width and per-layer Lipschitz scale), separable
  and overlapping datasets, threat models, input batches and dependent pairs with known
  mutual information;
* assertions that read as sentences (:mod:`semirobust.testing.assertions`);
* the pytest plugin (:mod:`semirobust.testing.plugin`): the ``semirobust_checkpoint``
  fixture and the ``semirobust-ci`` hypothesis profile.
"""

from semirobust.testing import strategies
from semirobust.testing.assertions import (
    assert_attack_stays_in_threat_model,
    assert_certified_below_attacked,
    assert_estimate_within,
    assert_lipschitz_upper_at_least_local_lower,
    assert_robust_accuracy_at_least,
    assert_verdict_not_violated,
)

__all__ = [
    "assert_attack_stays_in_threat_model",
    "assert_certified_below_attacked",
    "assert_estimate_within",
    "assert_lipschitz_upper_at_least_local_lower",
    "assert_robust_accuracy_at_least",
    "assert_verdict_not_violated",
    "strategies",
]
