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

Residual blocks (declared with
:func:`~semirobust.empirical.bounds.register_residual_block`) are walked through their
parts: the clean pass runs ``pre``, the branch, the shortcut and the activation, each
BatchNorm inside (branch, shortcut projection, shared pre-activation) replaced by the map
it applied, and the bounds see the block as :class:`FixedResidual` with those parts, whose
interval and linear rules are the residual block's. The bounds are therefore of the
network the clean pass evaluated: for inputs in the threat set, every BatchNorm applying
the clean batch's affine map (eval mode: the model itself). A Dropout in train mode is
the identity for the bounds (the clean pass still drops), so its certified term is that of
the network without dropout; any other layer holding a BatchNorm in train mode (a traced
graph, an unregistered block) is refused, since its bounds would read running statistics
the clean pass did not apply.

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
from torch.nn.modules.batchnorm import _BatchNorm

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
from semirobust.empirical.bounds.residual import (
    ResidualParts,
    register_residual_block,
    residual_parts,
)
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


class FixedResidual(nn.Module):
    """A residual block ``activation(branch(p) + shortcut(p))``, ``p = pre(h)``, made of the
    clean pass's layers (BatchNorms as the affine maps they applied)."""

    def __init__(self, branch: nn.Module, shortcut: nn.Module, activation: nn.Module | None,
                 pre: nn.Module | None) -> None:
        super().__init__()
        self.branch, self.shortcut, self.activation, self.pre = branch, shortcut, activation, pre

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        p = h if self.pre is None else self.pre(h)
        s = self.branch(p) + self.shortcut(p)
        return s if self.activation is None else self.activation(s)


register_residual_block(
    FixedResidual,
    lambda block: ResidualParts(block.branch, block.shortcut, block.activation, block.pre),
)


def clean_pass(model: nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, list[nn.Module]]:
    """The clean logits (BatchNorm in train mode updating its running statistics) and the
    model's primitive layers with every BatchNorm replaced by the affine map it applied,
    inside residual blocks too (module docstring)."""
    return _clean_layers(model, x)


def _clean_layers(module: nn.Module, h: torch.Tensor) -> tuple[torch.Tensor, list[nn.Module]]:
    layers: list[nn.Module] = []
    for layer in primitive_layers(module):
        parts = residual_parts(layer)
        if parts is not None:
            h, fixed = _clean_block(parts, h)
            layers.append(fixed)
        elif isinstance(layer, BATCH_NORM_TYPES):
            affine = _batch_statistics_affine(layer, h)
            h = layer(h)  # the clean pass itself (and the running statistics' update)
            layers.append(affine)
        else:
            _require_no_batch_statistics(layer)
            h = layer(h)
            dropping = isinstance(layer, nn.Dropout) and layer.training
            layers.append(nn.Identity() if dropping else layer)
    return h, layers


def _clean_block(parts: ResidualParts, h: torch.Tensor) -> tuple[torch.Tensor, FixedResidual]:
    """One residual block's clean pass through its parts, and the block as the bounds see it."""
    pre = None
    if parts.pre is not None:
        h, pre_layers = _clean_layers(parts.pre, h)
        pre = nn.Sequential(*pre_layers)
    branch_out, branch = _clean_layers(parts.branch, h)
    shortcut_out, shortcut = _clean_layers(parts.shortcut, h)
    out = branch_out + shortcut_out
    if parts.activation is not None:
        _require_no_batch_statistics(parts.activation)
        out = parts.activation(out)
    return out, FixedResidual(nn.Sequential(*branch), nn.Sequential(*shortcut), parts.activation, pre)


def _require_no_batch_statistics(layer: nn.Module) -> None:
    """Refuse a layer whose inside the clean pass cannot see with a BatchNorm in train mode."""
    if any(isinstance(m, _BatchNorm) and m.training for m in layer.modules()):
        raise BadInput(
            f"certified training cannot bound {type(layer).__name__}: it holds a BatchNorm in "
            "train mode inside a layer the training bounds do not walk through (a sequence of "
            "layers and registered residual blocks); register its structure with "
            "register_residual_block, or freeze that part"
        )


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
