"""AlexNet, CIFAR variant: five conv layers and one linear layer (6 weight layers).

The variant the paper's authors trained on CIFAR (after Krizhevsky 2012, resized for
32x32 inputs): conv 11x11/4 -> pool -> conv 5x5 -> pool -> conv 3x3 (x3) -> pool ->
global average pool -> linear. Channels 64, 192, 384, 256, 256 at the default ``width``
64; other widths scale them proportionally. Each conv with its ReLU (and the pool that
follows it) is one stage, so every split between weight layers is valid.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from semirobust.empirical.model.normalize import Normalize
from semirobust.empirical.model.registry import ArchitectureSpec
from semirobust.empirical.model.zoo.config import config_from_spec, image_shape, scaled

PAPER_CHANNELS = (64, 192, 384, 256, 256)


@dataclass(frozen=True)
class AlexNetConfig:
    width: int = 64  # channels of the first conv; the paper's size is 64


def _conv_relu(c_in: int, c_out: int, kernel: int, *, stride: int = 1, pool: bool) -> nn.Sequential:
    layers: list[nn.Module] = [
        nn.Conv2d(c_in, c_out, kernel, stride=stride, padding=kernel // 2),
        nn.ReLU(),
    ]
    if pool:
        layers.append(nn.MaxPool2d(2))
    return nn.Sequential(*layers)


def alexnet(spec: ArchitectureSpec) -> nn.Sequential:
    """Stages: Normalize, conv11/4+pool, conv5+pool, conv3, conv3, conv3+pool, avgpool+linear."""
    config = config_from_spec(AlexNetConfig, spec)
    in_channels, _, _ = image_shape(spec, min_side=32)
    c1, c2, c3, c4, c5 = (scaled(c, config.width, PAPER_CHANNELS[0]) for c in PAPER_CHANNELS)
    return nn.Sequential(
        Normalize(spec.mean, spec.std),
        _conv_relu(in_channels, c1, 11, stride=4, pool=True),
        _conv_relu(c1, c2, 5, pool=True),
        _conv_relu(c2, c3, 3, pool=False),
        _conv_relu(c3, c4, 3, pool=False),
        _conv_relu(c4, c5, 3, pool=True),
        nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(c5, spec.num_classes)),
    )
