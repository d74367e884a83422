"""Small random networks for the bounds and Lipschitz tests (every supported layer type),
freehand residual blocks registered the way a zoo block would be, and the inputs and
threat-set points the tests evaluate them at."""

from __future__ import annotations

import torch
from torch import nn

from semirobust.empirical.attacks.threat import ThreatModel
from semirobust.empirical.bounds import ResidualParts, register_residual_block
from semirobust.empirical.model import Normalize
from semirobust.empirical.model.zoo.resnet import BasicBlock, Bottleneck
from semirobust.empirical.model.zoo.wide_resnet import PreActBlock


def randomise_batch_norm(model: nn.Module, generator: torch.Generator) -> nn.Module:
    """Give every BatchNorm non-trivial running statistics and affine parameters."""
    for module in model.modules():
        if isinstance(module, (nn.BatchNorm1d, nn.BatchNorm2d)):
            size = module.num_features
            module.running_mean.copy_(0.3 * torch.randn(size, generator=generator))
            module.running_var.copy_(0.5 + torch.rand(size, generator=generator))
            with torch.no_grad():
                module.weight.copy_(0.5 + torch.rand(size, generator=generator))
                module.bias.copy_(0.2 * torch.randn(size, generator=generator))
    return model.eval()


def sample_threat_set(x: torch.Tensor, threat: ThreatModel, count: int, seed: int) -> torch.Tensor:
    """``count`` random points per input in the l-inf box (corners included).

    Shape ``(count, *x.shape)``."""
    generator = torch.Generator().manual_seed(seed)
    noise = torch.rand((count, *x.shape), generator=generator, dtype=torch.float64) * 2 - 1
    noise[: count // 4] = noise[: count // 4].sign()  # box corners, where bounds are tight
    return (x.double().unsqueeze(0) + threat.eps * noise).clamp(0, 1)


def inputs(shape: tuple[int, ...], n: int, seed: int) -> torch.Tensor:
    return torch.rand((n, *shape), generator=torch.Generator().manual_seed(seed))


def random_mlp(
    seed: int, d_in: int = 6, width: int = 8, depth: int = 2, classes: int = 3
) -> nn.Sequential:
    torch.manual_seed(seed)
    layers: list[nn.Module] = [Normalize([0.5] * d_in, [0.3] * d_in)]
    size = d_in
    for index in range(depth):
        layers += [
            nn.Linear(size, width),
            nn.BatchNorm1d(width) if index == 0 else nn.Identity(),
            nn.ReLU(),
        ]
        size = width
    layers += [nn.Dropout(0.3), nn.Linear(size, classes)]
    return randomise_batch_norm(nn.Sequential(*layers), torch.Generator().manual_seed(seed))


def random_cnn(seed: int, channels: int = 4, classes: int = 3, pool: str = "max") -> nn.Sequential:
    """1x6x6 inputs: conv+BN+ReLU, pooling, conv (stride 2, groups 2), ReLU, linear head.

    ``pool``: 2x2 max or average, adaptive average to 3x3, or ``"overlapping"``: ResNet's
    3x3 max-pool with stride 2 and padding 1 (also 6x6 -> 3x3)."""
    torch.manual_seed(seed)
    pooling = {
        "max": nn.MaxPool2d(2),
        "avg": nn.AvgPool2d(2),
        "adaptive": nn.AdaptiveAvgPool2d(3),
        "overlapping": nn.MaxPool2d(3, stride=2, padding=1),
    }[pool]
    model = nn.Sequential(
        Normalize([0.4], [0.25]),
        nn.Sequential(nn.Conv2d(1, channels, 3, padding=1), nn.BatchNorm2d(channels), nn.ReLU()),
        pooling,
        nn.Sequential(nn.Conv2d(channels, channels, 3, stride=2, padding=1, groups=2), nn.ReLU()),
        nn.Sequential(nn.Flatten(), nn.Linear(channels * 2 * 2, classes)),
    )
    return randomise_batch_norm(model, torch.Generator().manual_seed(seed))


class TinyResidualBlock(nn.Module):
    """``relu(bn(conv(relu(conv(h)))) + shortcut(h))`` written freehand, like a zoo block."""

    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, padding=1)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, padding=1)
        self.bn = nn.BatchNorm2d(c_out)
        self.shortcut = nn.Identity() if c_in == c_out else nn.Conv2d(c_in, c_out, 1)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        out = self.bn(self.conv2(torch.relu(self.conv1(h))))
        return torch.relu(out + self.shortcut(h))


register_residual_block(
    TinyResidualBlock,
    lambda block: ResidualParts(
        branch=nn.Sequential(block.conv1, nn.ReLU(), block.conv2, block.bn),
        shortcut=block.shortcut,
        activation=nn.ReLU(),
    ),
)


