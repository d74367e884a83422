"""Small random networks for the bounds and Lipschitz tests (every supported layer type),
and a freehand residual block registered the way a zoo block would be."""

from __future__ import annotations

import torch
from torch import nn

from semirobust.empirical.bounds import ResidualParts, register_residual_block
from semirobust.empirical.models import Normalize


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


def random_residual(seed: int, channels: int = 3, classes: int = 3) -> nn.Sequential:
    torch.manual_seed(seed)
    model = nn.Sequential(
        Normalize([0.4], [0.25]),
        TinyResidualBlock(1, channels),
        TinyResidualBlock(channels, channels),
        nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(channels, classes)),
    )
    return randomise_batch_norm(model, torch.Generator().manual_seed(seed))
