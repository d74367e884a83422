"""Per-sample bounds aggregated into :class:`Measurement` objects.

Each per-sample value is what its method makes it (a certified bound, an attack's value,
an estimate); their mean over a finite test set is still a sample of ``E_D[.]``, so the
aggregate carries a Student-t 95% interval over inputs and says so in its settings.
"""

from __future__ import annotations

from typing import Any

import torch

from semirobust.empirical.measure.statistics import mean_interval
from semirobust.theory.measurement import Kind, Measurement

PER_SAMPLE_NOTE = {
    Kind.CERTIFIED: "per-sample values are certified bounds; the interval of their mean is "
    "sampling only (Student-t 95% over inputs)",
    Kind.ATTACK: "per-sample values are reached by an attack; the interval of their mean is "
    "sampling only (Student-t 95% over inputs)",
    Kind.ESTIMATE: "per-sample values are estimates; Student-t 95% interval over inputs",
}


def mean_measurement(
    name: str,
    values: torch.Tensor,
    *,
    kind: Kind,
    estimator: str,
    unit: str,
    settings: dict[str, Any],
) -> Measurement:
    """``mean_i values_i`` with a Student-t interval, of the given kind."""
    array = values.detach().double().cpu().numpy()
    low, high = mean_interval(array)
    mean = float(array.mean())
    return Measurement(
        name=name,
        value=mean,
        interval=(min(low, mean), max(high, mean)),
        kind=kind,
        estimator=estimator,
        unit=unit,
        settings={**settings, "n": int(array.size), "interval": PER_SAMPLE_NOTE[Kind(kind)]},
    )