class NestedResidualBlock(nn.Module):
    """``relu(conv(inner(h)) + h)`` with ``inner`` a :class:`TinyResidualBlock`: a residual
    block inside a branch."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.inner = TinyResidualBlock(channels, channels)
        self.conv = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.conv(self.inner(h)) + h)


register_residual_block(
    NestedResidualBlock,
    lambda block: ResidualParts(
        branch=nn.Sequential(block.inner, block.conv), shortcut=nn.Identity(), activation=nn.ReLU()
    ),
)


def random_residual(seed: int, channels: int = 3, classes: int = 3) -> nn.Sequential:
    torch.manual_seed(seed)
    model = nn.Sequential(
        Normalize([0.4], [0.25]),
        TinyResidualBlock(1, channels),
        TinyResidualBlock(channels, channels),
        nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(channels, classes)),
    )
    return randomise_batch_norm(model, torch.Generator().manual_seed(seed))


class LinearResidualBlock(nn.Module):
    """``act(bn2(fc2(relu(bn1(fc1(h))))) + shortcut(h))`` on vectors, written freehand like a
    user's block: the shortcut is the identity, or ``Linear`` + ``BatchNorm1d`` when the
    width changes; ``inner_relu=False`` drops the branch's ReLU, ``activation=False`` the
    block's (both off: an affine block)."""

    def __init__(self, d_in: int, d_out: int, *, inner_relu: bool = True, activation: bool = True):
        super().__init__()
        self.fc1, self.bn1 = nn.Linear(d_in, d_out), nn.BatchNorm1d(d_out)
        self.fc2, self.bn2 = nn.Linear(d_out, d_out), nn.BatchNorm1d(d_out)
        self.shortcut = (
            nn.Identity()
            if d_in == d_out
            else nn.Sequential(nn.Linear(d_in, d_out), nn.BatchNorm1d(d_out))
        )
        self.inner = nn.ReLU() if inner_relu else nn.Identity()
        self.activation = nn.ReLU() if activation else None

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        out = self.bn2(self.fc2(self.inner(self.bn1(self.fc1(h))))) + self.shortcut(h)
        return out if self.activation is None else self.activation(out)


register_residual_block(
    LinearResidualBlock,
    lambda block: ResidualParts(
        branch=nn.Sequential(block.fc1, block.bn1, block.inner, block.fc2, block.bn2),
        shortcut=block.shortcut,
        activation=block.activation,
    ),
)

RESIDUAL_KINDS = ("basic", "bottleneck", "pre-activation", "linear")


def random_resnet(
    seed: int,
    kind: str,
    *,
    blocks: int = 2,
    projection: bool = True,
    stem_pool: bool = False,
    classes: int = 3,
) -> tuple[nn.Sequential, tuple[int, ...]]:
    """A small residual network and its input shape, BatchNorm with random statistics.

    ``kind``: the zoo's ``BasicBlock``, ``Bottleneck`` or ``PreActBlock`` on 1x6x6 inputs
    after a conv stem of 4 channels (optionally with ResNet's overlapping 3x3/2 max-pool),
    or :class:`LinearResidualBlock` on 6-vectors after a linear stem of width 4.
    ``projection``: the first block changes the width (and, for convs, halves the side
    with stride 2), so its shortcut is a projection with BatchNorm (a 1x1 conv for
    ``pre-activation``); the other blocks keep shapes and have identity shortcuts.
    """
    torch.manual_seed(seed)
    width, wide = 4, 8 if projection else 4
    if kind == "linear":
        stem: list[nn.Module] = [Normalize([0.5] * 6, [0.3] * 6), nn.Linear(6, width), nn.ReLU()]
        stages = [LinearResidualBlock(width if i == 0 else wide, wide) for i in range(blocks)]
        head = nn.Linear(wide, classes)
        shape: tuple[int, ...] = (6,)
    else:
        stem = [Normalize([0.4], [0.25]), nn.Conv2d(1, width, 3, padding=1), nn.BatchNorm2d(width)]
        stem += [nn.ReLU(), nn.MaxPool2d(3, stride=2, padding=1)] if stem_pool else [nn.ReLU()]
        side = 3 if stem_pool else 6
        stride = 2 if projection else 1
        make = {
            "basic": lambda c_in, s: BasicBlock(c_in, wide, s),
            "bottleneck": lambda c_in, s: Bottleneck(c_in, wide // Bottleneck.expansion, s),
            "pre-activation": lambda c_in, s: PreActBlock(c_in, wide, s),
        }[kind]
        stages = [make(width if i == 0 else wide, stride if i == 0 else 1) for i in range(blocks)]
        side = (side - 1) // stride + 1
        head = nn.Sequential(nn.Flatten(), nn.Linear(wide * side * side, classes))
        shape = (1, 6, 6)
    model = nn.Sequential(nn.Sequential(*stem), *stages, head)
    return randomise_batch_norm(model, torch.Generator().manual_seed(seed)), shape
