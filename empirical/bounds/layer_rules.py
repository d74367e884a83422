"""The layer vocabulary shared by bound propagation (``bounds``) and ``lipschitz``.

A network is walked as a flat list of *primitive* layers: ``nn.Sequential`` containers
are expanded recursively, every other module (a residual block included) is one
primitive. Bounds are computed on a float64 copy of the network in eval mode, so
BatchNorm uses its running statistics and Dropout is the identity, and rounding cannot
make a certified bound cross the value it bounds.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Generic, TypeVar

import torch
from torch import nn

from semirobust.empirical.model import Normalize, Scale
from semirobust.errors import BadInput

Rule = TypeVar("Rule")

BATCH_NORM_TYPES: tuple[type[nn.Module], ...] = (nn.BatchNorm1d, nn.BatchNorm2d)
POOL_TYPES: tuple[type[nn.Module], ...] = (nn.AvgPool2d, nn.AdaptiveAvgPool2d)
SHAPE_TYPES: tuple[type[nn.Module], ...] = (nn.Flatten, nn.Identity, nn.Dropout)

# Layers that are affine maps ``h -> J h + c`` once the network is in eval mode.
AFFINE_TYPES: tuple[type[nn.Module], ...] = (
    nn.Linear,
    nn.Conv2d,
    Normalize,
    Scale,
    *BATCH_NORM_TYPES,
    *POOL_TYPES,
    *SHAPE_TYPES,
)


def primitive_layers(module: nn.Module) -> list[nn.Module]:
    """``module`` with every ``nn.Sequential`` expanded, in forward order."""
    if isinstance(module, nn.Sequential):
        return [leaf for child in module for leaf in primitive_layers(child)]
    return [module]


def is_affine(module: nn.Module) -> bool:
    return isinstance(module, AFFINE_TYPES)


def float64_eval_copy(model: nn.Module, device: torch.device | str = "cpu") -> nn.Module:
    """A float64 copy of ``model`` in eval mode on ``device`` (the original is untouched)."""
    return copy.deepcopy(model).to(device).double().eval()


def batch_norm_scale(module: nn.Module) -> tuple[torch.Tensor, torch.Tensor]:
    """Eval-mode BatchNorm as ``scale * h + shift`` per channel:
    ``scale = gamma / sqrt(var + eps)``, ``shift = beta - mean * scale``."""
    if module.running_var is None or module.running_mean is None:
        raise BadInput(
            f"{type(module).__name__} without running statistics (track_running_stats=False) "
            "is not an affine map in eval mode; bounds need running statistics"
        )
    scale = 1.0 / torch.sqrt(module.running_var + module.eps)
    if module.weight is not None:
        scale = scale * module.weight
    shift = -module.running_mean * scale
    if module.bias is not None:
        shift = shift + module.bias
    return scale.detach(), shift.detach()


class UnsupportedLayer(BadInput):
    """A propagation (interval, linear relaxation, Lipschitz) has no rule for a layer type."""


class LayerRules(Generic[Rule]):
    """One propagation's rules per layer type (interval, linear relaxation, Lipschitz):
    a rule registered for a type serves its subclasses too, the nearest registered class
    along the module's MRO winning. ``what`` names the propagation and ``how`` says how
    to add a rule, both in the :class:`UnsupportedLayer` raised for an unknown type."""

    def __init__(self, what: str, how: str) -> None:
        self.what, self.how = what, how
        self._rules: dict[type[nn.Module], Rule] = {}

    def register(self, module_type: type[nn.Module]) -> Callable[[Rule], Rule]:
        """Decorator: ``rule`` serves ``module_type`` and its subclasses."""

        def decorate(rule: Rule) -> Rule:
            self._rules[module_type] = rule
            return rule

        return decorate

    def has(self, module: nn.Module) -> bool:
        return any(cls in self._rules for cls in type(module).__mro__)

    def rule_for(self, module: nn.Module) -> Rule:
        """The rule of ``type(module)`` or of its nearest registered base class."""
        for cls in type(module).__mro__:
            if cls in self._rules:
                return self._rules[cls]
        raise UnsupportedLayer(
            f"{self.what} has no rule for layer type {type(module).__module__}."
            f"{type(module).__name__}; supported: "
            f"{', '.join(sorted(t.__name__ for t in self._rules))}. {self.how}"
        )
