"""The ground-truth calibration suite: every estimator on samples with known MI.

Cases (:func:`calibration_cases`), each drawn ``repeats`` times with fresh samples:

* ``gaussian``: correlated Gaussian pairs, ``d`` in 1..64, several correlations;
* ``independent``: ``r = 0``, true MI 0;
* ``transformed``: a Gaussian pair passed through a per-coordinate bijection (the
  true MI is unchanged);
* ``mixture``: classes with different correlations; the truth is the class-weighted
  ``rho`` of THEORY.md section 2, estimated by :func:`class_conditional_rho`.

For each case and estimator: the mean estimate, its bias and relative bias against the
truth, the standard deviation over repeats and the mean time per estimate. The truth of
``smoothed`` is the noise-smoothed MI, known in closed form where every class is a
standardised Gaussian pair (``r -> r / (1 + sigma^2)``), unknown after a nonlinear
transform. Dependence measures (HSIC, CKA) have no MI truth; their rows report the value.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass

import numpy as np
import torch

from semirobust.empirical.dependency.estimator import (
    ESTIMATORS,
    DependenceEstimator,
    make_estimator,
)
from semirobust.empirical.dependency.ground_truth import (
    INVERTIBLE_TRANSFORMS,
    class_mixture,
    class_mixture_rho,
    gaussian_pair,
    gaussian_pair_mi,
)
from semirobust.empirical.dependency.rho import class_conditional_rho
from semirobust.empirical.dependency.smoothed import Smoothed

Sampler = Callable[[int, torch.Generator], tuple[torch.Tensor, torch.Tensor, torch.Tensor]]


@dataclass(frozen=True)
class CalibrationCase:
    """A named sampler ``(n, generator) -> (x, y, labels)`` and its true rho in nats;
    ``correlations``: the per-class correlations when every class is a Gaussian pair."""

    family: str
    label: str
    d: int
    truth_nats: float
    sample: Sampler
    correlations: tuple[float, ...] | None = None

    def truth_for(self, estimator: DependenceEstimator) -> float | None:
        """The value ``estimator`` should read here (nats), or None if unknown or not MI."""
        if not estimator.information:
            return None
        if isinstance(estimator, Smoothed):
            if self.correlations is None:
                return None
            shrink = 1 + estimator.settings.sigma**2
            return sum(gaussian_pair_mi(self.d, r / shrink) for r in self.correlations) / len(self.correlations)
        return self.truth_nats


@dataclass(frozen=True)
class CalibrationRow:
    family: str
    case: str
    d: int
    estimator: str
    unit: str
    truth: float | None
    mean: float
    bias: float | None
    relative_bias: float | None
    std: float
    seconds: float


DIMENSIONS = (1, 2, 4, 8, 16, 32, 64)
CORRELATIONS = (0.3, 0.6, 0.9)


def _single_class(x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    return x, y, torch.zeros(x.shape[0], dtype=torch.int64)


def calibration_cases(
    dimensions: Sequence[int] = DIMENSIONS, correlations: Sequence[float] = CORRELATIONS
) -> list[CalibrationCase]:
    """The suite's cases, in table order."""
    cases = []
    for d in dimensions:
        for r in correlations:
            cases.append(CalibrationCase(
                "gaussian", f"r={r}", d, gaussian_pair_mi(d, r),
                lambda n, g, d=d, r=r: _single_class(*gaussian_pair(n, d, r, g)), (r,),
            ))
    for d in (1, 4, 16, 64):
        cases.append(CalibrationCase(
            "independent", "r=0", d, 0.0, lambda n, g, d=d: _single_class(*gaussian_pair(n, d, 0.0, g)), (0.0,),
        ))
    for d in (1, 4):
        for name in ("cube", "exp"):
            f = INVERTIBLE_TRANSFORMS[name]
            cases.append(CalibrationCase(
                "transformed", f"{name}, r=0.8", d, gaussian_pair_mi(d, 0.8),
                lambda n, g, d=d, f=f: _single_class(*(f(t) for t in gaussian_pair(n, d, 0.8, g))),
            ))
    mixture = (0.0, 0.5, 0.9)
    cases.append(CalibrationCase(
        "mixture", "3 classes, r=0/0.5/0.9", 2, class_mixture_rho(2, mixture),
        lambda n, g: class_mixture(n // 3, 2, mixture, g), mixture,
    ))
    return cases


def run_calibration(
    estimators: Sequence[str] | None = None,
    *,
    n: int = 2000,
    repeats: int = 3,
    seed: int = 0,
    cases: Sequence[CalibrationCase] | None = None,
    device: torch.device | str = "cpu",
    progress: Callable[[str], None] | None = None,
) -> list[CalibrationRow]:
    """Every case x estimator, ``repeats`` fresh samples each; MI rows in nats."""
    estimators = list(estimators or sorted(ESTIMATORS))
    rows = []
    for case_index, case in enumerate(cases or calibration_cases()):
        samples = [
            tuple(t.to(device) for t in case.sample(n, torch.Generator().manual_seed(seed * 10007 + case_index * 101 + rep)))
            for rep in range(repeats)
        ]
        for name in estimators:
            information = ESTIMATORS[name].information
            truth = case.truth_for(make_estimator(name))
            values, seconds = [], []
            for x, y, labels in samples:
                start = time.perf_counter()
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    rho = class_conditional_rho(x, y, labels, name, unit="nats" if information else None, replicates=0, seed=seed)
                seconds.append(time.perf_counter() - start)
                values.append(rho.value)
            mean = float(np.mean(values))
            bias = None if truth is None else mean - truth
            rows.append(CalibrationRow(
                family=case.family, case=case.label, d=case.d, estimator=name, unit=rho.unit,
                truth=truth, mean=mean, bias=bias,
                relative_bias=None if truth in (None, 0.0) else bias / truth,
                std=float(np.std(values, ddof=1)) if len(values) > 1 else 0.0,
                seconds=float(np.mean(seconds)),
            ))
            if progress is not None:
                progress(f"{case.family} {case.label} d={case.d} {name}: {mean:.4g} (truth {truth})")
    return rows


def rows_to_dicts(rows: Sequence[CalibrationRow]) -> list[dict]:
    return [asdict(row) for row in rows]


def markdown_table(rows: Sequence[CalibrationRow]) -> str:
    """One line per case: the MI truth, then each estimator's ``mean (bias%, sd) time``
    (``smoothed`` relative to its own, smoothed truth)."""
    estimators = list(dict.fromkeys(row.estimator for row in rows))
    header = "| family | case | d | truth (nats) | " + " | ".join(estimators) + " |"
    lines = [header, "|" + "---|" * (4 + len(estimators))]
    by_case: dict[tuple, dict[str, CalibrationRow]] = {}
    for row in rows:
        by_case.setdefault((row.family, row.case, row.d), {})[row.estimator] = row
    for (family, case, d), cells in by_case.items():
        truth = next((c.truth for c in cells.values() if c.truth is not None and c.estimator != "smoothed"), None)
        rendered = [_cell(cells[e]) if e in cells else "" for e in estimators]
        lines.append(f"| {family} | {case} | {d} | {'' if truth is None else f'{truth:.3f}'} | " + " | ".join(rendered) + " |")
    return "\n".join(lines)


def _cell(row: CalibrationRow) -> str:
    relative = "" if row.relative_bias is None else f" {row.relative_bias:+.0%}"
    return f"{row.mean:.3f}{relative} (sd {row.std:.3f}) {row.seconds * 1000:.0f} ms"
