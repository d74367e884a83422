"""The judge: hold measurements against a result and say, with evidence, whether it holds.

``judge(result, measurements, layers=None) -> Verdict``

* ``result``: one of :data:`semirobust.theory.results.RESULTS` (or its name).
* ``measurements``: maps quantity names to a :class:`Measurement`, or to a list of
  measurements of the same quantity (a certified lower bound and an attack's value of a
  gamma: the judge intersects what they say). Single quantities by
  name (``gamma_a``, ``L_b``); layer-indexed families by ``<name>_<layer>``
  (``rho_6``, ``margin_gap_6``, ``U_6``, ``gamma_3``). Extra entries are ignored, so one
  dictionary can be judged against every result.
* ``layers``: the layer numbers ``a``, ``n``, ``j`` of the result (``{"a": 5, "n": 8}``);
  when omitted they are inferred from the family indices present (``rho_6..rho_8`` gives
  ``a = 5, n = 8`` for T2). T3 has no family and always needs them.

How a measurement is read (its *enclosure* of the true value), by kind and by whether the
quantity is an infimum or a supremum over the threat model:

==========  ==========================  =====================================
kind        infimum (gamma, gap)        supremum (L_b, Delta_a)
==========  ==========================  =====================================
certified   true >= low   (sound)       [low, high], the bound itself (sound)
attack      true <= high  (sound);      true >= low   (sound);
            low is an upper estimate    high is a lower estimate
estimate    [low, high] is a confidence interval, not a guarantee
==========  ==========================  =====================================

The suprema of THEORY.md (a Lipschitz constant, a feature displacement) only enter
bounds that decrease in them, and the bound stays valid for any upper bound on them, so a
certified upper bound enters as itself: the judge checks that valid instance of the
result. A certified measurement of a quantity that is neither (the clean margin computed
on the test set) encloses it in ``[low, high]``. "Sound" is relative to the measured test
set.

Each inequality is decided twice with interval arithmetic on its slack (``lhs - rhs`` for
``>=``; positive means it holds): first from the sound ends alone, which makes a decision a
certificate; failing that, from every end, in which case the comparison names the attack
values and estimates the decision rests on ("holds" by an attack's value is not a
certificate: the true infimum may be lower). If neither decides, the intervals straddle
the threshold: inconclusive.

Verdict: any premise violated -> ``premises unmet``; else any premise undecided ->
``inconclusive``; else the conclusion's status (``holds``, ``violated``, ``inconclusive``).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

import sympy
from semirobust.empirical.errors import BadInput
from semirobust.theory.intervals import Interval, enclose
from semirobust.theory.measurement import Kind, Measurement
from semirobust.theory.quantities import BITS, LOGITS, QUANTITIES, Extremum, Quantity
from semirobust.theory.results import RESULTS
from semirobust.theory.statements import Inequality, Result

Evidence = Measurement | Sequence[Measurement]
"""One measurement of a quantity, or several of the same quantity (a certified lower bound
and an attack's value: a sandwich), combined by intersecting what each says."""


class Status(str, Enum):
    HOLDS = "holds"
    VIOLATED = "violated"
    PREMISES_UNMET = "premises unmet"
    INCONCLUSIVE = "inconclusive"


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
            "interval": _interval_json(self.face),
            "sound_enclosure": _interval_json(self.sound),
            "unit": self.quantity.unit,
            "kind": " + ".join(k.value for k in self.kinds),
            "measurements": [m.to_dict() for m in (self.measurement, *self.also)],
        }


