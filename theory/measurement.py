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
    * ``exact``: the exact value on the measured test set (a closed form, an enumeration,
      an exact solver, or a plain average of per-sample values such as the clean margin):
      sound on both sides, for the test set (THEORY.md 7).
    * ``estimate``: a statistical estimate (sampling, mutual-information estimators, a
      population mean from a test set); its interval is a confidence interval, not a
      guarantee, at the level stated in ``settings['confidence']`` (a fraction such as
      0.95) when there is one.
    """

    CERTIFIED = "certified"
    ATTACK = "attack"
    EXACT = "exact"
    ESTIMATE = "estimate"

    @property
    def sound(self) -> bool:
        """Whether a measurement of this kind guarantees at least one side of its value."""
        return self is not Kind.ESTIMATE


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

    def content(self) -> tuple[Any, ...]:
        """Everything but the name: two measurements with equal content are one measurement
        entered under two names (the judge reads them as one quantity)."""
        return (self.value, self.interval, self.kind, self.estimator, self.unit,
                tuple(sorted((str(k), repr(v)) for k, v in self.settings.items())))

    @property
    def confidence(self) -> float | None:
        """The confidence level of an estimate's interval (``settings['confidence']``, or
        ``settings['level']`` as the dependency estimators write it); None if unstated."""
        level = self.settings.get("confidence", self.settings.get("level"))
        if isinstance(level, bool) or not isinstance(level, (int, float)):
            return None
        return float(level) if 0 < level < 1 else None

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
