"""Linear relaxation bounds (CROWN-style, Zhang et al. 2018): one backward rule per layer.

To bound ``c^T g(h)`` from below for a network ``g = g_m o ... o g_1`` and ``h`` in a box,
walk backwards carrying a coefficient tensor ``A`` (initially ``c``) and a constant:

* affine ``g_i(h) = J h + b``: ``A <- A J`` (a vector-Jacobian product) and the constant
  gains ``A b``; exact;
* ReLU with pre-activation bounds ``[l, u]``: on unstable neurons (``l < 0 < u``)
  ``relu(z) <= u (z - l) / (u - l)`` and ``relu(z) >= alpha z`` with ``alpha = 1`` if
  ``u > -l`` else ``0`` (any ``alpha`` in ``[0, 1]`` is sound: alpha-CROWN passes its
  optimised slopes in a :class:`SlopedBox`); positive coefficients take the lower line,
  negative the upper;
* max-pooling (any kernel, stride, padding and dilation; not ``ceil_mode``), per window
  ``w``: ``max_w h >= h_j*`` for ``j*`` the window's input with the largest lower bound,
  and ``max_w h <= max_w u`` unless ``l_j* >= u_i`` for every other ``i`` of the window,
  where the max *is* ``h_j*``; each window's coefficient goes to its ``j*`` (where
  windows overlap, the coefficients of an input add up);
* residual block ``act(s)``, ``s = branch(h) + shortcut(h)`` (declared with
  :func:`~semirobust.empirical.bounds.register_residual_block`): ``A`` goes through the
  activation's rule with the box of ``s``, giving ``A_s``; then
  ``A_s . s = A_s . branch(h) + A_s . shortcut(h)``, each term carried back through its
  own layers (their rules, their own intermediate bounds) to ``h``; the block's
  coefficient on ``h`` is the sum of the two results, its constant the sum of all three.
  A block's ``pre`` (a pre-activation shared by both paths) is passed once, after the
  two results are added;
* a layer with inner structure (a traced ``fx.GraphModule``, registered with
  :func:`register_compound_rule` by :mod:`semirobust.empirical.bounds.graph_linear`) carries
  the coefficients through its own nodes (:class:`CompoundBounds`).

At the input box ``[l, u]`` the bound is ``const + sum(A+ * l + A- * u)``. The
pre-activation bounds the relaxations need, inside residual branches too, come from
interval propagation from each block's input box (``intermediate="ibp"``, CROWN-IBP) or
from this same backward pass, run back to the network's input for every neuron of every
layer (and every residual sum) that feeds a ReLU or max-pool (``intermediate="crown"``,
full CROWN), intersected with the interval box. Upper bounds are ``-lower(-c)``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from functools import partial

import torch
import torch.nn.functional as F
from torch import nn

from semirobust.empirical.bounds.box import Box
from semirobust.empirical.bounds.interval import propagate_interval
from semirobust.empirical.bounds.layer_rules import (
    AFFINE_TYPES,
    LayerRules,
    is_affine,
    primitive_layers,
)
from semirobust.empirical.bounds.residual import ResidualParts, residual_parts
from semirobust.errors import BadInput

# ``rule(module, A, input_box) -> (A_in, constant)``: A is (batch, specs, *output shape),
# A_in is (batch, specs, *input shape), constant is (batch, specs).
BackwardRule = Callable[[nn.Module, torch.Tensor, Box], tuple[torch.Tensor, torch.Tensor]]
_BACKWARD_RULES: LayerRules[BackwardRule] = LayerRules(
    "the linear relaxation (CROWN)",
    'Use method="ibp" for this network, or register a rule with register_backward_rule '
    "(a residual block: register_residual_block).",
)
#: Decorator: the linear-relaxation rule for a type and its subclasses.
register_backward_rule = _BACKWARD_RULES.register
has_backward_rule = _BACKWARD_RULES.has
backward_rule_for = _BACKWARD_RULES.rule_for

INTERMEDIATE_CHOICES = ("ibp", "crown")
SPEC_ELEMENT_BUDGET = 2**23  # elements of one coefficient tensor when bounding many neurons


def backward(
    layers: Sequence[nn.Module], bounds: Sequence[LayerBounds], coefficients: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Carry ``coefficients`` (on the last layer's output) back to the first layer's input.

    ``bounds[i]`` is what ``layers[i]``'s relaxation reads: its input box, or
    :class:`ResidualBounds` for a residual block. Returns ``(A, constant)`` with
    ``coefficients . g(h) >= A . h + constant`` for every ``h`` whose intermediate
    values lie in their boxes.
    """
    constant = coefficients.new_zeros(coefficients.shape[:2])
    for layer, bound in zip(reversed(layers), reversed(bounds), strict=True):
        if isinstance(bound, ResidualBounds):
            coefficients, offset = _residual_backward(bound, coefficients)
        elif isinstance(bound, CompoundBounds):
            coefficients, offset = bound.pull(coefficients)
        else:
            coefficients, offset = backward_rule_for(layer)(layer, coefficients, bound)
        constant = constant + offset
    return coefficients, constant