@dataclass(frozen=True)
class Comparison:
    """One premise or conclusion instance with its evidence.

    ``measured`` is the left side, ``threshold`` the right side (point values from the
    measurements' values, intervals from their face intervals); ``margin`` is the slack,
    positive when the inequality holds; ``kinds`` and ``units`` name each quantity's. ``decided_by`` is ``"certified"`` when sound ends
    alone decide, otherwise the kinds of the non-sound ends the decision rests on
    (``relied_on`` names them); empty when inconclusive.
    """

    label: str
    statement: str
    status: Status
    measured: float
    measured_interval: Interval
    threshold: float
    threshold_interval: Interval
    margin: float
    margin_interval: Interval
    decided_by: str
    relied_on: tuple[str, ...]
    kinds: Mapping[str, str]
    units: Mapping[str, str]

    def to_dict(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "statement": self.statement,
            "status": self.status.value,
            "measured": self.measured,
            "measured_interval": _interval_json(self.measured_interval),
            "threshold": self.threshold,
            "threshold_interval": _interval_json(self.threshold_interval),
            "margin": self.margin,
            "margin_interval": _interval_json(self.margin_interval),
            "decided_by": self.decided_by,
            "relied_on": list(self.relied_on),
            "kinds": dict(self.kinds),
            "units": dict(self.units),
        }

    def _units_text(self) -> str:
        by_unit: dict[str, list[str]] = {}
        for name, unit in self.units.items():
            by_unit.setdefault(unit, []).append(name)
        return "; ".join(f"{', '.join(sorted(names))}: {unit}" for unit, names in sorted(by_unit.items()))

    def row(self) -> str:
        """A Markdown table row."""
        return (
            f"| {self.label} | `{self.statement}` | {self.measured:.4g} "
            f"{_interval_text(self.measured_interval)} | {self.threshold:.4g} "
            f"{_interval_text(self.threshold_interval)} | {self.margin:+.4g} "
            f"{_interval_text(self.margin_interval)} | {self.status.value} | "
            f"{self.decided_by or '-'} | {self._units_text()} |"
        )


@dataclass(frozen=True)
class Verdict:
    """What the judge says about one result on one set of measurements."""

    result: str
    title: str
    status: Status
    premises: tuple[Comparison, ...]
    conclusion: tuple[Comparison, ...]
    assumptions: tuple[str, ...]
    layers: Mapping[str, int]
    readings: tuple[Reading, ...]
    notes: tuple[str, ...] = field(default_factory=tuple)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (infinite interval ends are ``null``)."""
        return {
            "result": self.result,
            "title": self.title,
            "status": self.status.value,
            "premises": [c.to_dict() for c in self.premises],
            "conclusion": [c.to_dict() for c in self.conclusion],
            "assumptions_not_checked": list(self.assumptions),
            "layers": dict(self.layers),
            "measurements": [r.to_dict() for r in self.readings],
            "notes": list(self.notes),
        }

    def describe(self) -> str:
        """Markdown: the status, a table of every premise and the conclusion, the notes."""
        lines = [
            f"### {self.result}: {self.title} -- **{self.status.value}**",
            "",
            "| | statement | measured | threshold | margin | status | decided by | units (C6) |",
            "|---|---|---|---|---|---|---|---|",
        ]
        lines += [c.row() for c in (*self.premises, *self.conclusion)]
        lines.append("")
        lines += [f"- assumed, not checked: {a}" for a in self.assumptions]
        lines += [f"- {note}" for note in self.notes]
        return "\n".join(lines)


def judge(
    result: Result | str,
    measurements: Mapping[str, Evidence],
    layers: Mapping[str, int] | None = None,
) -> Verdict:
    """Evaluate ``result``'s premises and conclusion on ``measurements`` (module docstring)."""
    result = _resolve_result(result)
    _check_measurements(measurements)
    numbers = _layer_numbers(result, measurements, layers)
    premises = [inst for p in result.premises for inst in _instances(result, p, numbers)]
    conclusion = _instances(result, result.conclusion, numbers)
    readings = _readings(result, [*premises, *conclusion], measurements)
    env = _Environment(readings)
    premise_checks = tuple(_compare(label, p, env) for label, p in premises)
    conclusion_checks = tuple(_compare(label, c, env) for label, c in conclusion)
    status = _overall_status(premise_checks, conclusion_checks)
    notes = _notes(result, status, premise_checks, conclusion_checks, readings)
    return Verdict(
        result=result.name,
        title=result.title,
        status=status,
        premises=premise_checks,
        conclusion=conclusion_checks,
        assumptions=tuple(f"{a.label}: {a.text}" for a in result.assumptions),
        layers={str(k): v for k, v in numbers.items()},
        readings=tuple(readings[s] for s in sorted(readings, key=str)),
        notes=tuple(notes),
    )


