"""alpha-CROWN: linear relaxation bounds with optimised ReLU lower slopes (Xu et al. 2021).

CROWN (:mod:`semirobust.empirical.bounds.linear`) relaxes an unstable ReLU
(``l < 0 < u``) from below by ``relu(z) >= alpha z`` with the fixed choice
``alpha = 1[u > -l]``. Every ``alpha`` in ``[0, 1]`` gives a valid lower line on
``[l, u]``, hence a sound lower bound of the specification ``c^T F(x + delta)`` over
the threat set (the gamma sandwich's lower side, THEORY.md sections 2 and 7). alpha-CROWN
treats the slopes as free variables, one per sample, specification and unstable neuron,
and maximises the concretised bound by projected gradient ascent:

    alpha <- clip_[0,1](alpha + Adam step on d bound / d alpha)

from CROWN's slopes. Each step's bound is sound (its slopes lie in ``[0, 1]``), so the
best value seen per sample and specification is kept; the first step *is* CROWN, so the
result is never looser than CROWN. The pre-activation boxes the relaxations read are
CROWN's own (``intermediate="crown"``) and stay fixed: only the slopes of the final
specification's backward pass are optimised (auto_LiRPA additionally optimises slopes of
every intermediate bound, which is tighter and costs a backward pass per layer and step).
Residual blocks are handled like CROWN's: each ReLU inside a branch, a shortcut or after
the residual sum gets its own slopes.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import torch
from torch import nn

from semirobust.empirical.bounds.box import Box
from semirobust.empirical.bounds.linear import (
    BoundedLayers,
    CompoundBounds,
    LayerBounds,
    ResidualBounds,
    SlopedBox,
    backward,
    bound_layers,
    concretize,
)
from semirobust.errors import BadInput


@dataclass(frozen=True)
class AlphaSettings:
    """The slope optimisation: ``steps`` Adam steps of learning rate ``lr`` (projected to
    ``[0, 1]`` after each); ``steps = 0`` is CROWN."""

    steps: int = 20
    lr: float = 0.5

    def __post_init__(self) -> None:
        if self.steps < 0:
            raise BadInput(f"alpha-CROWN steps must be >= 0, got {self.steps}")
        if not self.lr > 0:
            raise BadInput(f"alpha-CROWN lr must be > 0, got {self.lr}")

    def to_dict(self) -> dict[str, object]:
        return {
            **asdict(self),
            "optimiser": "Adam, projected to [0,1]",
            "intermediate": "crown (fixed)",
            "initial_slopes": "crown: 1[u > -l]",
        }


DEFAULT_ALPHA = AlphaSettings()


@dataclass(frozen=True)
class AlphaResult:
    """The best bound per sample and spec, and what it cost."""

    lower: torch.Tensor
    crown: torch.Tensor
    steps: int
    seconds: float


def _initial_slope(box: Box, specs: int) -> torch.Tensor:
    """CROWN's slope ``1[u > -l]`` per neuron, repeated for every spec."""
    slope = (box.upper > -box.lower).to(box.lower.dtype).unsqueeze(1)
    return slope.expand(-1, specs, *([-1] * (box.lower.dim() - 1))).clone()


def _with_slopes(
    bounded: BoundedLayers, specs: int, slopes: list[torch.Tensor]
) -> tuple[LayerBounds, ...]:
    """``bounded.bounds`` with every ReLU's input box replaced by a :class:`SlopedBox`
    holding a new slope tensor (appended to ``slopes``), inside residual blocks too."""
    out: list[LayerBounds] = []
    for layer, bound in zip(bounded.layers, bounded.bounds, strict=True):
        if isinstance(bound, ResidualBounds):
            summed = bound.summed
            if isinstance(bound.activation, nn.ReLU):
                summed = _sloped(summed, specs, slopes)
            out.append(
                ResidualBounds(
                    BoundedLayers(
                        bound.branch.layers,
                        _with_slopes(bound.branch, specs, slopes),
                        bound.branch.output,
                    ),
                    BoundedLayers(
                        bound.shortcut.layers,
                        _with_slopes(bound.shortcut, specs, slopes),
                        bound.shortcut.output,
                    ),
                    bound.activation,
                    summed,
                    None
                    if bound.pre is None
                    else BoundedLayers(
                        bound.pre.layers, _with_slopes(bound.pre, specs, slopes), bound.pre.output
                    ),
                )
            )
        elif isinstance(bound, CompoundBounds):
            out.append(bound.sloped(lambda box: _sloped(box, specs, slopes)))
        elif isinstance(layer, nn.ReLU):
            out.append(_sloped(bound, specs, slopes))
        else:
            out.append(bound)
    return tuple(out)


def _sloped(box: Box, specs: int, slopes: list[torch.Tensor]) -> SlopedBox:
    slope = _initial_slope(box, specs).requires_grad_(True)
    slopes.append(slope)
    return SlopedBox(box.lower, box.upper, slope)


def alpha_crown_bound(
    layers: Sequence[nn.Module],
    box: Box,
    spec: torch.Tensor,
    settings: AlphaSettings = DEFAULT_ALPHA,
) -> AlphaResult:
    """Per sample and spec, a sound lower bound of ``spec . F(h)`` over ``h`` in ``box``
    (``F`` the composition of ``layers``, parameters not requiring gradients), the best
    over ``settings.steps`` projected Adam steps on the ReLU lower slopes from CROWN's."""
    started = time.perf_counter()
    with torch.no_grad():
        bounded = bound_layers(layers, box, "crown")
    slopes: list[torch.Tensor] = []
    sloped = _with_slopes(bounded, spec.shape[1], slopes)
    optimiser = torch.optim.Adam(slopes, lr=settings.lr) if slopes else None
    best = crown = None
    with torch.enable_grad():
        for step in range(settings.steps + 1):
            coefficients, constant = backward(layers, sloped, spec)
            value = concretize(coefficients, constant, box)
            best = value.detach() if best is None else torch.maximum(best, value.detach())
            if crown is None:
                crown = best
            if step == settings.steps or optimiser is None:
                break
            optimiser.zero_grad(set_to_none=True)
            (-value.sum()).backward()
            optimiser.step()
            with torch.no_grad():
                for slope in slopes:
                    slope.clamp_(0.0, 1.0)
    return AlphaResult(best, crown, settings.steps, time.perf_counter() - started)
