"""Exact worst cases of one-dimensional piecewise-linear networks (THEORY.md 7: "exact").

For a network of ``Linear``, ``ReLU`` and ``Flatten`` layers on a scalar input, every
activation is affine in the input between consecutive *breakpoints* (where some ReLU's
input crosses 0). :func:`breakpoints` finds all of them on an interval, layer by layer:
before each ReLU the previous ones' breakpoints are known, so its input is affine on each
piece and its zero crossings are the roots of affine functions.

A two-class margin ``m = z_y - z_{1-y}`` (or a difference of two such margins, A2's gap)
is affine on each piece of the union of the networks' breakpoints, so its infimum over
the threat interval ``[max(0, x - eps), min(1, x + eps)]`` is its minimum over those
points, and a distance ``||f(x') - f(x)||_2`` (convex on each piece) has its supremum at
them: :func:`extremum` evaluates exactly (up to float64 rounding), with no search.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import nn

from semirobust.errors import BadInput

ALLOWED = (nn.Linear, nn.ReLU, nn.Flatten, nn.Identity)


def _layers(model: nn.Module) -> list[nn.Module]:
    if isinstance(model, nn.Sequential):
        return [leaf for child in model for leaf in _layers(child)]
    if not isinstance(model, ALLOWED):
        raise BadInput(f"exact 1-D evaluation supports {', '.join(t.__name__ for t in ALLOWED)}; "
                       f"got {type(model).__name__}")
    return [model]


def _evaluate(layers: Sequence[nn.Module], points: torch.Tensor) -> torch.Tensor:
    h = points.view(-1, 1).double()
    with torch.no_grad():
        for layer in layers:
            h = layer.double()(h)
    return h


def breakpoints(model: nn.Module, low: float, high: float) -> list[float]:
    """``low``, ``high`` and every point between them where an activation of ``model``
    (scalar input) changes slope, sorted."""
    layers = _layers(model)
    points = sorted({float(low), float(high)})
    for index, layer in enumerate(layers):
        if not isinstance(layer, nn.ReLU):
            continue
        values = _evaluate(layers[:index], torch.tensor(points, dtype=torch.float64))
        found = set(points)
        for k in range(len(points) - 1):
            left, right = values[k], values[k + 1]
            crossing = (left * right) < 0
            for unit in torch.nonzero(crossing).flatten().tolist():
                t = float(left[unit] / (left[unit] - right[unit]))
                found.add(points[k] + t * (points[k + 1] - points[k]))
        points = sorted(found)
    return points


def threat_interval(x: float, eps: float) -> tuple[float, float]:
    """The l-inf (= l2) ball of radius ``eps`` around a scalar input, clipped to [0, 1]."""
    return max(0.0, x - eps), min(1.0, x + eps)


def extremum(models: Sequence[nn.Module], value: Callable[..., torch.Tensor], x: float,
             eps: float, *, largest: bool = False) -> float:
    """``inf`` (or ``sup`` if ``largest``) over ``x' in threat_interval(x, eps)`` of
    ``value(*[model(x') for model in models])``, which must be affine (for ``inf``) or
    convex (for ``sup``) on each piece where every model is affine."""
    low, high = threat_interval(x, eps)
    points = sorted({p for model in models for p in breakpoints(model, low, high)})
    grid = torch.tensor(points, dtype=torch.float64)
    values = value(*[_evaluate(_layers(model), grid) for model in models])
    return float(values.max() if largest else values.min())


def margin(logits: torch.Tensor, label: int) -> torch.Tensor:
    """The two-class margin ``z_y - z_{1-y}`` per row."""
    if logits.shape[1] != 2:
        raise BadInput(f"exact 1-D margins need two classes, got {logits.shape[1]} logits")
    return logits[:, label] - logits[:, 1 - label]