def _instances(
    result: Result, inequality: Inequality, numbers: Mapping[sympy.Symbol, int]
) -> list[tuple[str, Inequality]]:
    instances = inequality.instances(numbers)
    if not instances:
        raise BadInput(f"layers {_numbers_text(numbers)} leave no instance of {result.name}'s "
                       f"{inequality.label!r} ({inequality.text()})")
    return instances


def _resolve_result(result: Result | str) -> Result:
    if isinstance(result, Result):
        return result
    if result in RESULTS:
        return RESULTS[result]
    raise BadInput(f"result {result!r} is not one of {', '.join(RESULTS)}")


def _check_measurements(measurements: Mapping[str, Evidence]) -> None:
    if not isinstance(measurements, Mapping):
        raise BadInput(
            f"measurements must map quantity names to Measurement, got {type(measurements).__name__}"
        )
    for name, evidence in measurements.items():
        items = evidence if isinstance(evidence, (list, tuple)) else [evidence]
        if not items or not all(isinstance(m, Measurement) for m in items):
            raise BadInput(f"measurements[{name!r}] must be a Measurement or a non-empty list of "
                           f"them, got {evidence!r}")


_MEMBER = re.compile(r"^(?P<stem>.+)_(?P<index>\d+)$")


def _family_indices(measurements: Mapping[str, Evidence], stem: str) -> list[int]:
    found = []
    for name in measurements:
        match = _MEMBER.match(name)
        if match and match["stem"] == stem:
            found.append(int(match["index"]))
    return sorted(found)


def _layer_numbers(
    result: Result, measurements: Mapping[str, Evidence], layers: Mapping[str, int] | None
) -> dict[sympy.Symbol, int]:
    """The layer numbers: given, or solved from the families' index ranges."""
    symbols = {str(s): s for s in result.layer_numbers}
    if layers is None and not symbols:
        numbers: dict[sympy.Symbol, int] = {}
    elif layers is not None:
        unknown = sorted(set(layers) - set(symbols))
        missing = sorted(set(symbols) - set(layers))
        if unknown or missing:
            raise BadInput(
                f"layers for {result.name} must give exactly {sorted(symbols)}; got "
                f"{sorted(layers)}"
            )
        numbers = {symbols[k]: _layer_int(k, v) for k, v in layers.items()}
    else:
        equations = []
        for stem, (low, high) in result.families.items():
            indices = _family_indices(measurements, stem)
            if indices:
                equations += [sympy.Eq(low, indices[0]), sympy.Eq(high, indices[-1])]
        solutions = sympy.solve(equations, list(symbols.values()), dict=True) if equations else []
        if len(solutions) != 1 or set(solutions[0]) != set(symbols.values()):
            raise BadInput(
                f"cannot infer the layer numbers {sorted(symbols)} of {result.name} from the "
                f"measurement names; pass layers={{...}} explicitly"
            )
        numbers = {s: _layer_int(str(s), v) for s, v in solutions[0].items()}
    for stem, (low, high) in result.families.items():
        first, last = int(low.subs(numbers)), int(high.subs(numbers))
        if first > last:
            raise BadInput(
                f"layers {_numbers_text(numbers)} give an empty range {first}..{last} for "
                f"{stem}_j in {result.name}"
            )
    return numbers


def _layer_int(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, sympy.Integer)) or value < 0:
        raise BadInput(f"layer number {name} must be an integer >= 0, got {value!r}")
    return int(value)


def _numbers_text(numbers: Mapping[sympy.Symbol, int]) -> str:
    return ", ".join(f"{k}={v}" for k, v in numbers.items())


