"""Linear relaxation bounds (CROWN-style, Zhang et al. 2018): one backward rule per layer.

To bound ``c^T g(h)`` from below for a network ``g = g_m o ... o g_1`` and ``h`` in a box,
walk backwards carrying a coefficient tensor ``A`` (initially ``c``) and a constant:

* affine ``g_i(h) = J h + b``: ``A <- A J`` (a vector-Jacobian product) and the constant
  gains ``A b``; exact;
* ReLU with pre-activation bounds ``[l, u]``: on unstable neurons (``l < 0 < u``)
  ``relu(z) <= u (z - l) / (u - l)`` and ``relu(z) >= alpha z`` with ``alpha = 1`` if
  ``u > -l`` else ``0``; positive coefficients take the lower line, negative the upper;
* max-pooling (any kernel, stride, padding and dilation; not ``ceil_mode``), per window
  ``w``: ``max_w h >= h_j*`` for ``j*`` the window's input with the largest lower bound,
  and ``max_w h <= max_w u`` unless ``l_j* >= u_i`` for every other ``i`` of the window,
  where the max *is* ``h_j*``; each window's coefficient goes to its ``j*`` (where
  windows overlap, the coefficients of an input add up).

At the input box ``[l, u]`` the bound is ``const + sum(A+ * l + A- * u)``. The
pre-activation bounds the relaxations need come from interval propagation
(``intermediate="ibp"``, CROWN-IBP) or from this same backward pass run for every
neuron of every layer that feeds a ReLU or max-pool (``intermediate="crown"``, full
CROWN, intersected with the interval box). Upper bounds are ``-lower(-c)``.

Layer types without a backward rule (residual blocks) are refused with a
:class:`BadInput` that points to interval propagation.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from semirobust.empirical.bounds.box import Box
from semirobust.empirical.bounds.interval import propagate_interval
from semirobust.empirical.errors import BadInput
from semirobust.empirical.layers import AFFINE_TYPES, is_affine, unsupported

# ``rule(module, A, input_box) -> (A_in, constant)``: A is (batch, specs, *output shape),
# A_in is (batch, specs, *input shape), constant is (batch, specs).
BackwardRule = Callable[[nn.Module, torch.Tensor, Box], tuple[torch.Tensor, torch.Tensor]]
_BACKWARD_RULES: dict[type[nn.Module], BackwardRule] = {}

INTERMEDIATE_CHOICES = ("ibp", "crown")
SPEC_ELEMENT_BUDGET = 2**23  # elements of one coefficient tensor when bounding many neurons


def register_backward_rule(module_type: type[nn.Module]) -> Callable[[BackwardRule], BackwardRule]:
    """Decorator: the linear-relaxation rule for ``module_type`` and its subclasses."""

    def decorate(rule: BackwardRule) -> BackwardRule:
        _BACKWARD_RULES[module_type] = rule
        return rule

    return decorate


def has_backward_rule(module: nn.Module) -> bool:
    return any(cls in _BACKWARD_RULES for cls in type(module).__mro__)


def backward_rule_for(module: nn.Module) -> BackwardRule:
    for cls in type(module).__mro__:
        if cls in _BACKWARD_RULES:
            return _BACKWARD_RULES[cls]
    raise unsupported(
        module,
        "the linear relaxation (CROWN)",
        [t.__name__ for t in _BACKWARD_RULES],
        'Use method="ibp" for this network, or register a rule with register_backward_rule.',
    )


def backward(
    layers: Sequence[nn.Module], boxes: Sequence[Box], coefficients: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Carry ``coefficients`` (on the last layer's output) back to the first layer's input.

    ``boxes[i]`` bounds the input of ``layers[i]``. Returns ``(A, constant)`` with
    ``coefficients . g(h) >= A . h + constant`` for every ``h`` whose intermediate
    values lie in their boxes.
    """
    constant = coefficients.new_zeros(coefficients.shape[:2])
    for layer, box in zip(reversed(layers), reversed(boxes), strict=True):
        coefficients, offset = backward_rule_for(layer)(layer, coefficients, box)
        constant = constant + offset
    return coefficients, constant


