"""Differentiable margin bounds for certified training (IBP, CROWN-IBP), on the model itself.

Certified training minimises a loss of the certified worst-case logits, so the bounds
must carry gradients to the weights and run in the model's own precision and device
(float32 on the GPU, say), unlike :func:`~semirobust.empirical.bounds.certified_margin_lower`,
which certifies a float64 copy. The same layer rules are used (interval and backward
rules are differentiable); only BatchNorm differs: in a training step each BatchNorm in
train mode normalises with the clean batch's statistics (Shi et al. 2021: bounds use the
statistics of the unperturbed batch), so the bounds see it as the per-channel affine map
``scale * h + shift`` with ``scale = gamma / sqrt(var_batch + eps)`` and
``shift = beta - mean_batch * scale`` (:class:`ChannelAffine`, gradients flowing through
the statistics as in the clean pass); a frozen BatchNorm (eval mode) uses its running
statistics. The clean forward pass that measures the statistics also updates the
running statistics, once per step, as ordinary training does.

The bound of the margin spec ``c_k = e_y - e_k`` is ``lower_k <= inf (z_y - z_k)``; the
worst-case logits ``-lower`` (0 at ``y``) enter the cross-entropy (Wong & Kolter 2018,
Gowal et al. 2018). ``crown-ibp`` mixes ``beta * CROWN-IBP + (1 - beta) * IBP`` (Zhang
et al. 2020); every mixture of two lower bounds with weights in ``[0, 1]`` is a lower bound.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from semirobust.empirical.attacks.threat import ThreatModel
from semirobust.empirical.bounds.box import Box
from semirobust.empirical.bounds.interval import propagate_interval, register_interval_rule
from semirobust.empirical.bounds.layer_rules import BATCH_NORM_TYPES, primitive_layers
from semirobust.empirical.bounds.linear import (
    backward,
    bound_layers,
    concretize,
    register_backward_rule,
)
from semirobust.empirical.bounds.residual import residual_parts
from semirobust.errors import BadInput

TRAINING_BOUNDS = ("ibp", "crown-ibp")


class ChannelAffine(nn.Module):
    """``scale * h + shift`` per channel (dimension 1): a BatchNorm with fixed statistics."""

    def __init__(self, scale: torch.Tensor, shift: torch.Tensor) -> None:
        super().__init__()
        self.scale, self.shift = scale, shift

    def _view(self, values: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
        return values.view(1, -1, *([1] * (like.dim() - 2)))

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return h * self._view(self.scale, h) + self._view(self.shift, h)


@register_interval_rule(ChannelAffine)
def _channel_affine_interval(module: ChannelAffine, box: Box) -> Box:
    centre = module(box.centre)
    radius = box.radius * module._view(module.scale.abs(), box.radius)
    return Box(centre - radius, centre + radius)


@register_backward_rule(ChannelAffine)
def _channel_affine_backward(
    module: ChannelAffine, coefficients: torch.Tensor, box: Box
) -> tuple[torch.Tensor, torch.Tensor]:
    view = module.scale.view(1, 1, -1, *([1] * (coefficients.dim() - 3)))
    shift = module.shift.view(1, 1, -1, *([1] * (coefficients.dim() - 3)))
    constant = (coefficients * shift).flatten(start_dim=2).sum(dim=2)
    return coefficients * view, constant


def _batch_statistics_affine(module: nn.Module, h: torch.Tensor) -> ChannelAffine:
    """A BatchNorm as :class:`ChannelAffine` with the statistics it normalises ``h`` by."""
    if module.training:
        dims = [0, *range(2, h.dim())]
        mean, var = h.mean(dim=dims), h.var(dim=dims, unbiased=False)
    else:
        mean, var = module.running_mean, module.running_var
    scale = torch.rsqrt(var + module.eps)
    if module.weight is not None:
        scale = scale * module.weight
    shift = -mean * scale
    if module.bias is not None:
        shift = shift + module.bias
    return ChannelAffine(scale, shift)


def clean_pass(model: nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, list[nn.Module]]:
    """The clean logits (BatchNorm in train mode updating its running statistics) and the
    model's primitive layers with every BatchNorm replaced by the affine map it applied."""
    layers: list[nn.Module] = []
    h = x
    for layer in primitive_layers(model):
        if residual_parts(layer) is not None:
            raise BadInput(
                f"certified training handles sequential networks; {type(layer).__name__} is a "
                "residual block, whose BatchNorm statistics the training bounds do not track yet"
            )
        if isinstance(layer, BATCH_NORM_TYPES):
            affine = _batch_statistics_affine(layer, h)
            h = layer(h)  # the clean pass itself (and the running statistics' update)
            layers.append(affine)
        else:
            h = layer(h)
            layers.append(layer)
    return h, layers


def margin_lower_bounds(
    layers: Sequence[nn.Module],
    x: torch.Tensor,
    y: torch.Tensor,
    threat: ThreatModel,
    method: str,
    beta: float = 1.0,
) -> torch.Tensor:
    """``(batch, K)``: differentiable lower bounds of ``z_y - z_k`` over the threat set
    (0 at ``k = y``); ``method`` ``ibp`` or ``crown-ibp`` (weight ``beta`` on CROWN-IBP)."""
    if method not in TRAINING_BOUNDS:
        raise BadInput(f"method={method!r}: expected one of {', '.join(TRAINING_BOUNDS)}")
    if not 0.0 <= beta <= 1.0:
        raise BadInput(f"beta must lie in [0, 1], got {beta}")
    box = Box((x - threat.eps).clamp(0.0, 1.0), (x + threat.eps).clamp(0.0, 1.0))
    last = layers[-1]
    if not isinstance(last, nn.Linear):
        raise BadInput(f"certified training needs a Linear last layer, got {type(last).__name__}")
    classes = last.out_features
    true = F.one_hot(y, classes).to(x.dtype)
    spec = true.unsqueeze(1) - torch.eye(classes, dtype=x.dtype, device=x.device).unsqueeze(0)
    # IBP up to the last layer, the spec through it (the interval of z_y - z_k, not of z).
    hidden = box
    for layer in layers[:-1]:
        hidden = propagate_interval(layer, hidden)
    ibp = concretize(*backward(layers[-1:], [hidden], spec), hidden)
    if method == "ibp" or beta == 0.0:
        return ibp
    bounded = bound_layers(layers, box, "ibp")
    crown_ibp = concretize(*backward(layers, bounded.bounds, spec), box)
    return beta * crown_ibp + (1.0 - beta) * ibp