def _quantity_of(symbol: sympy.Expr) -> tuple[Quantity, str]:
    if isinstance(symbol, sympy.Indexed):
        quantity = QUANTITIES[str(symbol.base.label)]
        return quantity, quantity.measurement_name(int(symbol.indices[0]))
    quantity = QUANTITIES[str(symbol)]
    return quantity, quantity.measurement_name()


def _readings(
    result: Result, inequalities: list[tuple[str, Inequality]], measurements: Mapping[str, Evidence]
) -> dict[sympy.Expr, Reading]:
    needed: dict[sympy.Expr, tuple[Quantity, str]] = {}
    for _, inequality in inequalities:
        for symbol in inequality.slack().atoms(sympy.Symbol, sympy.Indexed):
            if isinstance(symbol, sympy.Symbol) and (
                str(symbol) not in QUANTITIES or QUANTITIES[str(symbol)].is_family
            ):
                continue  # a layer number, or the label of an indexed family
            needed[symbol] = _quantity_of(symbol)
    missing = sorted(name for _, name in needed.values() if name not in measurements)
    if missing:
        raise BadInput(
            f"judging {result.name} needs measurements named {', '.join(missing)} "
            f"(accepted: {', '.join(sorted(n for _, n in needed.values()))})"
        )
    return {s: _combine(name, q, measurements[name]) for s, (q, name) in needed.items()}


def _combine(name: str, quantity: Quantity, evidence: Evidence) -> Reading:
    """Intersect what several measurements of one quantity say; the value is the first's."""
    readings = [_read(name, quantity, m) for m in
                (evidence if isinstance(evidence, (list, tuple)) else [evidence])]
    first = readings[0]
    try:
        sound = first.sound
        face = first.face
        for r in readings[1:]:
            sound, face = sound.intersect(r.sound), face.intersect(r.face)
        face = face.intersect(sound)
    except ValueError:
        raise BadInput(
            f"the measurements of {name!r} contradict each other ("
            + "; ".join(r.measurement.describe() for r in readings)
            + "): a certified bound and an attack value disagree, so one of them is wrong"
        ) from None
    value = min(max(first.value, face.low), face.high)
    return Reading(name, quantity, first.measurement, value, face, sound, tuple(
        r.measurement for r in readings[1:]))


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
    # a certificate says nothing beyond its sound side; attacks and estimates also
    # contribute their other end at face value (flagged when a decision rests on it)
    face = sound if m.kind is Kind.CERTIFIED else stated
    return Reading(name, quantity, m, max(m.value * factor, floor), face, sound)


def _sound_enclosure(name: str, quantity: Quantity, kind: Kind, stated: Interval) -> Interval:
    """What the measurement guarantees about the true value (module docstring's table),
    given its ``stated`` interval in the quantity's unit."""
    domain = Interval(quantity.lower_limit, math.inf)
    if kind is Kind.ESTIMATE:
        return domain
    if quantity.extremum is Extremum.NONE:
        if kind is Kind.ATTACK:
            raise BadInput(
                f"measurement {name!r} is of kind 'attack', but {quantity.name} is not an "
                "infimum or supremum over perturbations; use 'certified' or 'estimate'"
            )
        return stated
    if quantity.extremum is Extremum.SUPREMUM:
        return stated if kind is Kind.CERTIFIED else Interval(stated.low, math.inf)
    return Interval(stated.low, math.inf) if kind is Kind.CERTIFIED else Interval(domain.low, stated.high)


@dataclass(frozen=True)
class _Environment:
    """The readings of one judgement and the three ways of reading them: the sound
    enclosures, the face intervals, and the point values."""

    readings: Mapping[sympy.Expr, Reading]

    @property
    def sound(self) -> dict[sympy.Expr, Interval]:
        return {s: r.sound for s, r in self.readings.items()}

    @property
    def face(self) -> dict[sympy.Expr, Interval]:
        return {s: r.face for s, r in self.readings.items()}

    @property
    def points(self) -> dict[sympy.Expr, Interval]:
        return {s: Interval.point(r.value) for s, r in self.readings.items()}

    def value(self, expr: sympy.Expr) -> float:
        return enclose(expr, self.points).low


