"""Boxes ``[lower, upper]`` of activations and the input box of a threat model.

A :class:`Box` holds element-wise bounds of a batch of tensors: every input in the
threat set of sample ``i`` maps to a point of ``[lower_i, upper_i]`` (a sound enclosure).
The input box of THEORY.md section 1's threat set ``S`` intersected with ``[0,1]``:

* l-inf: ``[max(x - eps, 0), min(x + eps, 1)]``, the exact set;
* l2: the same box, which *contains* the l2 ball of radius ``eps`` (sound, looser).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from semirobust.empirical.attacks.threat import ThreatModel
from semirobust.errors import BadInput

INPUT_BOX_DESCRIPTION = {
    "linf": "the l-inf ball intersected with [0,1] (exact)",
    "l2": "the l-inf box containing the l2 ball, intersected with [0,1] (sound, looser)",
}


@dataclass(frozen=True)
class Box:
    """Element-wise bounds ``lower <= h <= upper`` of a batch, shape ``(batch, *features)``."""

    lower: torch.Tensor
    upper: torch.Tensor

    def __post_init__(self) -> None:
        if self.lower.shape != self.upper.shape:
            raise ValueError(
                f"box bounds differ in shape: {tuple(self.lower.shape)} vs "
                f"{tuple(self.upper.shape)}"
            )

    @property
    def centre(self) -> torch.Tensor:
        return (self.upper + self.lower) / 2

    @property
    def radius(self) -> torch.Tensor:
        return (self.upper - self.lower) / 2

    @property
    def shape(self) -> torch.Size:
        return self.lower.shape

    def intersect(self, other: Box) -> Box:
        """Both boxes are sound, so their intersection is too (and at least as tight)."""
        return Box(torch.maximum(self.lower, other.lower), torch.minimum(self.upper, other.upper))

    def map_monotone(self, fn) -> Box:
        """``[fn(lower), fn(upper)]`` for ``fn`` non-decreasing in every input coordinate."""
        return Box(fn(self.lower), fn(self.upper))

    def contains(self, h: torch.Tensor, tol: float = 0.0) -> torch.Tensor:
        """Per sample: does ``h`` lie in the box (up to ``tol``)?"""
        inside = (h >= self.lower - tol) & (h <= self.upper + tol)
        return inside.flatten(start_dim=1).all(dim=1)


def input_box(x: torch.Tensor, threat: ThreatModel) -> Box:
    """The box of inputs reachable from ``x`` under ``threat``, clipped to ``[0,1]``."""
    if not isinstance(threat, ThreatModel):
        raise BadInput(f"threat must be a ThreatModel, got {type(threat).__name__}")
    if x.numel() and (x.min() < 0 or x.max() > 1):
        raise BadInput("inputs must lie in [0,1] (the threat model's space)")
    return Box((x - threat.eps).clamp(0.0, 1.0), (x + threat.eps).clamp(0.0, 1.0))


def threat_point64(x_adv: torch.Tensor, x: torch.Tensor, threat: ThreatModel) -> torch.Tensor:
    """``x_adv`` moved, in float64 on the CPU, exactly into the threat set around ``x``.

    An attack's float32 point can sit a rounding error outside the ball; evaluating the
    margin there could put the "attacked" value below a certified bound for no real
    reason. The delta is clipped (l-inf) or rescaled (l2) to ``eps`` in float64, then the
    point clipped to ``[0,1]`` (which only moves coordinates towards ``x``).
    """
    x64 = x.detach().cpu().double()
    delta = x_adv.detach().cpu().double() - x64
    if threat.norm == "l2":
        norms = delta.flatten(start_dim=1).norm(dim=1).clamp_min(1e-300)
        shrink = 1.0 - 4 * torch.finfo(torch.float64).eps  # stay inside despite rounding
        factor = (shrink * threat.eps / norms).clamp(max=1.0)
        delta = delta * factor.view(-1, *([1] * (delta.dim() - 1)))
    else:
        delta = delta.clamp(-threat.eps, threat.eps)
    return (x64 + delta).clamp(0.0, 1.0)
