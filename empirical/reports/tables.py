"""Human-readable tables of measurements (Markdown for report.md, plain for stdout).

Every row shows the value, its interval, its kind (certified / attack / estimate), the
estimator and the unit, so no number is read without its provenance.
"""

from __future__ import annotations

import re
import warnings
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


_NUMBER_TUPLE = re.compile(r"\((\d+(?:, \d+)*)\)")


def summarize_warnings(caught: Iterable[warnings.WarningMessage]) -> list[str]:
    """Distinct warnings, one line each; messages that differ only in a tuple of numbers
    (e.g. the dimensions of each class and layer pair) are merged, with their count and
    the largest tuple seen."""
    groups: dict[str, list[tuple[int, ...]]] = {}
    for warning in caught:
        text = f"{warning.category.__name__}: {warning.message}"
        tuples = [tuple(int(v) for v in m.split(", ")) for m in _NUMBER_TUPLE.findall(text)]
        groups.setdefault(_NUMBER_TUPLE.sub("(...)", text), []).extend(tuples)
    lines = []
    for template, tuples in sorted(groups.items()):
        if tuples:
            largest = max(tuples, key=sum)
            template += f" [{len(tuples)} cases; largest ({', '.join(map(str, largest))})]"
        lines.append(template)
    return lines
