"""Architectures as ordered stages (DESIGN.md) and their registry.

Every builder returns an ``nn.Sequential`` whose first stage is :class:`Normalize`
(inputs live in ``[0,1]``, the threat model's space) and whose other stages each hold
one weight layer with its normalisation and nonlinearity, or one whole residual block.
New architectures register with :func:`register_architecture`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import torch
from torch import nn

from semirobust.empirical.errors import BadInput


class Normalize(nn.Module):
    """``(x - mean) / std`` per channel; part of the model so attacks work in ``[0,1]``."""

    def __init__(self, mean: Sequence[float], std: Sequence[float]) -> None:
        super().__init__()
        shape = (1, len(mean), 1, 1)
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(shape))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(shape))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() == 2:
            return (x - self.mean.view(1, -1)) / self.std.view(1, -1)
        return (x - self.mean) / self.std


@dataclass(frozen=True)
class ArchitectureSpec:
    """What is needed to rebuild a model: the registry name and its keyword arguments."""

    name: str
    input_shape: tuple[int, ...]
    num_classes: int
    mean: tuple[float, ...]
    std: tuple[float, ...]
    kwargs: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.kwargs, dict):
            raise BadInput(
                f"architecture {self.name!r}: options (--arch-kwargs) must be a JSON object such as "
                f'{{"width": 8}}, got {self.kwargs!r}'
            )

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "input_shape": list(self.input_shape),
            "num_classes": self.num_classes,
            "mean": list(self.mean),
            "std": list(self.std),
            "kwargs": dict(self.kwargs),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "ArchitectureSpec":
        return cls(
            name=str(data["name"]),
            input_shape=tuple(int(v) for v in data["input_shape"]),
            num_classes=int(data["num_classes"]),
            mean=tuple(float(v) for v in data["mean"]),
            std=tuple(float(v) for v in data["std"]),
            kwargs=dict(data.get("kwargs", {})),
        )


Builder = Callable[[ArchitectureSpec], nn.Sequential]
_ARCHITECTURES: dict[str, Builder] = {}


def register_architecture(name: str) -> Callable[[Builder], Builder]:
    """Decorator: make ``builder(spec) -> nn.Sequential`` available under ``name``."""

    def decorate(builder: Builder) -> Builder:
        _ARCHITECTURES[name] = builder
        return builder

    return decorate


def architecture_names() -> list[str]:
    return sorted(_ARCHITECTURES)


def build_model(spec: ArchitectureSpec) -> nn.Sequential:
    """Instantiate the registered architecture ``spec.name`` (fresh random weights)."""
    if spec.name not in _ARCHITECTURES:
        raise BadInput(
            f"unknown architecture {spec.name!r}; known: {', '.join(architecture_names())}"
        )
    return _ARCHITECTURES[spec.name](spec)


def builder_options(spec: ArchitectureSpec, accepted: dict[str, tuple[int | bool, int | None]]) -> dict[str, Any]:
    """``spec.kwargs`` over the defaults of ``accepted`` (name -> (default, minimum)): refuses
    unknown names, integers below their minimum and non-booleans for boolean options."""
    unknown = sorted(set(spec.kwargs) - set(accepted))
    if unknown:
        raise BadInput(
            f"architecture {spec.name!r}: unknown option(s) {', '.join(unknown)}; "
            f"accepted: {', '.join(accepted)}"
        )
    options = {name: default for name, (default, _) in accepted.items()}
    for name, value in spec.kwargs.items():
        default, minimum = accepted[name]
        if isinstance(default, bool):
            if not isinstance(value, bool):
                raise BadInput(f"architecture {spec.name!r}: option {name}={value!r} must be true or false")
        elif isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise BadInput(f"architecture {spec.name!r}: option {name}={value!r} must be an integer >= {minimum}")
        options[name] = value
    return options


def _conv_stage(c_in: int, c_out: int, *, batch_norm: bool, pool: bool) -> nn.Sequential:
    layers: list[nn.Module] = [nn.Conv2d(c_in, c_out, 3, padding=1, bias=not batch_norm)]
    if batch_norm:
        layers.append(nn.BatchNorm2d(c_out))
    layers.append(nn.ReLU())
    if pool:
        layers.append(nn.MaxPool2d(2))
    return nn.Sequential(*layers)


def _linear_stage(d_in: int, d_out: int, *, flatten: bool = False, relu: bool = True) -> nn.Sequential:
    layers: list[nn.Module] = [nn.Flatten()] if flatten else []
    layers.append(nn.Linear(d_in, d_out))
    if relu:
        layers.append(nn.ReLU())
    return nn.Sequential(*layers)


@register_architecture("digits-cnn")
def digits_cnn(spec: ArchitectureSpec) -> nn.Sequential:
    """Seven weight layers for 1x8x8 digits: 4 conv (BatchNorm optional) then 3 linear.

    Stages: conv16, conv32+pool (4x4), conv32, conv64+pool (2x2), fc128, fc64, fc(K).
    """
    options = builder_options(spec, {"batch_norm": (True, None), "width": (16, 1)})
    batch_norm, width = options["batch_norm"], options["width"]
    channels = spec.input_shape[0]
    side = spec.input_shape[1] // 4
    return nn.Sequential(
        Normalize(spec.mean, spec.std),
        _conv_stage(channels, width, batch_norm=batch_norm, pool=False),
        _conv_stage(width, 2 * width, batch_norm=batch_norm, pool=True),
        _conv_stage(2 * width, 2 * width, batch_norm=batch_norm, pool=False),
        _conv_stage(2 * width, 4 * width, batch_norm=batch_norm, pool=True),
        _linear_stage(4 * width * side * side, 8 * width, flatten=True),
        _linear_stage(8 * width, 4 * width),
        _linear_stage(4 * width, spec.num_classes, relu=False),
    )


@register_architecture("mlp")
def mlp(spec: ArchitectureSpec) -> nn.Sequential:
    """Fully connected ReLU network: ``depth`` hidden layers of ``width`` units, then logits."""
    options = builder_options(spec, {"depth": (3, 0), "width": (64, 1)})
    depth, width = options["depth"], options["width"]
    d_in = 1
    for size in spec.input_shape:
        d_in *= size
    stages: list[nn.Module] = [Normalize(spec.mean, spec.std)]
    for index in range(depth):
        stages.append(_linear_stage(d_in if index == 0 else width, width, flatten=index == 0))
    stages.append(_linear_stage(width if depth else d_in, spec.num_classes, flatten=depth == 0, relu=False))
    return nn.Sequential(*stages)


import semirobust.empirical.zoo  # noqa: E402,F401  (registers the model zoo's architectures)