def concretize(coefficients: torch.Tensor, constant: torch.Tensor, box: Box) -> torch.Tensor:
    """``min_{h in box} A . h + constant`` per sample and spec: ``sum(A+ l + A- u) + const``."""
    lower = box.lower.unsqueeze(1)
    upper = box.upper.unsqueeze(1)
    value = coefficients.clamp(min=0) * lower + coefficients.clamp(max=0) * upper
    return value.flatten(start_dim=2).sum(dim=2) + constant


def layer_input_boxes(layers: Sequence[nn.Module], box: Box, intermediate: str) -> list[Box]:
    """The box of every layer's input, and of the last output, for inputs in ``box``.

    Boxes come from interval propagation; with ``intermediate="crown"`` the output of an
    affine layer that feeds a nonlinear one is tightened by a backward pass per neuron
    (before a ReLU whose output feeds an affine layer, only the neurons the interval box
    leaves unstable in some sample: a stable neuron's relaxation is already exact; before
    a ReLU feeding a max-pool every neuron, as the pool's relaxation reads the bounds).
    """
    if intermediate not in INTERMEDIATE_CHOICES:
        raise BadInput(
            f"intermediate={intermediate!r}: expected one of {', '.join(INTERMEDIATE_CHOICES)}"
        )
    boxes = [box]
    for index, layer in enumerate(layers):
        out = propagate_interval(layer, boxes[-1])
        following = layers[index + 1] if index + 1 < len(layers) else None
        if (
            intermediate == "crown"
            and is_affine(layer)
            and following is not None
            and not is_affine(following)
        ):
            after = layers[index + 2] if index + 2 < len(layers) else None
            only_unstable = isinstance(following, nn.ReLU) and (after is None or is_affine(after))
            selected = _unstable_neurons(out) if only_unstable else None
            out = out.intersect(neuron_bounds(layers[: index + 1], boxes, out, selected))
        boxes.append(out)
    return boxes


def _unstable_neurons(box: Box) -> torch.Tensor:
    """Flat indices of the neurons with ``lower < 0 < upper`` in at least one sample."""
    return ((box.lower < 0) & (box.upper > 0)).flatten(start_dim=1).any(dim=0).nonzero().squeeze(1)


