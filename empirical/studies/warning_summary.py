"""The warnings a study caught (estimators, attacks, bounds), one line per distinct message,
as the results and reports carry them."""

from __future__ import annotations

import re
import warnings
from typing import Iterable

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
