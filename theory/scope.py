"""What a verdict is about: the measured test set, each of its samples, or the population.

THEORY.md 7: a mean over the test set of per-sample certified bounds, attack values or
exact values is itself a certified bound, an attack value or an exact value *of the
test-set mean*: judged on those points, a result's verdict is a certified statement about
the test set. The same means read as estimates of the population's expectation
``E_D[.]`` carry a confidence interval each; a verdict about the population can then only
be ``supported`` or ``contradicted``, at one joint confidence level (Bonferroni over the
estimates it rests on), which the verdict states.

A sound result (LIP, L2 in its ``>=`` form, T1 with composed readouts) judged on exact
test-set values can only hold: :func:`judge_per_sample` judges it on every sample and
:func:`judge_scopes` on the test-set mean and the population; a certified failure is a
bug report (``semirobust.theory.judge``).

Pure Python: no torch, no numpy.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from semirobust.theory.judge import judge
from semirobust.theory.measurement import Kind, Measurement
from semirobust.theory.readings import Evidence, as_measurements
from semirobust.theory.statements import Result
from semirobust.theory.verdict import Status, Verdict

TEST_SET = "test set"
POPULATION = "population"


def on_test_set(measurement: Measurement, *, exact: bool = False) -> Measurement:
    """The test-set mean as a point of the same kind (``exact=True``: a plain average of
    exactly computed per-sample values, such as the clean margin, becomes ``exact``)."""
    value = measurement.value
    kind = Kind.EXACT if exact else measurement.kind
    if kind is Kind.ESTIMATE:
        raise ValueError(f"{measurement.name} is an estimate: it has no exact test-set value")
    settings = {**measurement.settings, "scope": TEST_SET,
                "interval": "the test-set mean itself (no sampling: a statement about the "
                            "test set)"}
    return Measurement(measurement.name, value, (value, value), kind, measurement.estimator,
                       measurement.unit, settings)


def for_population(measurement: Measurement, confidence: float) -> Measurement:
    """The measurement's interval read as a ``confidence`` interval for the population's
    expectation: an estimate (a certified or attacked per-sample bound says nothing
    certain about ``E_D``)."""
    settings = {**measurement.settings, "scope": POPULATION, "confidence": confidence,
                "per_sample_kind": measurement.kind.value}
    return Measurement(measurement.name, measurement.value, measurement.interval, Kind.ESTIMATE,
                       measurement.estimator, measurement.unit, settings)


@dataclass(frozen=True)
class ScopedVerdicts:
    """One result judged on the test set (certified statements about it) and for the
    population (at the joint confidence the population verdict states)."""

    test_set: Verdict
    population: Verdict

    def to_dict(self) -> dict[str, Any]:
        return {TEST_SET: self.test_set.to_dict(), POPULATION: self.population.to_dict()}


def judge_scopes(
    result: Result | str,
    measurements: Mapping[str, Evidence],
    layers: Mapping[str, int] | None = None,
    *,
    exact: Iterable[str] = (),
    fixed: Iterable[str] = ("L_b",),
    confidence: float = 0.95,
) -> ScopedVerdicts:
    """``result`` judged twice: on the test-set means (``exact`` names the plain averages
    of exactly computed values), and for the population with each mean's interval read at
    ``confidence``. Measurements that are already estimates (rho) stay estimates in both;
    ``fixed`` names quantities that do not depend on the data (a certified Lipschitz
    constant; every ``U_j`` is stated) and stay as they are in both."""
    exact = set(exact)
    fixed = set(fixed)

    def scoped(to_point: bool) -> dict[str, list[Measurement]]:
        out: dict[str, list[Measurement]] = {}
        for name, evidence in measurements.items():
            items = as_measurements(name, evidence)
            if name in fixed or name.startswith("U_"):
                out[name] = items
            elif to_point:
                out[name] = [m if m.kind is Kind.ESTIMATE and name not in exact
                             else on_test_set(m, exact=name in exact) for m in items]
            else:
                out[name] = [m if m.kind is Kind.ESTIMATE and m.confidence is not None
                             else for_population(m, confidence) for m in items]
        return out

    return ScopedVerdicts(judge(result, scoped(True), layers),
                          judge(result, scoped(False), layers))


@dataclass(frozen=True)
class SampleVerdicts:
    """A result judged on each sample separately: the count of each status, the samples
    whose verdict is a certified failure, and the first such verdict in full."""

    result: str
    samples: int
    counts: Mapping[str, int]
    failing: tuple[int, ...] = ()
    first_failure: Verdict | None = None
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def status(self) -> Status:
        """``violated`` if any sample certainly fails, ``holds`` if every sample certainly
        holds, else the most frequent other status."""
        if self.failing:
            return Status.VIOLATED
        if self.counts.get(Status.HOLDS.value, 0) == self.samples:
            return Status.HOLDS
        others = {k: v for k, v in self.counts.items() if k != Status.HOLDS.value}
        return Status(max(others, key=others.get))

    def to_dict(self) -> dict[str, Any]:
        return {
            "result": self.result,
            "scope": "each test sample",
            "status": self.status.value,
            "samples": self.samples,
            "counts": dict(self.counts),
            "failing_samples": list(self.failing),
            "first_failure": self.first_failure.to_dict() if self.first_failure else None,
            "notes": list(self.notes),
        }


def judge_per_sample(
    result: Result | str,
    rows: Sequence[Mapping[str, Measurement]],
    layers: Mapping[str, int] | None = None,
) -> SampleVerdicts:
    """``result`` judged on every row (one sample's exact, certified and attacked values,
    each a point): a certified statement about each sample."""
    counts: dict[str, int] = {}
    failing: list[int] = []
    first: Verdict | None = None
    name = result if isinstance(result, str) else result.name
    for index, row in enumerate(rows):
        verdict = judge(result, row, layers)
        counts[verdict.status.value] = counts.get(verdict.status.value, 0) + 1
        if verdict.status is Status.VIOLATED:
            failing.append(index)
            first = first or verdict
    notes = ()
    if failing:
        notes = (f"{len(failing)} of {len(rows)} samples certainly violate {name}"
                 + (": a sound result, so this is a BUG REPORT" if "BUG REPORT" in
                    " ".join(first.notes) else ""),)
    return SampleVerdicts(name, len(rows), counts, tuple(failing), first, notes)
