"""What a measurement says about the true value of its quantity (THEORY.md section 2).

A measurement is read as two intervals in its quantity's unit: the *sound* enclosure
(what it guarantees) and the *face* interval (what it reports, attack values and
confidence intervals included). By kind, and by whether the quantity is an infimum or a
supremum over the threat model:

==========  ==========================  =====================================
kind        infimum (gamma, gap)        supremum (L_b, Delta_a)
==========  ==========================  =====================================
certified   true >= low   (sound)       [low, high], the bound itself (sound)
attack      true <= high  (sound);      true >= low   (sound);
            low is an upper estimate    high is a lower estimate
exact       [low, high] (sound on both sides, for the measured test set)
estimate    [low, high] is a confidence interval, not a guarantee
==========  ==========================  =====================================

The suprema of THEORY.md (a Lipschitz constant, a feature displacement) only enter
bounds that decrease in them, and the bound stays valid for any upper bound on them, so a
certified upper bound enters as itself: the judge checks that valid instance of the
result. A certified measurement of a quantity that is neither (the clean margin computed
on the test set) encloses it in ``[low, high]``. "Sound" is relative to the measured test
set.

Several measurements of one quantity (a certified lower bound and an attack's value of a
gamma: a sandwich) are combined by intersecting both intervals (ends that cross by float
rounding only, a few machine epsilons, meet in a point: :data:`ROUNDINGS`).

An estimate of a population mean made from per-sample certified bounds or attack values
(``settings['per_sample_kind']``, :func:`semirobust.theory.scope.for_population`) is a
one-sided confidence interval: its face interval keeps only the side that per-sample kind
is sound on.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from semirobust.errors import BadInput
from semirobust.theory.intervals import Interval
from semirobust.theory.measurement import Kind, Measurement
from semirobust.theory.quantities import Extremum, Quantity

Evidence = Measurement | Sequence[Measurement]
"""One measurement of a quantity, or several of the same quantity (a certified lower bound
and an attack's value: a sandwich), combined by intersecting what each says."""



@dataclass(frozen=True)
class Reading:
    """One measurement as the judge reads it, converted to the quantity's unit."""

    name: str
    quantity: Quantity
    measurement: Measurement
    value: float
    face: Interval
    sound: Interval
    also: tuple[Measurement, ...] = ()

    @property
    def kinds(self) -> list[Kind]:
        return [m.kind for m in (self.measurement, *self.also)]

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "value": self.value,
            "interval": self.face.to_json(),
            "sound_enclosure": self.sound.to_json(),
            "unit": self.quantity.unit,
            "kind": " + ".join(k.value for k in self.kinds),
            "measurements": [m.to_dict() for m in (self.measurement, *self.also)],
        }


def as_measurements(name: str, evidence: Evidence) -> list[Measurement]:
    """``evidence`` as a non-empty list of measurements, or :class:`BadInput`."""
    items = list(evidence) if isinstance(evidence, (list, tuple)) else [evidence]
    if not items or not all(isinstance(m, Measurement) for m in items):
        raise BadInput(f"measurements[{name!r}] must be a Measurement or a non-empty list of "
                       f"them, got {evidence!r}")
    return items


def read_evidence(name: str, quantity: Quantity, evidence: Evidence) -> Reading:
    """Intersect what several measurements of one quantity say; the value is the first
    one inside the intersection (else the first's, clipped to it)."""
    readings = [_read(name, quantity, m) for m in as_measurements(name, evidence)]
    first = readings[0]
    try:
        sound = first.sound
        face = first.face
        for r in readings[1:]:
            sound, face = _meet(sound, r.sound), _meet(face, r.face)
        face = _meet(face, sound)
    except ValueError:
        raise BadInput(
            f"the measurements of {name!r} contradict each other ("
            + "; ".join(r.measurement.describe() for r in readings)
            + "): a certified bound and an attack value disagree, so one of them is wrong"
        ) from None
    # the value shown: the first measurement whose value the combined evidence allows (a
    # sandwich's attack value when the certified bound lies below the face interval)
    inside = [r.value for r in readings if face.low <= r.value <= face.high]
    value = inside[0] if inside else min(max(first.value, face.low), face.high)
    return Reading(name, quantity, first.measurement, value, face, sound, tuple(
        r.measurement for r in readings[1:]))


ROUNDINGS = 8
"""Float64 roundings allowed between two sound ends of one quantity that cross: a
certified bound and an attack value of the same margin computed along different paths."""


def _meet(first: Interval, second: Interval) -> Interval:
    """The intersection; two intervals whose ends cross by float rounding only (at most
    ``ROUNDINGS`` machine epsilons of their magnitude) meet in the point between them."""
    low, high = max(first.low, second.low), min(first.high, second.high)
    if low <= high:
        return Interval(low, high)
    if low - high <= ROUNDINGS * sys.float_info.epsilon * max(abs(low), abs(high)):
        return Interval.point(high + (low - high) / 2)
    raise ValueError(f"[{first.low}, {first.high}] and [{second.low}, {second.high}] are disjoint")


def _read(name: str, quantity: Quantity, m: Measurement) -> Reading:
    factor = quantity.conversion(m.unit)
    if factor is None:
        raise BadInput(
            f"measurement {name!r} is in {m.unit!r}; {quantity.name} accepts "
            f"{', '.join(repr(u) for u in quantity.accepted_units())}"
        )
    low, high = m.interval[0] * factor, m.interval[1] * factor
    floor = quantity.lower_limit
    stated = Interval(max(low, floor), max(high, floor))
    sound = _sound_enclosure(name, quantity, m.kind, stated)
    # a certificate says nothing beyond its sound side (an exact value is all sound);
    # attacks and estimates also contribute their other end at face value (flagged when a
    # decision rests on it)
    face = sound if m.kind in (Kind.CERTIFIED, Kind.EXACT) else stated
    per_sample = m.settings.get("per_sample_kind")
    if m.kind is Kind.ESTIMATE and per_sample in {k.value for k in Kind} - {"estimate"}:
        # a population estimate from per-sample bounds: its confidence interval bounds the
        # quantity only on the side the per-sample kind is sound on (a mean of attack
        # values is an upper confidence bound of an infimum's expectation, and no lower one)
        face = _sound_enclosure(name, quantity, Kind(per_sample), stated)
    return Reading(name, quantity, m, max(m.value * factor, floor), face, sound)


def _sound_enclosure(name: str, quantity: Quantity, kind: Kind, stated: Interval) -> Interval:
    """What the measurement guarantees about the true value (module docstring's table),
    given its ``stated`` interval in the quantity's unit."""
    domain = Interval(quantity.lower_limit, math.inf)
    if kind is Kind.ESTIMATE:
        return domain
    if kind is Kind.EXACT:
        return stated
    if quantity.extremum is Extremum.NONE:
        if kind is Kind.ATTACK:
            raise BadInput(
                f"measurement {name!r} is of kind 'attack', but {quantity.name} is not an "
                "infimum or supremum over perturbations; use 'certified', 'exact' or "
                "'estimate'"
            )
        return stated
    if quantity.extremum is Extremum.SUPREMUM:
        return stated if kind is Kind.CERTIFIED else Interval(stated.low, math.inf)
    return Interval(stated.low, math.inf) if kind is Kind.CERTIFIED else Interval(domain.low, stated.high)
