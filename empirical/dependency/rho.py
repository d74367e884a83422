"""The class-conditional dependency ``rho_j`` of THEORY.md section 2, over any estimator.

    rho_j = sum_y pi(y) * I(h_{j-1}; h_j | y),   pi(y) = n_y / n (empirical frequencies)

Per class, activations are standardised per feature (constant features dropped: a class
in which either layer is constant contributes MI 0, exactly), then the estimator runs on
that class's samples; an estimator with ``standardised_input = False`` (``edge-authors``)
gets the class's raw activations instead, constant features kept, and the same MI 0 for a
constant layer. Every number is a :class:`Measurement` of kind ``estimate`` that
names its estimator, settings and unit (THEORY.md caveat C2: the true MI of a
deterministic layer map is infinite, so any finite rho is a property of the estimator).

Confidence interval: half-sampling. Each replicate draws ``floor(n_y / 2)`` samples
without replacement in every class and recomputes rho; for a statistic that behaves like
a mean, a half-sample without replacement has the same variance as the full estimate
(``sigma^2 (1/m - 1/n) = sigma^2 / n`` at ``m = n/2``), so the interval is
``rho + quantiles(replicates - median(replicates))``. Unlike the bootstrap it never
duplicates a sample (duplicates wreck kNN estimators). It covers sampling variability
only, not the estimator's bias; the permutation baseline shows that bias at independence.

Permutation baseline: the same estimator on pairs shuffled within each class (``h_j``
rows permuted), i.e. at independence, where the true MI is 0.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from semirobust.empirical.dependency.estimator import DependenceEstimator, make_estimator
from semirobust.empirical.dependency.preprocess import standardise, validate_activations
from semirobust.empirical.dependency.reduce import Reduction
from semirobust.empirical.dependency.seeding import stream_generator
from semirobust.empirical.dependency.units import DIMENSIONLESS, check_information_unit, from_nats
from semirobust.errors import BadInput
from semirobust.theory.measurement import Kind, Measurement

STANDARDISATION = "per feature within each class; features constant within a class dropped"
RAW_INPUT = "none: each class's activations as given (float64), constant features kept"


class HighDimensionWarning(UserWarning):
    """The activations' dimension is high for the samples per class (see docs/dependency.md)."""


@dataclass(frozen=True)
class IntervalSettings:
    """Half-sampling interval: ``replicates`` resamples (0: no interval), two-sided ``level``."""

    replicates: int = 50
    level: float = 0.95

    def __post_init__(self) -> None:
        if not isinstance(self.replicates, int) or self.replicates < 0:
            raise BadInput(f"replicates={self.replicates!r}: expected an integer >= 0")
        if not isinstance(self.level, float) or not 0 < self.level < 1:
            raise BadInput(f"level={self.level!r}: expected a float in (0, 1)")

    def describe(self) -> str:
        if self.replicates == 0:
            return "none (replicates=0)"
        return f"{self.level:.0%} half-sampling, {self.replicates} replicates (sampling variability only)"


@dataclass(frozen=True)
class PairDependency:
    """One consecutive layer pair: its rho and, when asked, the independence baseline."""

    rho: Measurement
    independent: Measurement | None

    def to_dict(self) -> dict[str, Any]:
        return {"rho": self.rho.to_dict(), "independent": None if self.independent is None else self.independent.to_dict()}


def class_conditional_rho(
    h_prev: torch.Tensor,
    h_next: torch.Tensor,
    labels: torch.Tensor,
    estimator: str = "ksg",
    *,
    name: str = "rho_j",
    seed: int = 0,
    unit: str | None = None,
    replicates: int = 50,
    level: float = 0.95,
    reduction: str = "none",
    components: int | None = None,
    **estimator_settings: Any,
) -> Measurement:
    """``rho = sum_y pi(y) I(h_prev; h_next | y)`` with a half-sampling interval.

    ``unit``: ``bits`` (default for information estimators) or ``nats``; dependence
    measures (HSIC, CKA) are ``dimensionless`` and accept no information unit.
    """
    (pair,) = dependency_per_layer_pair(
        [h_prev, h_next], labels, estimator, names=[name], seed=seed, unit=unit,
        replicates=replicates, level=level, permutations=0, reduction=reduction,
        components=components, tensor_names=["h_prev", "h_next"], **estimator_settings,
    )
    return pair.rho


