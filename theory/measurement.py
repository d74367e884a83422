"""Measured quantities as the theory sees them (DESIGN.md, "Data flow").

A :class:`Measurement` is never a bare float: it carries a value, an interval, how it was
obtained (its :class:`Kind`), the estimator's name and settings, and its unit. The judge
(``semirobust.theory.judge``) only ever reads measurements.

Pure Python: this module must not import torch or numpy.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Mapping


class Kind(str, Enum):
    """How a number was obtained.

    * ``certified``: a sound bound (e.g. interval bound propagation). For an infimum it is
      a lower bound that holds for every perturbation in the threat model.
    * ``attack``: the value an attack reached. For an infimum over perturbations it is an
      *upper* estimate: the true infimum can only be lower.
    * ``estimate``: a statistical estimate (sampling, mutual-information estimators); its
      interval is a confidence interval, not a guarantee.
    """

    CERTIFIED = "certified"
    ATTACK = "attack"
    ESTIMATE = "estimate"


@dataclass(frozen=True)
class Measurement:
    """One measured quantity with its provenance.

    ``interval`` is ``(low, high)`` with ``low <= value <= high``; for a certified bound it
    is the bound's own range, for an estimate a confidence interval whose level is stated
    in ``settings['interval']``.
    """

    name: str
    value: float
    interval: tuple[float, float]
    kind: Kind
    estimator: str
    unit: str
    settings: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        low, high = (float(v) for v in self.interval)
        if any(math.isnan(v) for v in (self.value, low, high)):
            raise ValueError(f"measurement {self.name!r} is NaN ({self.estimator})")
        if not low <= self.value <= high:
            raise ValueError(
                f"measurement {self.name!r}: value {self.value} outside its interval "
                f"[{low}, {high}]"
            )
        object.__setattr__(self, "interval", (low, high))
        object.__setattr__(self, "value", float(self.value))
        object.__setattr__(self, "kind", Kind(self.kind))

    def describe(self) -> str:
        """One human line: value, interval, kind, estimator and unit."""
        low, high = self.interval
        level = self.settings.get("interval", "interval")
        return (
            f"{self.name} = {self.value:.4g} {self.unit} [{low:.4g}, {high:.4g}] "
            f"({self.kind.value}; {self.estimator}; {level})"
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (the schema documented in the README)."""
        return {
            "name": self.name,
            "value": self.value,
            "interval": list(self.interval),
            "kind": self.kind.value,
            "estimator": self.estimator,
            "unit": self.unit,
            "settings": dict(self.settings),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "Measurement":
        return cls(
            name=data["name"],
            value=data["value"],
            interval=tuple(data["interval"]),
            kind=Kind(data["kind"]),
            estimator=data["estimator"],
            unit=data["unit"],
            settings=dict(data.get("settings", {})),
        )
