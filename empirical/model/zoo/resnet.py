"""ResNet-18 and ResNet-50 (He et al. 2016), CIFAR stem, as ordered stages.

Stem: one 3x3 conv (stride 1) with BatchNorm, ReLU and a 3x3/2 max pool, as in the
paper's experiments; then four groups of residual blocks at widths ``w, 2w, 4w, 8w``
(``w`` = ``width``, 64 for the paper's sizes; groups 2-4 start with stride 2); then a
global average pool and one linear layer. Each residual block is one stage, kept whole.
The 1x1 shortcut projections (where a block changes shape) are real weights but are not
counted as weight layers (:func:`~semirobust.empirical.model.stages.mark_not_counted`), so
the counts match the names: ResNet-18 = 1 + 8 blocks x 2 convs + 1 = 18 weight layers,
ResNet-50 = 1 + 16 bottlenecks x 3 convs + 1 = 50.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from semirobust.empirical.model.normalize import Normalize
from semirobust.empirical.model.registry import ArchitectureSpec
from semirobust.empirical.model.stages import mark_not_counted
from semirobust.empirical.model.zoo.config import config_from_spec, image_shape


@dataclass(frozen=True)
class ResNetConfig:
    width: int = 64  # channels of the stem and the first group; the paper's size is 64


def projection(c_in: int, c_out: int, stride: int) -> nn.Module:
    """Shortcut of a residual block: identity, or an uncounted 1x1 conv + BatchNorm."""
    if stride == 1 and c_in == c_out:
        return nn.Identity()
    conv = mark_not_counted(nn.Conv2d(c_in, c_out, 1, stride=stride, bias=False))
    return nn.Sequential(conv, nn.BatchNorm2d(c_out))


class BasicBlock(nn.Module):
    """``relu(bn(conv3x3(relu(bn(conv3x3(x))))) + shortcut(x))``: two weight layers."""

    def __init__(self, c_in: int, c_out: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.shortcut = projection(c_in, c_out, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return torch.relu(out + self.shortcut(x))


class Bottleneck(nn.Module):
    """1x1 reduce, 3x3 (carries the stride), 1x1 expand to ``4 * c_mid``: three weight layers."""

    expansion = 4

    def __init__(self, c_in: int, c_mid: int, stride: int) -> None:
        super().__init__()
        c_out = self.expansion * c_mid
        self.conv1 = nn.Conv2d(c_in, c_mid, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_mid)
        self.conv2 = nn.Conv2d(c_mid, c_mid, 3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_mid)
        self.conv3 = nn.Conv2d(c_mid, c_out, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(c_out)
        self.shortcut = projection(c_in, c_out, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.relu(self.bn1(self.conv1(x)))
        out = torch.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return torch.relu(out + self.shortcut(x))


def _resnet(spec: ArchitectureSpec, *, bottleneck: bool, blocks_per_group: tuple[int, ...]) -> nn.Sequential:
    config = config_from_spec(ResNetConfig, spec)
    in_channels, _, _ = image_shape(spec, min_side=8)
    width = config.width
    stages: list[nn.Module] = [
        Normalize(spec.mean, spec.std),
        nn.Sequential(
            nn.Conv2d(in_channels, width, 3, padding=1, bias=False),
            nn.BatchNorm2d(width),
            nn.ReLU(),
            nn.MaxPool2d(3, stride=2, padding=1),
        ),
    ]
    channels = width
    for group, count in enumerate(blocks_per_group):
        group_width = width * 2**group
        for index in range(count):
            stride = 2 if group > 0 and index == 0 else 1
            if bottleneck:
                block: nn.Module = Bottleneck(channels, group_width, stride)
                channels = Bottleneck.expansion * group_width
            else:
                block = BasicBlock(channels, group_width, stride)
                channels = group_width
            stages.append(block)
    stages.append(
        nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(channels, spec.num_classes))
    )
    return nn.Sequential(*stages)


def resnet18(spec: ArchitectureSpec) -> nn.Sequential:
    """Stages: Normalize, stem, 8 basic blocks (2 per group), avgpool+linear: 18 weight layers."""
    return _resnet(spec, bottleneck=False, blocks_per_group=(2, 2, 2, 2))


def resnet50(spec: ArchitectureSpec) -> nn.Sequential:
    """Stages: Normalize, stem, 16 bottlenecks (3, 4, 6, 3 per group), avgpool+linear: 50 layers."""
    return _resnet(spec, bottleneck=True, blocks_per_group=(3, 4, 6, 3))