def concretize(coefficients: torch.Tensor, constant: torch.Tensor, box: Box) -> torch.Tensor:
    """``min_{h in box} A . h + constant`` per sample and spec: ``sum(A+ l + A- u) + const``."""
    lower = box.lower.unsqueeze(1)
    upper = box.upper.unsqueeze(1)
    value = coefficients.clamp(min=0) * lower + coefficients.clamp(max=0) * upper
    return value.flatten(start_dim=2).sum(dim=2) + constant


@dataclass(frozen=True)
class BoundedLayers:
    """Primitive layers in forward order with what each relaxation reads: ``bounds[i]``
    for ``layers[i]`` (its input box, or :class:`ResidualBounds` for a residual block);
    ``output`` is the box of the last layer's output."""

    layers: Sequence[nn.Module]
    bounds: Sequence[LayerBounds]
    output: Box


@dataclass(frozen=True)
class ResidualBounds:
    """What a residual block's relaxation reads: its branch and its shortcut with their
    own bounds (both from the box of ``pre(h)``, the block's input box when it has no
    ``pre``), its activation, the box of the sum ``s = branch + shortcut`` that the
    activation's relaxation reads, and the shared ``pre`` layers with their bounds."""

    branch: BoundedLayers
    shortcut: BoundedLayers
    activation: nn.Module | None
    summed: Box
    pre: BoundedLayers | None = None


@dataclass(frozen=True)
class SlopedBox(Box):
    """A ReLU's input box with the lower slopes its relaxation uses on unstable neurons:
    ``relu(z) >= slope * z`` holds on ``[l, u]`` for every slope in ``[0, 1]`` (the line
    lies below ``relu`` at both ends of the interval and meets it at 0), so any
    ``slope`` of shape ``(batch, specs, *neurons)`` in ``[0, 1]`` gives a sound bound
    (alpha-CROWN, :mod:`semirobust.empirical.bounds.alpha_crown`)."""

    slope: torch.Tensor | None = None


