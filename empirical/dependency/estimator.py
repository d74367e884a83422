"""The estimator contract and the registry ``ESTIMATORS`` (name -> estimator class).

Every estimator sees one class's samples at a time, already validated and standardised
per feature with constant features removed (:mod:`.preprocess`), unless it sets
``standardised_input = False`` (an estimator that reproduces code run on raw activations):
then it sees the class's activations as given, in float64, constant features kept. A
class in which either layer is constant contributes 0 either way. It works in two steps so
that a layer's expensive part is computed once and reused by both pairs it belongs to and
by every resample of the confidence interval:

* :meth:`DependenceEstimator.prepare` turns one variable ``(n, d)`` into a state (a
  distance matrix for kNN, hash codes for EDGE, a Gram matrix for HSIC/CKA, the data
  itself for the Gaussian estimator);
* :meth:`DependenceEstimator.estimate` combines the states of ``x`` and ``y`` restricted
  to row indices ``rows_x``, ``rows_y`` (equal for a resample; a permutation for the
  independence baseline; ``None`` for all rows in order) into one number: nats for information estimators, the
  measure's own scale for dependence measures.

Settings are a frozen dataclass per estimator, built from keyword arguments once at the
call (:func:`make_estimator`), validated there, and recorded with every result.
"""

from __future__ import annotations

import dataclasses
from abc import ABC, abstractmethod
from typing import Any, ClassVar

import torch

from semirobust.errors import BadInput


class DependenceEstimator(ABC):
    """Base class: subclasses set the class attributes and implement the two steps."""

    name: ClassVar[str]
    #: ``True``: estimates mutual information in nats; ``False``: a dependence measure.
    information: ClassVar[bool]
    #: ``True``: the same inputs give the same number (no internal randomness).
    deterministic: ClassVar[bool]
    #: the typed settings dataclass (frozen, with defaults).
    Settings: ClassVar[type]
    #: ``False``: :meth:`prepare` receives raw activations (float64, constant features kept).
    standardised_input: ClassVar[bool] = True

    def __init__(self, settings: Any) -> None:
        self.settings = settings

    @abstractmethod
    def prepare(self, x: torch.Tensor, generator: torch.Generator) -> Any:
        """Per-variable state for one class's samples ``x`` (n, d), d >= 1 (standardised
        unless :attr:`standardised_input` is False)."""

    @abstractmethod
    def estimate(self, state_x: Any, state_y: Any, rows_x: torch.Tensor | None, rows_y: torch.Tensor | None) -> float:
        """The dependence of ``x[rows_x]`` and ``y[rows_y]`` (paired row by row; None: all rows)."""

    def min_samples(self, d_x: int, d_y: int) -> int:
        """Fewest samples per class the estimator is defined for."""
        return 4

    def dimension_warning(self, d_x: int, d_y: int, n: int) -> str | None:
        """A sentence when ``d_x``, ``d_y`` are high for ``n`` samples per class, else None."""
        return None

    def settings_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self.settings)


ESTIMATORS: dict[str, type[DependenceEstimator]] = {}


def register_estimator(cls: type[DependenceEstimator]) -> type[DependenceEstimator]:
    """Class decorator: make ``cls`` available under ``cls.name``."""
    ESTIMATORS[cls.name] = cls
    return cls


def make_estimator(name: str, **settings: Any) -> DependenceEstimator:
    """Instantiate estimator ``name`` with its typed settings; :class:`BadInput` on
    an unknown name, an unknown setting, or a setting out of range."""
    if name not in ESTIMATORS:
        raise BadInput(f"estimator {name!r}: expected one of {', '.join(sorted(ESTIMATORS))}")
    cls = ESTIMATORS[name]
    accepted = [f.name for f in dataclasses.fields(cls.Settings)]
    unknown = sorted(set(settings) - set(accepted))
    if unknown:
        raise BadInput(
            f"estimator {name!r} has no setting {', '.join(unknown)}; accepted: "
            f"{', '.join(accepted) or 'none'}"
        )
    return cls(cls.Settings(**settings))


def select_rows(state: torch.Tensor, rows: torch.Tensor | None) -> torch.Tensor:
    """``state[rows]`` (all of ``state`` when ``rows`` is None)."""
    return state if rows is None else state[rows]


def select_square(matrix: torch.Tensor, rows: torch.Tensor | None) -> torch.Tensor:
    """``matrix[rows][:, rows]`` of a pairwise (n, n) matrix (all of it when ``rows`` is None),
    gathered in one pass through the flat index ``rows_i * n + rows_j``."""
    if rows is None:
        return matrix
    return matrix.take(rows.unsqueeze(1) * matrix.shape[1] + rows.unsqueeze(0))


def require(condition: bool, message: str) -> None:
    """Settings validation: raise :class:`BadInput` with ``message`` unless ``condition``."""
    if not condition:
        raise BadInput(message)
