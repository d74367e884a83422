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

How each kind of measurement is read: :mod:`semirobust.theory.readings`.

Each inequality is decided twice with interval arithmetic on its slack (``lhs - rhs`` for
``>=``; positive means it holds): first from the sound ends alone, which makes a decision a
certificate; failing that, from every end, in which case the comparison names the attack
values and estimates the decision rests on ("holds" by an attack's value is not a
certificate: the true infimum may be lower). If neither decides, the intervals straddle
the threshold: inconclusive.

The slack's ends are computed in floating point, so each decision allows for their
rounding, and for nothing else (intervals already carry the measurements' uncertainty):
an end within ``k * eps * M`` of 0 counts as 0, where ``eps`` is the float64 machine
epsilon, ``M`` the sum of the slack's terms' largest finite absolute ends and ``k`` the
number of roundings in computing it (one per addition, per multiplication and per factor,
for the rounding a factor's value may carry: a unit conversion, ``sqrt(2)``). A computed
end is within ``gamma_k * M`` of the exact one (the standard bound for a sum of products,
``gamma_k = k u / (1 - k u)``, ``u = eps / 2``), and ``k * eps >= gamma_k``. So two sides
equal up to rounding read as equal (``>=`` holds, ``>`` is violated), and a difference
beyond rounding is decided as before. Each comparison states its ``rounding_tolerance``,
and a note says when a decision rests on it.

Verdict: any premise violated -> ``premises unmet``; else any premise undecided ->
``inconclusive``; else the conclusion's status (``holds``, ``violated``, ``inconclusive``).
"""

from __future__ import annotations

import functools
import math
import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import sympy

from semirobust.errors import BadInput
from semirobust.theory.intervals import Interval, enclose
from semirobust.theory.measurement import Kind
from semirobust.theory.quantities import CONSTANTS, GAMMAS, QUANTITIES, Extremum, Quantity
from semirobust.theory.readings import Evidence, Reading, as_measurements, read_evidence
from semirobust.theory.results import RESULTS
from semirobust.theory.statements import Inequality, Result, formula_text
from semirobust.theory.units import Join, unit_of
from semirobust.theory.verdict import Comparison, Status, Verdict


def judge(
    result: Result | str,
    measurements: Mapping[str, Evidence],
    layers: Mapping[str, int] | None = None,
) -> Verdict:
    """Evaluate ``result``'s premises and conclusion on ``measurements`` (module docstring)."""
    result = _resolve_result(result)
    _check_measurements(measurements)
    numbers = _layer_numbers(result, measurements, layers)
    conclusion = result.conclusion.instances(numbers)
    if not conclusion:
        return _not_applicable(result, numbers)
    premises = [inst for p in result.premises for inst in p.instances(numbers)]
    consistency = [inst for c in result.consistency for inst in c.instances(numbers)]
    readings = _readings(result, [*premises, *consistency, *conclusion], measurements)
    env = _Environment(readings, _aliases(readings))
    premise_checks = tuple(_compare(label, p, env, result) for label, p in premises)
    consistency_checks = tuple(_compare(label, c, env, result) for label, c in consistency)
    conclusion_checks = tuple(_compare(label, c, env, result) for label, c in conclusion)
    status, basis = _overall_status(premise_checks, consistency_checks, conclusion_checks)
    joins = _joins_used(result, [*premises, *consistency, *conclusion], env)
    notes = _notes(result, status, premise_checks, consistency_checks, conclusion_checks, env,
                   joins)
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
        decided_by=_combined_kinds(basis),
        confidence=_joint_confidence(basis, env),
        consistency=consistency_checks,
    )


def _not_applicable(result: Result, numbers: Mapping[sympy.Symbol, int]) -> Verdict:
    """The verdict for layer numbers that leave the conclusion no instance (T1 at j = 1)."""
    reason = (f"not applicable: layers {_numbers_text(numbers)} leave no instance of "
              f"{result.name}'s {result.conclusion.label!r} ({result.conclusion.text()})")
    return Verdict.not_applicable(result.name, result.title, reason,
                                  {str(k): v for k, v in numbers.items()})


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
        as_measurements(name, evidence)


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
    return {s: read_evidence(name, q, measurements[name]) for s, (q, name) in needed.items()}


def _aliases(readings: Mapping[sympy.Expr, Reading]) -> dict[sympy.Expr, sympy.Expr]:
    """Symbols whose evidence is one measurement entered under several names, mapped to
    one representative: they are one quantity, so their difference is exactly 0, not the
    difference of two independent intervals (T1 with the composed readout: ``gamma_i``
    and ``gamma_j`` are the infimum of one function).

    One measurement means: a gamma (an expected worst-case margin) that names its readout
    (``settings['readout']``), with the same value, interval, kind, estimator, unit and
    settings. Only a named readout identifies the function measured; equal numbers for
    two layer pairs' rho, or the identity 0 of two canonical margin gaps, are two
    measurements of two quantities."""
    first: dict[tuple, sympy.Expr] = {}
    aliases: dict[sympy.Expr, sympy.Expr] = {}
    for symbol in sorted(readings, key=_name):
        reading = readings[symbol]
        if reading.quantity not in GAMMAS or "readout" not in reading.measurement.settings:
            continue
        key = (reading.quantity.unit,
               tuple(m.content() for m in (reading.measurement, *reading.also)))
        if key in first:
            aliases[symbol] = first[key]
        else:
            first[key] = symbol
    return aliases


@dataclass(frozen=True)
class _Environment:
    """The readings of one judgement and the three ways of reading them: the sound
    enclosures, the face intervals, and the point values; ``aliases`` maps a symbol to the
    one it is the same measurement as; stated constants (``ln 2``) enter as points."""

    readings: Mapping[sympy.Expr, Reading]
    aliases: Mapping[sympy.Expr, sympy.Expr]

    @property
    def constants(self) -> dict[sympy.Expr, Interval]:
        return {s: Interval.point(v) for s, (v, _) in CONSTANTS.items()}

    @property
    def sound(self) -> dict[sympy.Expr, Interval]:
        return {**self.constants, **{s: r.sound for s, r in self.readings.items()}}

    @property
    def face(self) -> dict[sympy.Expr, Interval]:
        return {**self.constants, **{s: r.face for s, r in self.readings.items()}}

    @property
    def unknown(self) -> dict[sympy.Expr, Interval]:
        """What is known of each quantity without its measurement: its domain."""
        return {s: Interval(r.quantity.lower_limit, math.inf) for s, r in self.readings.items()}

    @property
    def points(self) -> dict[sympy.Expr, Interval]:
        return {**self.constants,
                **{s: Interval.point(r.value) for s, r in self.readings.items()}}

    @property
    def units(self) -> dict[sympy.Expr, str]:
        return {**{s: u for s, (_, u) in CONSTANTS.items()},
                **{s: r.quantity.unit for s, r in self.readings.items()}}

    def value(self, expr: sympy.Expr) -> float:
        return enclose(expr, self.points).low

    def by_name(self) -> dict[str, Reading]:
        return {r.name: r for r in self.readings.values()}


@dataclass(frozen=True)
class _Decision:
    """What the enclosure of a slack decides (``None``: undecided), the rounding tolerance
    it allowed, and whether the tolerance changed the decision."""

    status: Status | None
    tolerance: float
    by_rounding: bool


def _decide(slack: sympy.Expr, env: Mapping[sympy.Expr, Interval], strict: bool) -> _Decision:
    """Decide ``slack >= 0`` (``> 0`` if ``strict``) from its enclosure over ``env``, ends
    within the rounding tolerance of 0 read as 0 (module docstring). The status is
    ``HOLDS`` or ``VIOLATED``; the caller says whether the decision is certain."""
    enclosure = enclose(slack, env)
    tolerance = _rounding_tolerance(slack, env)
    status = _status(enclosure, strict, tolerance)
    return _Decision(status, tolerance, status is not _status(enclosure, strict, 0.0))


def _status(slack: Interval, strict: bool, tolerance: float) -> Status | None:
    low, high = (0.0 if abs(end) <= tolerance else end for end in (slack.low, slack.high))
    if low > 0 or (not strict and low >= 0):
        return Status.HOLDS
    if high < 0 or (strict and high <= 0):
        return Status.VIOLATED
    return None


def _rounding_tolerance(slack: sympy.Expr, env: Mapping[sympy.Expr, Interval]) -> float:
    """``k * eps * M``: an upper bound on how far float rounding can move an end of
    ``slack``'s enclosure (a sum of products) over ``env`` (module docstring)."""
    terms = sympy.Add.make_args(slack)
    factors = [len(sympy.Mul.make_args(term)) for term in terms]
    roundings = len(terms) - 1 + sum(2 * count - 1 for count in factors)
    magnitude = sum(_largest_finite_end(enclose(term, env)) for term in terms)
    return roundings * sys.float_info.epsilon * magnitude


def _largest_finite_end(interval: Interval) -> float:
    """Infinite ends ("no bound") are left out: they are never within a tolerance of 0."""
    return max((abs(end) for end in (interval.low, interval.high) if math.isfinite(end)),
               default=0.0)


SOUND_KIND_TEXT = {Kind.CERTIFIED: "certified", Kind.EXACT: "exact",
                   Kind.ATTACK: "attack value (sound side)"}
IDENTITY = "identity (one measurement under two names)"


def _compare(label: str, inequality: Inequality, env: _Environment, result: Result) -> Comparison:
    slack = _slack(inequality, tuple(env.aliases.items()))
    _units_used(slack, tuple(sorted(env.units.items(), key=str)), result.unit_joins,
                f"{result.name} {label}")
    strict = inequality.relation.strict
    readings = env.readings
    involved = sorted((s for s in readings if slack.has(s)), key=_name)
    decided_by, deciding, confidence = "", (), None
    decision = _decide(slack, env.sound, strict)
    if decision.status is not None:
        status = decision.status
        deciding = _minimal(slack, status, strict, involved, env.sound, env.unknown)
        kinds = sorted({SOUND_KIND_TEXT[k] for name in deciding for k in env.by_name()[name].kinds
                        if k is not Kind.ESTIMATE})
        decided_by = " and ".join(kinds) or IDENTITY
    else:
        decision = _decide(slack, env.face, strict)
        status = {Status.HOLDS: Status.SUPPORTED, Status.VIOLATED: Status.CONTRADICTED,
                  None: Status.INCONCLUSIVE}[decision.status]
        if decision.status is not None:
            deciding = _minimal(slack, decision.status, strict, involved, env.face, env.sound)
            kinds = sorted({k.value for name in deciding for k in env.by_name()[name].kinds
                            if k in (Kind.ATTACK, Kind.ESTIMATE)})
            decided_by = " and ".join(kinds)
            confidence = _confidence_of(deciding, env)
    relied_on = deciding if status in (Status.SUPPORTED, Status.CONTRADICTED) else ()
    return Comparison(
        label=label,
        statement=inequality.text(),
        status=status,
        measured=env.value(inequality.lhs),
        measured_interval=enclose(inequality.lhs, env.face),
        threshold=env.value(inequality.rhs),
        threshold_interval=enclose(inequality.rhs, env.face),
        margin=env.value(slack),
        margin_interval=enclose(slack, env.face),
        rounding_tolerance=decision.tolerance,
        within_rounding=decision.by_rounding,
        decided_by=decided_by,
        relied_on=relied_on,
        kinds={readings[s].name: " + ".join(k.value for k in readings[s].kinds) for s in involved},
        units={readings[s].name: readings[s].quantity.unit for s in involved},
        deciding=deciding,
        confidence=confidence,
    )


@functools.lru_cache(maxsize=4096)
def _slack(inequality: Inequality, aliases: tuple[tuple[sympy.Expr, sympy.Expr], ...]
           ) -> sympy.Expr:
    """The expanded slack with aliased symbols replaced (memoised: statements are fixed)."""
    return sympy.expand(inequality.slack().subs(dict(aliases)))


@functools.lru_cache(maxsize=4096)
def _units_used(slack: sympy.Expr, units: tuple[tuple[sympy.Expr, str], ...],
                joins: tuple[Join, ...], where: str) -> tuple[Join, ...]:
    """The joins the slack's sums use; :class:`UnitMismatch` names a term in units that
    do not match (memoised on the units of its quantities)."""
    return unit_of(slack, dict(units), joins, where=where, show=formula_text)[1]


def _minimal(slack: sympy.Expr, status: Status, strict: bool, involved: list[sympy.Expr],
             base: Mapping[sympy.Expr, Interval], reduced: Mapping[sympy.Expr, Interval]
             ) -> tuple[str, ...]:
    """A minimal set of quantities the decision ``status`` needs: each quantity in turn is
    widened from ``base`` to ``reduced`` (face to sound: which non-sound ends are relied
    on; sound to unknown: which measurements decide), and kept widened if it stands."""
    current = dict(base)
    needed = []
    for symbol in involved:
        trial = {**current, symbol: reduced[symbol]}
        if _decide(slack, trial, strict).status is status:
            current = trial
        else:
            needed.append(_name(symbol))
    return tuple(needed)


def _confidence_of(names: tuple[str, ...], env: _Environment) -> float | None:
    """Bonferroni: the joint confidence of the estimates among ``names`` is at least
    ``1 - sum_i (1 - level_i)``; None when none is an estimate or a level is unstated."""
    by_name = env.by_name()
    levels = [m.confidence for name in names
              for m in (by_name[name].measurement, *by_name[name].also)
              if m.kind is Kind.ESTIMATE]
    if not levels or any(level is None for level in levels):
        return None
    return max(0.0, 1.0 - sum(1.0 - level for level in levels))


def _name(symbol: sympy.Expr) -> str:
    return _quantity_of(symbol)[1]


def _overall_status(
    premises: tuple[Comparison, ...], consistency: tuple[Comparison, ...],
    conclusion: tuple[Comparison, ...],
) -> tuple[Status, tuple[Comparison, ...]]:
    """The verdict and the comparisons that decide it (THEORY.md 7).

    A premise that fails (certainly, or else empirically) -> ``premises unmet``; one that
    is undecided -> ``inconclusive``; a consistency check (C9) that fails -> ``premises
    contradictory``. Then the conclusion (every instance must hold): ``violated`` only
    when an instance is certainly violated *and* every premise certainly holds, else
    ``contradicted`` when an instance fails; ``inconclusive`` when an instance is
    undecided; ``holds`` only when every instance and every premise certainly hold, else
    ``supported``."""
    failing = [p for p in premises if p.status.denies]
    if failing:
        certain = [p for p in failing if p.status is Status.VIOLATED]
        return Status.PREMISES_UNMET, tuple(certain[:1] or failing)
    undecided = [p for p in premises if p.status is Status.INCONCLUSIVE]
    if undecided:
        return Status.INCONCLUSIVE, ()
    contradictory = [c for c in consistency if c.status.denies]
    if contradictory:
        return Status.PREMISES_CONTRADICTORY, tuple(contradictory)
    denied = [c for c in conclusion if c.status.denies]
    if denied:
        certain = [c for c in denied if c.status is Status.VIOLATED]
        if certain and all(p.status is Status.HOLDS for p in premises):
            return Status.VIOLATED, (*premises, certain[0])
        empirical = [p for p in premises if p.status is not Status.HOLDS]
        return Status.CONTRADICTED, (*premises, (certain or denied)[0], *empirical)
    if any(c.status is Status.INCONCLUSIVE for c in conclusion):
        return Status.INCONCLUSIVE, ()
    if all(c.status is Status.HOLDS for c in (*premises, *conclusion)):
        return Status.HOLDS, (*premises, *conclusion)
    return Status.SUPPORTED, (*premises, *conclusion)


def _combined_kinds(basis: tuple[Comparison, ...]) -> str:
    """The kinds of evidence of the deciding comparisons, in one phrase."""
    kinds: list[str] = []
    for check in basis:
        for kind in check.decided_by.split(" and "):
            if kind and kind not in kinds:
                kinds.append(kind)
    return " and ".join(sorted(kinds))


def _joint_confidence(basis: tuple[Comparison, ...], env: _Environment) -> float | None:
    """The joint confidence of every estimate the empirical decisions in ``basis`` rest
    on (Bonferroni over their union)."""
    names = tuple(sorted({n for c in basis if not c.status.certain for n in c.deciding}))
    return _confidence_of(names, env)


def _notes(
    result: Result,
    status: Status,
    premises: tuple[Comparison, ...],
    consistency: tuple[Comparison, ...],
    conclusion: tuple[Comparison, ...],
    env: _Environment,
    joins: list[Join],
) -> list[str]:
    notes: list[str] = []
    by_name = env.by_name()
    for check in (*premises, *consistency, *conclusion):
        notes += _decision_notes(check, by_name)
    if status is Status.PREMISES_UNMET:
        unmet = ", ".join(f"{p.label} ({p.status.value})" for p in premises if p.status.denies)
        notes.append(f"premises unmet ({unmet}): {result.name} says nothing about this model; "
                     "the conclusion's evidence is shown for information")
    elif status is Status.PREMISES_CONTRADICTORY:
        bad = ", ".join(c.label for c in consistency if c.status.denies)
        notes.append(f"premises contradictory ({bad}): C9, the premises imply rho_j <= 1 + U_j "
                     "nats, and a measured rho_j exceeds it; the result is not evaluated on "
                     "a premise set that cannot hold")
    elif status is Status.INCONCLUSIVE and any(p.status is Status.INCONCLUSIVE for p in premises):
        notes.append("a premise's interval straddles its threshold: whether the result applies "
                     "is undecided")
    elif status is Status.VIOLATED:
        notes.append(f"COUNTEREXAMPLE: every premise of {result.name} certainly holds and its "
                     "conclusion certainly fails; keep this model, its data, readouts and "
                     "threat model as a witness (THEORY.md 7)")
    if any(c.status is Status.INCONCLUSIVE for c in consistency):
        notes.append("a C9 consistency check is undecided: the premise set may be contradictory")
    if result.sound:
        notes += _sound_result_notes(result, conclusion)
    notes += _alias_notes(env)
    notes += _provenance_notes(env, joins)
    return notes


def _alias_notes(env: _Environment) -> list[str]:
    groups: dict[sympy.Expr, list[str]] = {}
    for alias, representative in env.aliases.items():
        groups.setdefault(representative, [_name(representative)]).append(_name(alias))
    return [f"{', '.join(names)}: one measurement entered under {len(names)} names, read as "
            "one quantity (their difference is exactly 0)" for names in groups.values()]


def _decision_notes(check: Comparison, by_name: Mapping[str, Reading]) -> list[str]:
    if check.status is Status.INCONCLUSIVE:
        where = (f"reaches 0 within the float rounding tolerance {check.rounding_tolerance:.2g}"
                 if check.within_rounding else "straddles the threshold")
        interval = check.margin_interval.text()
        return [f"{check.label}: the margin interval {interval} {where}: inconclusive"]
    notes = []
    if check.within_rounding:
        notes.append(f"{check.label}: {check.status.value} with the two sides equal up to "
                     f"float rounding (a margin end within the rounding tolerance "
                     f"{check.rounding_tolerance:.2g} of 0 counts as 0)")
    if check.status.certain or not check.relied_on:
        return notes
    relied = [by_name[name] for name in check.relied_on]
    estimates = [r.name for r in relied if Kind.ESTIMATE in r.kinds]
    attacks = [r for r in relied if Kind.ATTACK in r.kinds]
    level = ("" if check.confidence is None else
             f" at joint confidence >= {check.confidence:.0%} (Bonferroni)")
    if estimates and not attacks:
        notes.append(f"{check.label}: {check.status.value} decided only by estimates "
                     f"({', '.join(estimates)}){level}: confidence intervals, not guarantees")
    elif estimates:
        notes.append(f"{check.label}: relies on estimates ({', '.join(estimates)}){level}: "
                     "confidence intervals, not guarantees")
    for r in attacks:
        direction = ("an upper estimate of an infimum: the true value may be lower"
                     if r.quantity.extremum is Extremum.INFIMUM else
                     "a lower estimate of a supremum: the true value may be higher")
        notes.append(f"{check.label}: {check.status.value} by the attack value of {r.name}, "
                     f"{direction}; this is not a certificate")
    return notes


def _sound_result_notes(result: Result, conclusion: tuple[Comparison, ...]) -> list[str]:
    notes = []
    for check in conclusion:
        if check.status is Status.VIOLATED:
            notes.append(
                f"BUG REPORT: {result.name} is proved sound, and this violation is decided by "
                f"sound ends of the measurements alone ({check.decided_text()}); the bound "
                "computation, the attack or this code is wrong. Please report it with this "
                "verdict's JSON."
            )
        elif check.status is Status.CONTRADICTED:
            notes.append(
                f"{result.name} is sound, but this contradiction rests on non-sound ends "
                f"({', '.join(check.relied_on)}); it is not a bug report until they are "
                "certified"
            )
    return notes


def _provenance_notes(env: _Environment, joins: list[Join]) -> list[str]:
    notes = []
    readings = env.readings
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
    for join in joins:
        notes.append(f"C6 units: {join.first} and {join.second} are added as one unit "
                     f"({join.reason}); the sum changes with the readout's scale and the MI's unit")
    return notes


def _joins_used(result: Result, instances: list[tuple[str, Inequality]],
                env: _Environment) -> list[Join]:
    """The unit joins (C6, C9) the instances' sums use, in order of first use."""
    used: list[Join] = []
    for label, instance in instances:
        slack = _slack(instance, tuple(env.aliases.items()))
        for join in _units_used(slack, tuple(sorted(env.units.items(), key=str)),
                                result.unit_joins, label):
            if join not in used:
                used.append(join)
    return used
