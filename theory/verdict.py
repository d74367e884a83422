"""A verdict and its evidence: the judge's answer for one result on one set of measurements."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from semirobust.theory.intervals import Interval
from semirobust.theory.readings import Reading


class Status(str, Enum):
    """What the evidence decides (THEORY.md 7).

    ``holds`` / ``violated``: decided by sound ends only (certified bounds, exact values,
    the sound side of an attack value). ``supported`` / ``contradicted``: decided only
    when an attack value's other end or an estimate's confidence interval is taken at
    face value, at the stated confidence. ``premises unmet``: a premise fails (the
    verdict's ``decided_by`` says on what evidence). ``premises contradictory``: the
    premises cannot all hold together (C9: a measured rho above ``1 + U`` nats).
    ``not applicable``: the result has no instance at these layer numbers.
    """

    HOLDS = "holds"
    VIOLATED = "violated"
    SUPPORTED = "supported"
    CONTRADICTED = "contradicted"
    PREMISES_UNMET = "premises unmet"
    PREMISES_CONTRADICTORY = "premises contradictory"
    INCONCLUSIVE = "inconclusive"
    NOT_APPLICABLE = "not applicable"

    @property
    def affirms(self) -> bool:
        """The inequality (or result) was found to hold, certainly or empirically."""
        return self in (Status.HOLDS, Status.SUPPORTED)

    @property
    def denies(self) -> bool:
        """The inequality (or result) was found to fail, certainly or empirically."""
        return self in (Status.VIOLATED, Status.CONTRADICTED)

    @property
    def certain(self) -> bool:
        return self in (Status.HOLDS, Status.VIOLATED)


@dataclass(frozen=True)
class Comparison:
    """One premise or conclusion instance with its evidence.

    ``measured`` is the left side, ``threshold`` the right side (point values from the
    measurements' values, intervals from their face intervals); ``margin`` is the slack,
    positive when the inequality holds. ``rounding_tolerance`` is how close to 0 an end of
    the deciding slack interval counted as 0 (float rounding only, see
    :mod:`semirobust.theory.judge`); ``within_rounding`` says the decision rests on it (the
    sides are equal up to rounding). ``decided_by`` is ``"certified"`` when sound ends
    alone decide, otherwise the kinds of the non-sound ends the decision rests on
    (``relied_on`` names them); empty when inconclusive. ``kinds`` and ``units`` give each
    quantity's kind of measurement and unit (C6).
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
    rounding_tolerance: float
    within_rounding: bool
    decided_by: str
    relied_on: tuple[str, ...]
    kinds: Mapping[str, str]
    units: Mapping[str, str]
    deciding: tuple[str, ...] = ()
    confidence: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "statement": self.statement,
            "status": self.status.value,
            "measured": self.measured,
            "measured_interval": self.measured_interval.to_json(),
            "threshold": self.threshold,
            "threshold_interval": self.threshold_interval.to_json(),
            "margin": self.margin,
            "margin_interval": self.margin_interval.to_json(),
            "rounding_tolerance": self.rounding_tolerance,
            "within_rounding": self.within_rounding,
            "decided_by": self.decided_by,
            "relied_on": list(self.relied_on),
            "deciding": list(self.deciding),
            "confidence": self.confidence,
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
            f"{self.measured_interval.text()} | {self.threshold:.4g} "
            f"{self.threshold_interval.text()} | {self.margin:+.4g} "
            f"{self.margin_interval.text()} ±{self.rounding_tolerance:.1g} | {self.status.value} | "
            f"{self.decided_text()} | {self._units_text()} |"
        )

    def decided_text(self) -> str:
        """What decided, with the deciding quantities and the joint confidence."""
        if not self.decided_by:
            return "-"
        text = self.decided_by
        if self.deciding:
            text += f" ({', '.join(self.deciding)})"
        if self.confidence is not None:
            text += f" at joint confidence >= {self.confidence:.0%}"
        return text


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
    decided_by: str = ""
    confidence: float | None = None
    consistency: tuple[Comparison, ...] = ()
    reason: str | None = None

    @classmethod
    def not_applicable(cls, result: str, title: str, reason: str,
                       layers: Mapping[str, int] | None = None) -> Verdict:
        """The verdict for a result whose statement does not speak about the model at hand
        (THEORY.md section 7: ``not applicable``): nothing is compared, ``reason`` says why."""
        return cls(result, title, Status.NOT_APPLICABLE, (), (), (), dict(layers or {}), (),
                   notes=(reason,), reason=reason)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (infinite interval ends are ``null``); a not-applicable verdict adds
        its ``reason``."""
        return {
            **({"reason": self.reason} if self.reason is not None else {}),
            "result": self.result,
            "title": self.title,
            "status": self.status.value,
            "decided_by": self.decided_by,
            "confidence": self.confidence,
            "consistency": [c.to_dict() for c in self.consistency],
            "premises": [c.to_dict() for c in self.premises],
            "conclusion": [c.to_dict() for c in self.conclusion],
            "assumptions_not_checked": list(self.assumptions),
            "layers": dict(self.layers),
            "measurements": [r.to_dict() for r in self.readings],
            "notes": list(self.notes),
        }

    def describe(self, label: str | None = None) -> str:
        """Markdown: the status and what decided it, a table of every premise, consistency
        check and conclusion, the notes (for a not-applicable verdict: the reason). The
        heading names ``label`` (e.g. ``T2 (trial 2)``) in place of the result's name."""
        name = label or self.result
        if self.status is Status.NOT_APPLICABLE:
            return f"### {name}: {self.title} -- **{self.status.value}**\n\n{self.reason}\n"
        lines = [
            f"### {name}: {self.title} -- **{self.status.value}**"
            + (f" (decided by {self.decided_text()})" if self.decided_by else ""),
            "",
            ("| | statement | measured | threshold | margin (± rounding tolerance) | status "
             "| decided by | units (C6) |"),
            "|---|---|---|---|---|---|---|---|",
        ]
        lines += [c.row() for c in (*self.premises, *self.consistency, *self.conclusion)]
        lines.append("")
        lines += [f"- assumed, not checked: {a}" for a in self.assumptions]
        lines += [f"- {note}" for note in self.notes]
        return "\n".join(lines)

    def decided_text(self) -> str:
        """The overall decision's evidence, with the joint confidence when estimates decide."""
        if not self.decided_by:
            return "-"
        if self.confidence is None:
            return self.decided_by
        return f"{self.decided_by} at joint confidence >= {self.confidence:.0%}"
