"""WideResNet-34-10 (Zagoruyko & Komodakis 2016), pre-activation blocks, as ordered stages.

A 3x3 stem conv to 16 channels, three groups of ``(depth - 4) / 6`` pre-activation
blocks (BatchNorm, ReLU, 3x3 conv, BatchNorm, ReLU, 3x3 conv, plus the shortcut) at
widths ``16k, 32k, 64k`` (``k`` = ``widen_factor``; groups 2 and 3 start with stride 2),
then BatchNorm, ReLU, global average pool and one linear layer. This is the network of
TRADES and of the paper's experiments at the defaults ``depth=34, widen_factor=10``.

Weight layers: the stem conv, two per block and the linear layer, ``1 + 2 * 15 + 1 = 32``
for depth 34. The name's "34" is the original paper's ``6n + 4`` convention, which also
counts two of the three 1x1 shortcut projections; here every shortcut projection is
excluded from the count (as in the ResNets), so WRN-34-10 has 32 weight layers.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from semirobust.empirical.model.normalize import Normalize
from semirobust.empirical.model.registry import ArchitectureSpec
from semirobust.empirical.model.stages import mark_not_counted
from semirobust.empirical.model.zoo.config import config_from_spec, image_shape
from semirobust.errors import BadInput

STEM_CHANNELS = 16


@dataclass(frozen=True)
class WideResNetConfig:
    depth: int = 34  # 6n + 4, n blocks per group
    widen_factor: int = 10  # k: group widths 16k, 32k, 64k


class PreActBlock(nn.Module):
    """``conv(relu(bn(conv(relu(bn(x)))))) + shortcut``: two weight layers.

    The shortcut is the identity when the shape is kept, else an uncounted 1x1 conv of
    the pre-activated input ``relu(bn1(x))``.
    """

    def __init__(self, c_in: int, c_out: int, stride: int) -> None:
        super().__init__()
        self.bn1 = nn.BatchNorm2d(c_in)
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, padding=1, bias=False)
        self.projection = (
            mark_not_counted(nn.Conv2d(c_in, c_out, 1, stride=stride, bias=False))
            if stride != 1 or c_in != c_out
            else None
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        activated = torch.relu(self.bn1(x))
        out = self.conv1(activated)
        out = self.conv2(torch.relu(self.bn2(out)))
        shortcut = x if self.projection is None else self.projection(activated)
        return out + shortcut


def wide_resnet(spec: ArchitectureSpec) -> nn.Sequential:
    """Stages: Normalize, stem conv, ``3n`` pre-activation blocks, bn+relu+avgpool+linear."""
    config = config_from_spec(WideResNetConfig, spec)
    if (config.depth - 4) % 6 != 0 or config.depth < 10:
        raise BadInput(
            f"architecture {spec.name!r}: option depth={config.depth} must be 6n + 4 with n >= 1 "
            "(e.g. 10, 16, 28, 34)"
        )
    in_channels, _, _ = image_shape(spec, min_side=4)
    blocks_per_group = (config.depth - 4) // 6
    stages: list[nn.Module] = [
        Normalize(spec.mean, spec.std),
        nn.Conv2d(in_channels, STEM_CHANNELS, 3, padding=1, bias=False),
    ]
    channels = STEM_CHANNELS
    for group in range(3):
        group_width = STEM_CHANNELS * 2**group * config.widen_factor
        for index in range(blocks_per_group):
            stride = 2 if group > 0 and index == 0 else 1
            stages.append(PreActBlock(channels, group_width, stride))
            channels = group_width
    stages.append(
        nn.Sequential(
            nn.BatchNorm2d(channels), nn.ReLU(),
            nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(channels, spec.num_classes),
        )
    )
    return nn.Sequential(*stages)