def _decide(slack: Interval, strict: bool) -> Status | None:
    if slack.low > 0 or (not strict and slack.low >= 0):
        return Status.HOLDS
    if slack.high < 0 or (strict and slack.high <= 0):
        return Status.VIOLATED
    return None


def _compare(label: str, inequality: Inequality, env: _Environment) -> Comparison:
    slack = sympy.expand(inequality.slack())
    strict = inequality.relation.strict
    readings = env.readings
    involved = [s for s in readings if slack.has(s)]
    face_slack = enclose(slack, env.face)
    decided_by, relied_on = "", ()
    status = _decide(enclose(slack, env.sound), strict)
    if status is not None:
        decided_by = "certified"
    else:
        status = _decide(face_slack, strict)
        if status is not None:
            relied_on = _relied_on(slack, status, strict, involved, env)
            kinds = sorted({k.value for s in involved if readings[s].name in relied_on
                            for k in readings[s].kinds if k is not Kind.CERTIFIED})
            decided_by = " and ".join(kinds)
        else:
            status = Status.INCONCLUSIVE
    return Comparison(
        label=label,
        statement=inequality.text(),
        status=status,
        measured=env.value(inequality.lhs),
        measured_interval=enclose(inequality.lhs, env.face),
        threshold=env.value(inequality.rhs),
        threshold_interval=enclose(inequality.rhs, env.face),
        margin=env.value(slack),
        margin_interval=face_slack,
        decided_by=decided_by,
        relied_on=relied_on,
        kinds={readings[s].name: " + ".join(k.value for k in readings[s].kinds) for s in involved},
        units={readings[s].name: readings[s].quantity.unit for s in involved},
    )


def _relied_on(
    slack: sympy.Expr, status: Status, strict: bool, involved: list[sympy.Expr], env: _Environment
) -> tuple[str, ...]:
    """A minimal set of quantities whose non-sound ends the decision needs: each quantity
    in turn is reduced to its sound enclosure, and kept reduced if the decision stands."""
    current, sound = env.face, env.sound
    relied = []
    for symbol in sorted(involved, key=_name):
        trial = {**current, symbol: sound[symbol]}
        if _decide(enclose(slack, trial), strict) is status:
            current = trial
        else:
            relied.append(_name(symbol))
    return tuple(relied)


def _name(symbol: sympy.Expr) -> str:
    return _quantity_of(symbol)[1]


def _overall_status(premises: tuple[Comparison, ...], conclusion: tuple[Comparison, ...]) -> Status:
    if any(p.status is Status.VIOLATED for p in premises):
        return Status.PREMISES_UNMET
    if any(p.status is Status.INCONCLUSIVE for p in premises):
        return Status.INCONCLUSIVE
    if any(c.status is Status.VIOLATED for c in conclusion):
        return Status.VIOLATED
    if any(c.status is Status.INCONCLUSIVE for c in conclusion):
        return Status.INCONCLUSIVE
    return Status.HOLDS


def _notes(
    result: Result,
    status: Status,
    premises: tuple[Comparison, ...],
    conclusion: tuple[Comparison, ...],
    readings: Mapping[sympy.Expr, Reading],
) -> list[str]:
    notes: list[str] = []
    by_name = {r.name: r for r in readings.values()}
    for check in (*premises, *conclusion):
        notes += _decision_notes(check, by_name)
    if status is Status.PREMISES_UNMET:
        unmet = ", ".join(p.label for p in premises if p.status is Status.VIOLATED)
        notes.append(f"premises unmet ({unmet}): {result.name} says nothing about this model; "
                     "the conclusion's evidence is shown for information")
    elif status is Status.INCONCLUSIVE and any(p.status is Status.INCONCLUSIVE for p in premises):
        notes.append("a premise's interval straddles its threshold: whether the result applies "
                     "is undecided")
    if result.sound:
        notes += _sound_result_notes(result, conclusion, by_name)
    notes += _provenance_notes(result, readings)
    return notes


