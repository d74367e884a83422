"""Human-readable tables of measurements (Markdown for report.md, plain for stdout).

Every row shows the value, its interval, its kind (certified / attack / estimate), the
estimator and the unit, so no number is read without its provenance.
"""

from __future__ import annotations

from typing import Iterable

from semirobust.theory.measurement import Measurement

KIND_MEANING = {
    "certified": "a sound bound",
    "attack": "reached by an attack: an upper estimate of an infimum",
    "estimate": "a statistical estimate with a confidence interval",
}


def measurement_rows(measurements: Iterable[Measurement]) -> list[list[str]]:
    """One row per measurement: name, value, interval, unit, kind, estimator."""
    rows = []
    for m in measurements:
        low, high = m.interval
        rows.append([m.name, f"{m.value:.4g}", f"[{low:.4g}, {high:.4g}]", m.unit, m.kind.value, m.estimator])
    return rows


MEASUREMENT_HEADER = ["quantity", "value", "interval", "unit", "kind", "estimator"]


def markdown_table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def plain_table(header: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    return "\n".join(fmt.format(*row) for row in [header, ["-" * w for w in widths], *rows])


def value_with_interval(measurement: Measurement) -> str:
    """``value [low, high]`` to three decimals, as the report tables print a measurement."""
    low, high = measurement.interval
    return f"{measurement.value:.3f} [{low:.3f}, {high:.3f}]"