class CompoundBounds(ABC):
    """What the relaxation of a layer with inner structure (a traced graph,
    :mod:`semirobust.empirical.bounds.graph_linear`) reads; it carries coefficients on its
    output back to its input itself."""

    @abstractmethod
    def pull(self, coefficients: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(A_in, c)`` with ``A . g(h) >= A_in . h + c`` for ``h`` in the bounded set."""

    @property
    @abstractmethod
    def widest(self) -> int:
        """The largest feature count of a box inside."""

    @abstractmethod
    def sloped(self, slope: Callable[[Box], SlopedBox]) -> CompoundBounds:
        """The same bounds with every ReLU's input box replaced by ``slope(box)``
        (alpha-CROWN's free lower slopes)."""

    @abstractmethod
    def tail_lower(self, coefficients: torch.Tensor) -> torch.Tensor:
        """``min A . g`` carrying ``A`` back through the layer's trailing affine part only,
        concretised at the boxes of the nonlinear values it reaches (interval bounds of a
        specification, :mod:`semirobust.empirical.bounds.margin`)."""


LayerBounds = Box | ResidualBounds | CompoundBounds
#: ``rule(module, input_box, intermediate, reach) -> (bounds, output_box)`` for a layer with
#: inner structure; ``reach`` is the reach of its input (see :func:`bound_layers`).
CompoundRule = Callable[[nn.Module, Box, str, "Reach"], tuple[CompoundBounds, Box]]
_COMPOUND_RULES: LayerRules[CompoundRule] = LayerRules(
    "the linear relaxation (CROWN) of a structured layer",
    "Register it with register_compound_rule.",
)
#: Decorator: the relaxation of a layer type with inner structure (a traced graph).
register_compound_rule = _COMPOUND_RULES.register
has_compound_rule = _COMPOUND_RULES.has
compound_rule_for = _COMPOUND_RULES.rule_for
# ``pull(A) = (A_in, c)`` with ``A . g(h) >= A_in . h + c`` for some map ``g``.
Pull = Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor]]


@dataclass(frozen=True)
class Reach:
    """Lower bounds of ``A . h`` over the threat set, ``h`` the input of some layer:
    ``lower(A)`` (per sample and spec) carries ``A`` back through every layer before it
    and concretises at the network's input box; ``widest`` is the largest feature count
    of a coefficient tensor on the way (neurons are bounded in chunks sized by it)."""

    lower: Callable[[torch.Tensor], torch.Tensor]
    widest: int
    at_input: bool = False  # the reach of the input box itself (its bounds are the box)

    @staticmethod
    def of_box(box: Box) -> Reach:
        """The network's input: ``min_{h in box} A . h``."""

        def lower(coefficients: torch.Tensor) -> torch.Tensor:
            return concretize(coefficients, coefficients.new_zeros(coefficients.shape[:2]), box)

        return Reach(lower, _widest([box]), at_input=True)

    def before(self, pull: Pull, widest: int) -> Reach:
        """The reach of ``g(h)``, ``h`` the input this reach is about, given ``g``'s ``pull``
        (whose coefficient tensors have at most ``widest`` features)."""

        def lower(coefficients: torch.Tensor) -> torch.Tensor:
            pulled, constant = pull(coefficients)
            return self.lower(pulled) + constant

        return Reach(lower, max(self.widest, widest))

    def through(self, layers: Sequence[nn.Module], bounds: Sequence[LayerBounds]) -> Reach:
        """The reach of the output of ``layers``, whose input this reach is about."""
        layers, bounds = tuple(layers), tuple(bounds)
        return self.before(partial(backward, layers, bounds), _widest(bounds))


def _widest(bounds: Iterable[LayerBounds]) -> int:
    """The largest feature count of a box in ``bounds``, inside residual blocks too."""
    return max(
        (
            b.shape[1:].numel()
            if isinstance(b, Box)
            else b.widest
            if isinstance(b, CompoundBounds)
            else _widest([*b.branch.bounds, *b.shortcut.bounds, b.summed,
                          *(b.pre.bounds if b.pre is not None else ())])
            for b in bounds
        ),
        default=0,
    )