def permutation_baseline(
    h_prev: torch.Tensor,
    h_next: torch.Tensor,
    labels: torch.Tensor,
    estimator: str = "ksg",
    *,
    name: str = "rho_j",
    seed: int = 0,
    unit: str | None = None,
    permutations: int = 5,
    reduction: str = "none",
    components: int | None = None,
    **estimator_settings: Any,
) -> Measurement:
    """The same estimator on pairs shuffled within each class: its value at independence
    (true MI 0). Value: the mean over ``permutations``; interval: their range."""
    if not isinstance(permutations, int) or permutations < 1:
        raise BadInput(f"permutations={permutations!r}: expected an integer >= 1")
    (pair,) = dependency_per_layer_pair(
        [h_prev, h_next], labels, estimator, names=[name], seed=seed, unit=unit,
        replicates=0, permutations=permutations, reduction=reduction, components=components,
        tensor_names=["h_prev", "h_next"], **estimator_settings,
    )
    return pair.independent


def dependency_per_layer_pair(
    activations: Sequence[torch.Tensor],
    labels: torch.Tensor,
    estimator: str = "ksg",
    *,
    names: Sequence[str] | None = None,
    seed: int = 0,
    unit: str | None = None,
    replicates: int = 50,
    level: float = 0.95,
    permutations: int = 0,
    reduction: str = "none",
    components: int | None = None,
    tensor_names: Sequence[str] | None = None,
    **estimator_settings: Any,
) -> list[PairDependency]:
    """rho for every consecutive pair ``(activations[j-1], activations[j])``.

    The fast path: each layer is standardised and prepared (distance matrix, hash codes,
    Gram matrix) once per class and shared by the two pairs it belongs to and by every
    resample and permutation. ``names[i]`` names pair ``i`` (default ``rho_1, rho_2, ...``).
    """
    activations = list(activations)
    if len(activations) < 2:
        raise BadInput(f"activations: need at least 2 layers for a pair, got {len(activations)}")
    tensor_names = list(tensor_names or [f"activations[{i}]" for i in range(len(activations))])
    validate_activations(activations, labels, tensor_names)
    names = list(names or [f"rho_{i + 1}" for i in range(len(activations) - 1)])
    if len(names) != len(activations) - 1:
        raise BadInput(f"names: {len(names)} given for {len(activations) - 1} layer pairs")
    if not isinstance(permutations, int) or permutations < 0:
        raise BadInput(f"permutations={permutations!r}: expected an integer >= 0")
    method = make_estimator(estimator, **estimator_settings)
    unit = _resolve_unit(method, unit)
    interval = IntervalSettings(replicates=replicates, level=level)
    reducer = Reduction(reduction, components)
    layers = [reducer.apply(a, stream_generator(seed, "reduce", i)) for i, a in enumerate(activations)]

    classes, counts = torch.unique(labels.cpu(), sorted=True, return_counts=True)
    weights = counts.double() / counts.sum()
    pairs = len(layers) - 1
    full = np.zeros((pairs, len(classes)))
    halves = np.zeros((pairs, len(classes), interval.replicates))
    shuffled = np.zeros((pairs, len(classes), permutations))
    notes = [_Notes() for _ in range(pairs)]
    for c, (label, count) in enumerate(zip(classes.tolist(), counts.tolist())):
        members = (labels.cpu() == label).nonzero().squeeze(1).to(layers[0].device)
        _check_class_size(method, label, count, interval, 1, 1)
        previous = _prepare(method, layers[0][members], seed, label, 0)
        for j in range(pairs):
            current = _prepare(method, layers[j + 1][members], seed, label, j + 1)
            if previous is None or current is None:
                notes[j].constant_classes.append(label)
            else:
                state_x, d_x = previous
                state_y, d_y = current
                _check_class_size(method, label, count, interval, d_x, d_y)
                notes[j].add_warning(method.dimension_warning(d_x, d_y, count))
                estimates = _class_estimates(method, state_x, state_y, count, interval, permutations, seed, label, j)
                full[j, c], halves[j, c], shuffled[j, c] = estimates
            previous = current

    _warn_once(notes)
    return [
        _pair_result(
            method, names[j], unit, weights.numpy(), classes.tolist(), counts.tolist(),
            full[j], halves[j], shuffled[j], interval, reducer,
            (layers[j].shape[1], layers[j + 1].shape[1]), seed, notes[j],
        )
        for j in range(pairs)
    ]


def _warn_once(notes: Sequence[_Notes]) -> None:
    """One warning for the whole call: the first message and how many more (per class and
    layer pair) there are; every pair's settings keep its own messages."""
    messages = list(dict.fromkeys(m for note in notes for m in note.warnings))
    if messages:
        more = len(messages) - 1
        suffix = f" (and {more} more like it for other classes or layer pairs; each rho's settings list them)" if more else ""
        warnings.warn(messages[0] + suffix, HighDimensionWarning, stacklevel=3)


@dataclass
class _Notes:
    """What a pair's settings report besides the numbers."""

    constant_classes: list[int] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def add_warning(self, message: str | None) -> None:
        if message is not None and message not in self.warnings:
            self.warnings.append(message)


