"""VGG16 with batch normalisation (Simonyan & Zisserman 2015, configuration D), CIFAR head.

Thirteen 3x3 conv layers (each with BatchNorm and ReLU; five of them followed by a 2x2
max pool), a global average pool, and three linear layers: 16 weight layers. Channels
64-64 | 128-128 | 256x3 | 512x3 | 512x3 and a 4096-unit classifier with dropout at the
defaults, as in the paper's experiments; ``width`` scales the conv channels (64 = paper)
and ``hidden`` sets the classifier's width. One stage per weight layer.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from semirobust.empirical.model.normalize import Normalize
from semirobust.empirical.model.registry import ArchitectureSpec
from semirobust.empirical.model.zoo.config import config_from_spec, image_shape, scaled

# (channels, followed by a max pool) for each conv layer of configuration D.
PAPER_CONVS = (
    (64, False), (64, True),
    (128, False), (128, True),
    (256, False), (256, False), (256, True),
    (512, False), (512, False), (512, True),
    (512, False), (512, False), (512, True),
)


@dataclass(frozen=True)
class VGGConfig:
    width: int = 64  # channels of the first conv; the paper's size is 64
    hidden: int = 4096  # units of the two hidden linear layers
    dropout: float = 0.5  # dropout after each hidden linear layer (training only)


def _conv_bn_relu(c_in: int, c_out: int, *, pool: bool) -> nn.Sequential:
    layers: list[nn.Module] = [
        nn.Conv2d(c_in, c_out, 3, padding=1),
        nn.BatchNorm2d(c_out),
        nn.ReLU(),
    ]
    if pool:
        layers.append(nn.MaxPool2d(2))
    return nn.Sequential(*layers)


def vgg16_bn(spec: ArchitectureSpec) -> nn.Sequential:
    """Stages: Normalize, 13 conv stages, avgpool+linear+ReLU, linear+ReLU, linear (logits)."""
    config = config_from_spec(VGGConfig, spec)
    channels, _, _ = image_shape(spec, min_side=32)
    stages: list[nn.Module] = [Normalize(spec.mean, spec.std)]
    for paper_channels, pool in PAPER_CONVS:
        out_channels = scaled(paper_channels, config.width, PAPER_CONVS[0][0])
        stages.append(_conv_bn_relu(channels, out_channels, pool=pool))
        channels = out_channels
    stages += [
        nn.Sequential(
            nn.AdaptiveAvgPool2d(1), nn.Flatten(),
            nn.Linear(channels, config.hidden), nn.ReLU(), nn.Dropout(config.dropout),
        ),
        nn.Sequential(nn.Linear(config.hidden, config.hidden), nn.ReLU(), nn.Dropout(config.dropout)),
        nn.Sequential(nn.Linear(config.hidden, spec.num_classes)),
    ]
    return nn.Sequential(*stages)
