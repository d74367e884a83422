"""Residual blocks ``activation(branch(p) + shortcut(p))``, ``p = pre(h)``, for bounds and
Lipschitz (``pre`` is the identity unless the block shares a pre-activation between its
branch and its shortcut, as a pre-activation block with a projection does).

A block class is a plain ``nn.Module`` whose ``forward`` the tools cannot read, so it
declares its parts once with :func:`register_residual_block`; that registers

* its interval rule: ``activation([l_b + l_s, u_b + u_s])`` with ``[l_b, u_b]`` and
  ``[l_s, u_s]`` the boxes of the branch and the shortcut on the same input box, that of
  ``pre(h)`` (the residual add is interval addition, sound because both summands are
  enclosed);
* its Lipschitz rule: ``Lip(activation) * (Lip(shortcut) + Lip(branch)) * Lip(pre)``;
* its parts, read by the linear relaxation (:func:`residual_parts`), which carries a
  coefficient back through the activation, then through the branch and the shortcut
  separately, sums the two, and carries the sum back through ``pre`` once
  (:mod:`semirobust.empirical.bounds.linear`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import nn

from semirobust.empirical.bounds.box import Box
from semirobust.empirical.bounds.interval import propagate_interval, register_interval_rule
from semirobust.empirical.bounds.lipschitz import (
    LayerItem,
    LayerLipschitz,
    OperatorNormSettings,
    layer_bounds,
    layer_items,
    register_lipschitz_rule,
)


@dataclass(frozen=True)
class ResidualParts:
    """The modules of one block: ``activation(branch(p) + shortcut(p))``, ``p = pre(h)``."""

    branch: nn.Module
    shortcut: nn.Module
    activation: nn.Module | None = None
    pre: nn.Module | None = None


PartsOf = Callable[[nn.Module], ResidualParts]
_PARTS: dict[type[nn.Module], PartsOf] = {}


def residual_parts(module: nn.Module) -> ResidualParts | None:
    """The parts of ``module`` if its type (or a base class) is a registered residual
    block, else ``None``."""
    for cls in type(module).__mro__:
        if cls in _PARTS:
            return _PARTS[cls](module)
    return None


def register_residual_block(block_type: type[nn.Module], parts: PartsOf) -> None:
    """Declare ``block_type``'s structure: ``parts(block)`` returns its :class:`ResidualParts`
    (modules of ``block`` itself, so that bounds see the block's own weights)."""

    def interval_rule(block: nn.Module, box: Box) -> Box:
        structure = parts(block)
        if structure.pre is not None:
            box = propagate_interval(structure.pre, box)
        branch = propagate_interval(structure.branch, box)
        shortcut = propagate_interval(structure.shortcut, box)
        summed = Box(branch.lower + shortcut.lower, branch.upper + shortcut.upper)
        return (
            summed
            if structure.activation is None
            else propagate_interval(structure.activation, summed)
        )

    def lipschitz_rule(
        items: Sequence[LayerItem], settings: OperatorNormSettings
    ) -> LayerLipschitz:
        path, block, input_shape = items[0]
        structure = parts(block)
        pre: list[LayerLipschitz] = []
        if structure.pre is not None:
            pre = layer_bounds(_prefixed(layer_items(structure.pre, input_shape), path), settings)
            input_shape = tuple(structure.pre(_probe(input_shape, block)).shape[1:])
        branch = layer_bounds(_prefixed(layer_items(structure.branch, input_shape), path), settings)
        shortcut = layer_bounds(
            _prefixed(layer_items(structure.shortcut, input_shape), path), settings
        )
        factors = [*pre, *branch, *shortcut]
        bound = (_product(branch) + _product(shortcut)) * _product(pre)
        if structure.activation is not None:
            output_shape = tuple(structure.branch(_probe(input_shape, block)).shape[1:])
            act = layer_bounds([(path, structure.activation, output_shape)], settings)
            factors += act
            bound *= _product(act)
        return LayerLipschitz(
            path,
            type(block).__name__,
            bound,
            f"residual: Lip(shortcut) + Lip(branch) = "
            f"{_product(shortcut):.4g} + {_product(branch):.4g}",
            all(f.certified for f in factors),
        )

    _PARTS[block_type] = parts
    register_interval_rule(block_type)(interval_rule)
    register_lipschitz_rule(block_type)(lipschitz_rule)


def _prefixed(items: list[LayerItem], path: str) -> list[LayerItem]:
    return [(f"{path}.{sub}", module, shape) for sub, module, shape in items]


def _product(factors: Sequence[LayerLipschitz]) -> float:
    return math.prod(factor.bound for factor in factors)


def _probe(input_shape: tuple[int, ...], block: nn.Module) -> torch.Tensor:
    dtype = next((p.dtype for p in block.parameters()), torch.float64)
    return torch.zeros((1, *input_shape), dtype=dtype)
