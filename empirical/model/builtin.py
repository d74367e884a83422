"""The project's own small architectures: ``digits-cnn`` (the demo's CNN) and ``mlp``."""

from __future__ import annotations

from torch import nn

from semirobust.empirical.model.normalize import Normalize
from semirobust.empirical.model.registry import ArchitectureSpec, builder_options


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
