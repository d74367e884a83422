"""Dependency between consecutive layers: MI estimators and the class-conditional rho.

THEORY.md section 2 (``rho_j``) and caveat C2. ``ESTIMATORS`` maps a name to its
estimator class; :func:`class_conditional_rho` is the entry point for one layer pair,
:func:`dependency_per_layer_pair` for every consecutive pair of a list of layers.
"""

from semirobust.empirical.dependency import edge, edge_authors, gaussian, kernel, ksg, smoothed  # noqa: F401  (register estimators)
from semirobust.empirical.dependency.estimator import (
    ESTIMATORS,
    DependenceEstimator,
    make_estimator,
)
from semirobust.empirical.dependency.reduce import REDUCTIONS, Reduction
from semirobust.empirical.dependency.rho import (
    HighDimensionWarning,
    PairDependency,
    class_conditional_rho,
    dependency_per_layer_pair,
    permutation_baseline,
)

__all__ = [
    "ESTIMATORS",
    "REDUCTIONS",
    "DependenceEstimator",
    "HighDimensionWarning",
    "PairDependency",
    "Reduction",
    "class_conditional_rho",
    "dependency_per_layer_pair",
    "make_estimator",
    "permutation_baseline",
]