def _decision_notes(check: Comparison, by_name: Mapping[str, Reading]) -> list[str]:
    if check.status is Status.INCONCLUSIVE:
        return [(f"{check.label}: the margin interval {_interval_text(check.margin_interval)} "
                 "straddles the threshold: inconclusive")]
    if check.decided_by == "certified" or not check.relied_on:
        return []
    relied = [by_name[name] for name in check.relied_on]
    estimates = [r.name for r in relied if Kind.ESTIMATE in r.kinds]
    attacks = [r for r in relied if Kind.ATTACK in r.kinds]
    notes = []
    if estimates and not attacks:
        notes.append(f"{check.label}: {check.status.value} decided only by estimates "
                     f"({', '.join(estimates)}): confidence intervals, not guarantees")
    elif estimates:
        notes.append(f"{check.label}: relies on estimates ({', '.join(estimates)}): confidence "
                     "intervals, not guarantees")
    for r in attacks:
        direction = ("an upper estimate of an infimum: the true value may be lower"
                     if r.quantity.extremum is Extremum.INFIMUM else
                     "a lower estimate of a supremum: the true value may be higher")
        notes.append(f"{check.label}: {check.status.value} by the attack value of {r.name}, "
                     f"{direction}; this is not a certificate")
    return notes


def _sound_result_notes(
    result: Result, conclusion: tuple[Comparison, ...], by_name: Mapping[str, Reading]
) -> list[str]:
    notes = []
    for check in conclusion:
        if check.status is not Status.VIOLATED:
            continue
        if check.decided_by == "certified":
            notes.append(
                f"BUG REPORT: {result.name} is proved sound, and this violation is decided by "
                "sound ends of the measurements alone; the bound computation, the attack or "
                "this code is wrong. Please report it with this verdict's JSON."
            )
        else:
            notes.append(
                f"{result.name} is sound, but this violation rests on non-certified ends "
                f"({', '.join(check.relied_on)}); it is not a bug report until they are "
                "certified"
            )
    return notes


def _provenance_notes(result: Result, readings: Mapping[sympy.Expr, Reading]) -> list[str]:
    notes = []
    for r in sorted(readings.values(), key=lambda r: r.name):
        if r.quantity.unit == "logits" and "readout" not in r.measurement.settings:
            notes.append(f"{r.name} names no readout (settings['readout']): under C1 its scale "
                         "is arbitrary")
        if r.measurement.unit != r.quantity.unit and r.quantity.conversion(r.measurement.unit) != 1.0:
            notes.append(f"{r.name} converted from {r.measurement.unit} to {r.quantity.unit}")
    rhos = [r for r in readings.values() if r.quantity.name == "rho"]
    if rhos:
        estimators = sorted({r.measurement.estimator for r in rhos})
        notes.append(f"C2: rho is the value of the estimator {', '.join(estimators)}, not a "
                     "property of the network alone"
                     + (" (the rhos come from different estimators)" if len(estimators) > 1 else ""))
    in_conclusion = [r for r in readings.values()
                     if result.conclusion.slack().has(r.quantity.symbol)]
    units = sorted({r.quantity.unit for r in in_conclusion})
    if {LOGITS, BITS} <= set(units):
        terms = "; ".join(
            f"{u}: " + ", ".join(sorted(r.name for r in in_conclusion if r.quantity.unit == u))
            for u in units
        )
        notes.append(f"C6 units: the conclusion adds terms in different units ({terms}); it "
                     "changes with the readout's scale and the MI's unit")
    return notes


def _interval_json(interval: Interval) -> list[float | None]:
    return [None if math.isinf(v) else v for v in (interval.low, interval.high)]


def _interval_text(interval: Interval) -> str:
    def end(v: float) -> str:
        return ("-inf" if v < 0 else "+inf") if math.isinf(v) else f"{v:.4g}"
    return f"[{end(interval.low)}, {end(interval.high)}]"