def bound_layers(
    layers: Sequence[nn.Module], box: Box, intermediate: str, reach: Reach | None = None
) -> BoundedLayers:
    """What the relaxation of ``layers`` reads, for inputs in ``box``.

    Boxes come from interval propagation. With ``intermediate="crown"`` the output of an
    affine layer that feeds a nonlinear one, and a residual block's sum before its
    activation, is intersected with backward bounds of its neurons through ``reach``
    (the reach of ``box``; by default ``box`` is the network's input). Before a ReLU
    whose output feeds an affine layer (or ends the network), and before a block's ReLU,
    only the neurons the interval box leaves unstable in some sample are bounded: a
    stable neuron's relaxation is already exact. Elsewhere every neuron is, since the
    next rule reads the bounds (a ReLU feeding a max-pool, say).
    """
    if intermediate not in INTERMEDIATE_CHOICES:
        raise BadInput(
            f"intermediate={intermediate!r}: expected one of {', '.join(INTERMEDIATE_CHOICES)}"
        )
    reach = Reach.of_box(box) if reach is None else reach
    bounds: list[LayerBounds] = []
    for index, layer in enumerate(layers):
        parts = residual_parts(layer)
        if has_compound_rule(layer):
            inner_reach = reach.through(layers[:index], bounds) if index else reach
            bound, out = compound_rule_for(layer)(layer, box, intermediate, inner_reach)
        elif parts is None:
            bound, out = box, propagate_interval(layer, box)
        else:
            inner_reach = reach.through(layers[:index], bounds)
            bound, out = _bound_residual(parts, box, intermediate, inner_reach)
        bounds.append(bound)
        following = layers[index + 1] if index + 1 < len(layers) else None
        if (
            intermediate == "crown"
            and is_affine(layer)
            and following is not None
            and not is_affine(following)
        ):
            after = layers[index + 2] if index + 2 < len(layers) else None
            only_unstable = isinstance(following, nn.ReLU) and (after is None or is_affine(after))
            out = tightened(out, reach.through(layers[: index + 1], bounds), only_unstable)
        box = out
    return BoundedLayers(tuple(layers), tuple(bounds), box)


def _bound_residual(
    parts: ResidualParts, box: Box, intermediate: str, reach: Reach
) -> tuple[ResidualBounds, Box]:
    """The bounds inside a residual block with input box ``box`` (``reach``: of its input)
    and the box of its output."""
    pre = None
    if parts.pre is not None:
        pre = bound_layers(primitive_layers(parts.pre), box, intermediate, reach)
        box, reach = pre.output, reach.through(pre.layers, pre.bounds)
    branch = bound_layers(primitive_layers(parts.branch), box, intermediate, reach)
    shortcut = bound_layers(primitive_layers(parts.shortcut), box, intermediate, reach)
    summed = Box(
        branch.output.lower + shortcut.output.lower, branch.output.upper + shortcut.output.upper
    )
    activation = parts.activation
    if activation is None:
        return ResidualBounds(branch, shortcut, None, summed, pre), summed
    if intermediate == "crown" and not is_affine(activation):
        widest = _widest([*branch.bounds, *shortcut.bounds])
        sum_reach = reach.before(partial(_sum_backward, branch, shortcut), widest)
        summed = tightened(summed, sum_reach, only_unstable=isinstance(activation, nn.ReLU))
    return (
        ResidualBounds(branch, shortcut, activation, summed, pre),
        propagate_interval(activation, summed),
    )


def tightened(box: Box, reach: Reach, only_unstable: bool) -> Box:
    """``box`` intersected with the backward bounds of its neurons (of those it leaves
    unstable in some sample, when ``only_unstable``)."""
    selected = _unstable_neurons(box) if only_unstable else None
    return box.intersect(neuron_bounds(reach, box, selected))


def _unstable_neurons(box: Box) -> torch.Tensor:
    """Flat indices of the neurons with ``lower < 0 < upper`` in at least one sample."""
    return ((box.lower < 0) & (box.upper > 0)).flatten(start_dim=1).any(dim=0).nonzero().squeeze(1)