def _resolve_unit(method: DependenceEstimator, unit: str | None) -> str:
    if method.information:
        return check_information_unit(unit or "bits")
    if unit not in (None, DIMENSIONLESS):
        raise BadInput(
            f"unit {unit!r}: estimator {method.name!r} is a dependence measure, not "
            f"information; its unit is {DIMENSIONLESS!r}"
        )
    return DIMENSIONLESS


def _prepare(method: DependenceEstimator, x: torch.Tensor, seed: int, label: int, layer: int):
    """``(state, dimension)`` of one class's layer, or None if every feature is constant."""
    z = standardise(x)
    if z.shape[1] == 0:
        return None
    if not method.standardised_input:
        z = x.to(torch.float64)
    return method.prepare(z, stream_generator(seed, "prepare", label, layer)), z.shape[1]


class TooFewSamples(BadInput):
    """A class has fewer samples than the estimator needs; ``dimension_bound`` when it would
    have enough at dimensions (1, 1), i.e. when reducing the dimension is the fix."""

    def __init__(self, message: str, *, dimension_bound: bool) -> None:
        super().__init__(message)
        self.dimension_bound = dimension_bound


def _check_class_size(method, label: int, count: int, interval: IntervalSettings, d_x: int, d_y: int) -> None:
    """:class:`TooFewSamples` unless the class has the estimator's minimum (twice it with an interval)."""
    needed = method.min_samples(d_x, d_y)
    factor = 2 if interval.replicates else 1
    if count < factor * needed:
        reason = " (twice the minimum, for the half-sampling interval)" if factor == 2 else ""
        raise TooFewSamples(
            f"class {label} has {count} samples; estimator {method.name!r} needs at least "
            f"{factor * needed}{reason} at dimensions ({d_x}, {d_y})",
            dimension_bound=count >= factor * method.min_samples(1, 1),
        )


def _class_estimates(method, state_x, state_y, count, interval, permutations, seed, label, pair):
    """One class's full-sample estimate, its half-sample replicates and its permutations."""
    device = _device_of(state_x)
    full = method.estimate(state_x, state_y, None, None)
    resample = stream_generator(seed, "half", label, pair)
    halves = np.empty(interval.replicates)
    for b in range(interval.replicates):
        rows = torch.randperm(count, generator=resample)[: count // 2].sort().values.to(device)
        halves[b] = method.estimate(state_x, state_y, rows, rows)
    shuffle = stream_generator(seed, "permute", label, pair)
    shuffled = np.empty(permutations)
    for p in range(permutations):
        shuffled[p] = method.estimate(state_x, state_y, None, torch.randperm(count, generator=shuffle).to(device))
    return full, halves, shuffled


def _device_of(state) -> torch.device:
    if isinstance(state, torch.Tensor):
        return state.device
    if isinstance(state, (tuple, list)) and state:
        return _device_of(state[0])
    return torch.device("cpu")


def _pair_result(method, name, unit, weights, classes, counts, full, halves, shuffled,
                 interval, reducer, dims, seed, notes) -> PairDependency:
    convert = (lambda v: from_nats(v, unit)) if method.information else (lambda v: v)
    value = convert(float(weights @ full))
    settings = {
        **method.settings_dict(),
        "standardised": STANDARDISATION if method.standardised_input else RAW_INPUT,
        "dims": list(dims),
        "reduction": reducer.to_dict(),
        "class_weights": "empirical class frequency n_y / n",
        "n_per_class": {str(c): n for c, n in zip(classes, counts)},
        "per_class": {str(c): convert(float(v)) for c, v in zip(classes, full)},
        "constant_classes": notes.constant_classes,
        "interval": interval.describe(),
        "interval_method": "half-sampling" if interval.replicates else "none",
        "level": interval.level,
        "replicates": interval.replicates,
        "deterministic": method.deterministic,
        "seed": seed,
        "warnings": list(notes.warnings),
    }
    if interval.replicates:
        replicate_values = np.array([convert(float(v)) for v in weights @ halves])
        centred = replicate_values - np.median(replicate_values)
        tail = (1 - interval.level) / 2
        low, high = value + np.quantile(centred, tail), value + np.quantile(centred, 1 - tail)
    else:
        low = high = value
    rho = Measurement(name, value, (min(low, value), max(high, value)), Kind.ESTIMATE, method.name, unit, settings)
    independent = None
    if shuffled.shape[1]:
        baseline = np.array([convert(float(v)) for v in weights @ shuffled])
        independent = Measurement(
            f"{name}_independent", float(baseline.mean()), (float(baseline.min()), float(baseline.max())),
            Kind.ESTIMATE, method.name, unit,
            {**settings, "interval": f"range over {baseline.size} within-class permutations",
             "interval_method": "permutation range", "permutations": int(baseline.size),
             "per_class": {str(c): convert(float(v)) for c, v in zip(classes, shuffled.mean(axis=1))}},
        )
    return PairDependency(rho=rho, independent=independent)
