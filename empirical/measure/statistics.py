"""Sampling intervals for the numbers the tool prints.

* :func:`wilson_interval`: a proportion ``k/n`` (accuracies), Wilson score interval.
* :func:`mean_interval`: a sample mean (expected margins), Student-t interval.

The quantiles come from ``scipy.special`` (``ndtri``, ``stdtrit``: the functions behind
``scipy.stats.norm.ppf`` and ``scipy.stats.t.ppf``, same values), which imports in a
fraction of the time ``scipy.stats`` takes; every command imports this module.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import special

from semirobust.errors import BadInput

DEFAULT_LEVEL = 0.95


def wilson_interval(successes: int, n: int, level: float = DEFAULT_LEVEL) -> tuple[float, float]:
    """Wilson score interval for a binomial proportion:
    ``(p + z^2/2n -+ z sqrt(p(1-p)/n + z^2/4n^2)) / (1 + z^2/n)``, ``z`` the normal quantile.

    Mathematically the interval contains ``p`` (its upper end is exactly 1 at ``p = 1``);
    the ends are widened to ``p`` where float rounding would leave it outside."""
    if n <= 0:
        raise ValueError("a proportion needs n >= 1")
    z = float(special.ndtri(0.5 + level / 2))
    p = successes / n
    denominator = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denominator
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denominator
    return min(p, max(0.0, centre - half)), max(p, min(1.0, centre + half))


def mean_interval(values: np.ndarray, level: float = DEFAULT_LEVEL) -> tuple[float, float]:
    """Student-t interval ``mean -+ t_{n-1} * s / sqrt(n)`` for the mean of ``values``.

    One value bounds nothing about the population mean (``s`` is undefined), so fewer than
    two are refused rather than given an interval of zero width."""
    values = np.asarray(values, dtype=np.float64)
    n = values.size
    if n < 2:
        raise BadInput(
            f"a Student-t interval of a mean needs at least 2 values, got {n}: "
            "evaluate at least 2 inputs (--samples N >= 2)"
        )
    mean = float(values.mean())
    half = float(special.stdtrit(n - 1, 0.5 + level / 2) * values.std(ddof=1) / math.sqrt(n))
    return mean - half, mean + half