def neuron_bounds(reach: Reach, like: Box, selected: torch.Tensor | None = None) -> Box:
    """Backward bounds, through ``reach``, of the neurons of the layer output ``like``
    bounds (flat indices ``selected``, all by default; the others keep ``like``'s bounds),
    in chunks of neurons."""
    batch, shape = like.shape[0], like.shape[1:]
    neurons = shape.numel()
    device = like.lower.device
    selected = torch.arange(neurons, device=device) if selected is None else selected
    chunk = max(1, SPEC_ELEMENT_BUDGET // (2 * batch * max(reach.widest, neurons)))
    lower, upper = like.lower.flatten(start_dim=1).clone(), like.upper.flatten(start_dim=1).clone()
    for start in range(0, selected.numel(), chunk):
        indices = selected[start : start + chunk]
        unit = torch.zeros((indices.numel(), neurons), dtype=like.lower.dtype, device=device)
        unit[torch.arange(indices.numel(), device=device), indices] = 1.0
        unit = unit.view(-1, *shape)
        specs = torch.cat([unit, -unit]).unsqueeze(0).expand(batch, *([-1] * (1 + len(shape))))
        bound = reach.lower(specs)
        lower[:, indices] = bound[:, : indices.numel()]
        upper[:, indices] = -bound[:, indices.numel() :]
    return Box(lower.view(like.shape), upper.view(like.shape))


def _sum_backward(
    branch: BoundedLayers, shortcut: BoundedLayers, coefficients: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """``A . (branch(h) + shortcut(h)) >= (A_b + A_s) . h + c_b + c_s``, each path
    carried back by its own layers' rules."""
    through_branch, branch_constant = backward(branch.layers, branch.bounds, coefficients)
    through_shortcut, shortcut_constant = backward(shortcut.layers, shortcut.bounds, coefficients)
    return through_branch + through_shortcut, branch_constant + shortcut_constant


def _residual_backward(
    bounds: ResidualBounds, coefficients: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """``A . act(s) >= A_s . s + c_act`` by the activation's rule on the box of ``s``,
    then the sum carried back to the block's input (through ``pre`` once, after the two
    paths' coefficients are added)."""
    constant = coefficients.new_zeros(coefficients.shape[:2])
    if bounds.activation is not None:
        coefficients, constant = backward([bounds.activation], [bounds.summed], coefficients)
    pulled, offset = _sum_backward(bounds.branch, bounds.shortcut, coefficients)
    if bounds.pre is not None:
        pulled, before = backward(bounds.pre.layers, bounds.pre.bounds, pulled)
        offset = offset + before
    return pulled, constant + offset


def _affine_backward(
    module: nn.Module, coefficients: torch.Tensor, box: Box
) -> tuple[torch.Tensor, torch.Tensor]:
    """``A <- A J`` by a vector-Jacobian product at 0; the constant gains ``A . g(0)``."""
    batch, specs = coefficients.shape[:2]
    zeros = coefficients.new_zeros((batch * specs, *box.shape[1:]))
    offset, transpose = torch.func.vjp(module, zeros)
    (pulled,) = transpose(coefficients.reshape(batch * specs, *coefficients.shape[2:]))
    constant = (coefficients * offset[:1].unsqueeze(0)).flatten(start_dim=2).sum(dim=2)
    return pulled.view(batch, specs, *box.shape[1:]), constant


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
    positive, negative = coefficients.clamp(min=0), coefficients.clamp(max=0)
    if isinstance(box, SlopedBox):  # alpha-CROWN: a slope in [0,1] per sample, spec, neuron
        lower_slope = torch.where(
            active.unsqueeze(1), 1.0, torch.where(unstable.unsqueeze(1), box.slope, 0.0)
        )
    else:
        lower_slope = torch.where(
            active, 1.0, torch.where(unstable, (upper > -lower).to(upper.dtype), 0.0)
        ).unsqueeze(1)
    pulled = positive * lower_slope + negative * upper_slope.unsqueeze(1)
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
    positions = torch.arange(box.shape[2:].numel(), dtype=box.lower.dtype, device=box.lower.device)
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