def neuron_bounds(
    layers: Sequence[nn.Module],
    boxes: Sequence[Box],
    like: Box,
    selected: torch.Tensor | None = None,
) -> Box:
    """Backward bounds of the neurons of ``layers``' output (flat indices ``selected``, all
    by default; the others keep ``like``'s bounds), in chunks of neurons."""
    batch, shape = like.shape[0], like.shape[1:]
    neurons = shape.numel()
    selected = torch.arange(neurons) if selected is None else selected
    widest = max(b.shape[1:].numel() for b in boxes)
    chunk = max(1, SPEC_ELEMENT_BUDGET // (2 * batch * widest))
    lower, upper = like.lower.flatten(start_dim=1).clone(), like.upper.flatten(start_dim=1).clone()
    for start in range(0, selected.numel(), chunk):
        indices = selected[start : start + chunk]
        unit = torch.zeros((indices.numel(), neurons), dtype=like.lower.dtype)
        unit[torch.arange(indices.numel()), indices] = 1.0
        unit = unit.view(-1, *shape)
        specs = torch.cat([unit, -unit]).unsqueeze(0).expand(batch, *([-1] * (1 + len(shape))))
        coefficients, constant = backward(layers, boxes[: len(layers)], specs)
        bound = concretize(coefficients, constant, boxes[0])
        lower[:, indices] = bound[:, : indices.numel()]
        upper[:, indices] = -bound[:, indices.numel() :]
    return Box(lower.view(like.shape), upper.view(like.shape))


def _affine_backward(
    module: nn.Module, coefficients: torch.Tensor, box: Box
) -> tuple[torch.Tensor, torch.Tensor]:
    """``A <- A J`` by a vector-Jacobian product at 0; the constant gains ``A . g(0)``."""
    batch, specs = coefficients.shape[:2]
    zeros = coefficients.new_zeros((batch * specs, *box.shape[1:]))
    offset, transpose = torch.func.vjp(module, zeros)
    (pulled,) = transpose(coefficients.reshape(batch * specs, *coefficients.shape[2:]))
    constant = (coefficients * offset[:1].unsqueeze(0)).flatten(start_dim=2).sum(dim=2)
    return pulled.view(batch, specs, *box.shape[1:]).detach(), constant.detach()


@register_backward_rule(nn.Linear)
def _linear_backward(
    module: nn.Linear, coefficients: torch.Tensor, box: Box
) -> tuple[torch.Tensor, torch.Tensor]:
    pulled = coefficients @ module.weight
    constant = (
        coefficients @ module.bias
        if module.bias is not None
        else coefficients.new_zeros(coefficients.shape[:2])
    )
    return pulled, constant


for _type in AFFINE_TYPES:
    if _type is not nn.Linear:
        register_backward_rule(_type)(_affine_backward)


@register_backward_rule(nn.ReLU)
def _relu_backward(
    module: nn.ReLU, coefficients: torch.Tensor, box: Box
) -> tuple[torch.Tensor, torch.Tensor]:
    lower, upper = box.lower, box.upper
    active, inactive = lower >= 0, upper <= 0
    unstable = ~(active | inactive)
    width = torch.where(unstable, upper - lower, torch.ones_like(upper))
    upper_slope = torch.where(active, 1.0, torch.where(unstable, upper / width, 0.0))
    upper_intercept = torch.where(unstable, -upper * lower / width, 0.0)
    lower_slope = torch.where(
        active, 1.0, torch.where(unstable, (upper > -lower).to(upper.dtype), 0.0)
    )
    positive, negative = coefficients.clamp(min=0), coefficients.clamp(max=0)
    pulled = positive * lower_slope.unsqueeze(1) + negative * upper_slope.unsqueeze(1)
    constant = (negative * upper_intercept.unsqueeze(1)).flatten(start_dim=2).sum(dim=2)
    return pulled, constant


@register_backward_rule(nn.MaxPool2d)
def _max_pool_backward(
    module: nn.MaxPool2d, coefficients: torch.Tensor, box: Box
) -> tuple[torch.Tensor, torch.Tensor]:
    if module.ceil_mode:
        raise BadInput(
            f"the linear relaxation handles MaxPool2d without ceil_mode only, got {module}; "
            'use method="ibp"'
        )
    lower, upper = _pool_windows(module, box.lower), _pool_windows(module, box.upper)
    chosen = lower.argmax(dim=2, keepdim=True)  # j*: the largest lower bound of each window
    others_upper = upper.scatter(2, chosen, float("-inf")).amax(dim=2)
    dominated = lower.gather(2, chosen).squeeze(2) >= others_upper
    window_upper = upper.amax(dim=2)
    batch, specs, channels = coefficients.shape[:3]
    flat = coefficients.flatten(start_dim=3)  # (batch, specs, channels, windows)
    positive, negative = flat.clamp(min=0), flat.clamp(max=0)
    on_chosen = positive + negative * dominated.unsqueeze(1)
    constant = (negative * (~dominated).unsqueeze(1) * window_upper.unsqueeze(1)).sum(dim=(2, 3))
    positions = torch.arange(box.shape[2:].numel(), dtype=box.lower.dtype)
    positions = _pool_windows(module, positions.view(1, 1, *box.shape[2:]))
    targets = positions.expand(batch, channels, -1, -1).gather(2, chosen).squeeze(2).long()
    pulled = flat.new_zeros((batch, specs, channels, box.shape[2:].numel()))
    pulled.scatter_add_(3, targets.unsqueeze(1).expand(-1, specs, -1, -1), on_chosen)
    return pulled.view(batch, specs, *box.shape[1:]), constant


def _pool_windows(module: nn.MaxPool2d, values: torch.Tensor) -> torch.Tensor:
    """``(batch, channels, kernel size, windows)``: the inputs of every pooling window in
    the module's output order, padding as ``-inf`` (never a window's max)."""
    pair = nn.modules.utils._pair
    kernel, padding = pair(module.kernel_size), pair(module.padding)
    stride = pair(module.stride if module.stride is not None else module.kernel_size)
    padded = F.pad(values, (padding[1], padding[1], padding[0], padding[0]), value=float("-inf"))
    columns = F.unfold(padded, kernel, dilation=pair(module.dilation), stride=stride)
    return columns.view(values.shape[0], values.shape[1], kernel[0] * kernel[1], -1)
