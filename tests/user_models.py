"""Models written the way the field writes them (classes with a ``forward``), defined here so
that no test downloads anything: a torchvision-style ResNet-18, PreActResNet-18, a
RobustBench-style WideResNet-28-10 with its input normalisation inside, a model of
functional calls, one with softmax attention (operations without bound rules), and one with
data-dependent control flow. ``width`` scales the channels so
that tests run small, ``in_channels`` lets them read one-channel images (``digits``); the
structure is the published one."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

CIFAR_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR_STD = (0.2471, 0.2435, 0.2616)


class BasicBlock(nn.Module):
    """torchvision's ``BasicBlock``: conv-bn-relu-conv-bn, ``out += identity``, relu."""

    expansion = 1

    def __init__(self, inplanes: int, planes: int, stride: int = 1, downsample: nn.Module | None = None):
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        if self.downsample is not None:
            identity = self.downsample(x)
        out += identity
        return self.relu(out)


class ResNet(nn.Module):
    """torchvision's ``ResNet`` (7x7/2 stem, max pool, four stages, avgpool, ``torch.flatten``, fc)."""

    def __init__(self, layers: tuple[int, ...] = (2, 2, 2, 2), num_classes: int = 10, width: int = 64,
                 in_channels: int = 3):
        super().__init__()
        self.inplanes = width
        self.conv1 = nn.Conv2d(in_channels, width, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        self.layer1 = self._make_layer(width, layers[0])
        self.layer2 = self._make_layer(2 * width, layers[1], stride=2)
        self.layer3 = self._make_layer(4 * width, layers[2], stride=2)
        self.layer4 = self._make_layer(8 * width, layers[3], stride=2)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(8 * width, num_classes)

    def _make_layer(self, planes: int, blocks: int, stride: int = 1) -> nn.Sequential:
        downsample = None
        if stride != 1 or self.inplanes != planes:
            downsample = nn.Sequential(nn.Conv2d(self.inplanes, planes, 1, stride, bias=False),
                                       nn.BatchNorm2d(planes))
        layers = [BasicBlock(self.inplanes, planes, stride, downsample)]
        self.inplanes = planes
        layers += [BasicBlock(planes, planes) for _ in range(1, blocks)]
        return nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        x = torch.flatten(self.avgpool(x), 1)
        return self.fc(x)


def resnet18(num_classes: int = 10, width: int = 64, in_channels: int = 3) -> ResNet:
    return ResNet((2, 2, 2, 2), num_classes, width, in_channels)


class PreActBlock(nn.Module):
    """Pre-activation block (He et al. 2016b), as in the adversarial-training literature."""

    def __init__(self, in_planes: int, planes: int, stride: int = 1):
        super().__init__()
        self.bn1 = nn.BatchNorm2d(in_planes)
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        if stride != 1 or in_planes != planes:
            self.shortcut = nn.Sequential(nn.Conv2d(in_planes, planes, 1, stride, bias=False))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(x))
        shortcut = self.shortcut(out) if hasattr(self, "shortcut") else x
        out = self.conv1(out)
        out = self.conv2(F.relu(self.bn2(out)))
        return out + shortcut


class PreActResNet18(nn.Module):
    def __init__(self, num_classes: int = 10, width: int = 64, in_channels: int = 3):
        super().__init__()
        self.in_planes = width
        self.conv1 = nn.Conv2d(in_channels, width, 3, 1, 1, bias=False)
        self.layer1 = self._make_layer(width, 1)
        self.layer2 = self._make_layer(2 * width, 2)
        self.layer3 = self._make_layer(4 * width, 2)
        self.layer4 = self._make_layer(8 * width, 2)
        self.bn = nn.BatchNorm2d(8 * width)
        self.linear = nn.Linear(8 * width, num_classes)

    def _make_layer(self, planes: int, stride: int) -> nn.Sequential:
        layers = []
        for s in (stride, 1):
            layers.append(PreActBlock(self.in_planes, planes, s))
            self.in_planes = planes
        return nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.layer4(self.layer3(self.layer2(self.layer1(self.conv1(x)))))
        out = F.relu(self.bn(out))
        out = F.adaptive_avg_pool2d(out, 1)
        return self.linear(out.view(out.size(0), -1))


def preact_resnet18(num_classes: int = 10, width: int = 64, in_channels: int = 3) -> PreActResNet18:
    return PreActResNet18(num_classes, width, in_channels)


class WideBasicBlock(nn.Module):
    """RobustBench's WideResNet block (pre-activation, dropout rate 0)."""

    def __init__(self, in_planes: int, out_planes: int, stride: int):
        super().__init__()
        self.bn1 = nn.BatchNorm2d(in_planes)
        self.relu1 = nn.ReLU(inplace=True)
        self.conv1 = nn.Conv2d(in_planes, out_planes, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_planes)
        self.relu2 = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(out_planes, out_planes, 3, 1, 1, bias=False)
        self.equal_in_out = in_planes == out_planes
        self.conv_shortcut = None if self.equal_in_out else nn.Conv2d(in_planes, out_planes, 1, stride, 0, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.equal_in_out:
            x = self.relu1(self.bn1(x))
            out = self.relu2(self.bn2(self.conv1(x)))
        else:
            out = self.relu2(self.bn2(self.conv1(self.relu1(self.bn1(x)))))
        out = self.conv2(out)
        return torch.add(x if self.equal_in_out else self.conv_shortcut(x), out)


class WideResNet(nn.Module):
    """RobustBench's ``WideResNet`` with the input normalisation of its CIFAR models inside:
    ``forward`` takes images in ``[0,1]`` and subtracts ``mu``, divides by ``sigma`` first
    (CIFAR's statistics; their first ``in_channels`` for fewer channels)."""

    def __init__(self, depth: int = 28, widen_factor: int = 10, num_classes: int = 10, base: int = 16,
                 in_channels: int = 3):
        super().__init__()
        channels = [base, base * widen_factor, 2 * base * widen_factor, 4 * base * widen_factor]
        n = (depth - 4) // 6
        self.mu = torch.tensor(CIFAR_MEAN[:in_channels]).view(1, in_channels, 1, 1)
        self.sigma = torch.tensor(CIFAR_STD[:in_channels]).view(1, in_channels, 1, 1)
        self.conv1 = nn.Conv2d(in_channels, channels[0], 3, 1, 1, bias=False)
        self.block1 = self._group(n, channels[0], channels[1], 1)
        self.block2 = self._group(n, channels[1], channels[2], 2)
        self.block3 = self._group(n, channels[2], channels[3], 2)
        self.bn1 = nn.BatchNorm2d(channels[3])
        self.relu = nn.ReLU(inplace=True)
        self.fc = nn.Linear(channels[3], num_classes)
        self.n_channels = channels[3]

    @staticmethod
    def _group(n: int, in_planes: int, out_planes: int, stride: int) -> nn.Sequential:
        return nn.Sequential(*(WideBasicBlock(in_planes if i == 0 else out_planes, out_planes,
                                              stride if i == 0 else 1) for i in range(n)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = (x - self.mu) / self.sigma
        out = self.block3(self.block2(self.block1(self.conv1(x))))
        out = self.relu(self.bn1(out))
        out = F.avg_pool2d(out, out.shape[-1])
        return self.fc(out.view(-1, self.n_channels))


def wrn_28_10(num_classes: int = 10, widen_factor: int = 10, base: int = 16, in_channels: int = 3) -> WideResNet:
    return WideResNet(28, widen_factor, num_classes, base, in_channels)


class FunctionalNet(nn.Module):
    """A small CNN written with functional calls and a functional linear layer."""

    def __init__(self, num_classes: int = 10, width: int = 8):
        super().__init__()
        self.conv1 = nn.Conv2d(1, width, 3, padding=1)
        self.conv2 = nn.Conv2d(width, 2 * width, 3, padding=1)
        self.hidden = nn.Parameter(torch.randn(32, 2 * width * 4 * 4) * 0.05)
        self.out = nn.Linear(32, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)
        x = torch.relu(self.conv2(x))
        x = torch.flatten(x, start_dim=1)
        x = F.relu(F.linear(x, self.hidden))
        return self.out(x)


class AttentionNet(nn.Module):
    """A patch conv, one softmax self-attention block with its residual add, a mean over the
    tokens and a linear head: the attention's products of input-dependent values and its
    softmax have no bound rule."""

    def __init__(self, num_classes: int = 10, width: int = 8, patch: int = 2):
        super().__init__()
        self.width = width
        self.patch = nn.Conv2d(1, width, patch, stride=patch)
        self.query = nn.Linear(width, width)
        self.key = nn.Linear(width, width)
        self.value = nn.Linear(width, width)
        self.head = nn.Linear(width, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        tokens = self.patch(x).flatten(2).transpose(1, 2)
        scores = self.query(tokens) @ self.key(tokens).transpose(1, 2) / self.width ** 0.5
        tokens = tokens + torch.softmax(scores, dim=-1) @ self.value(tokens)
        return self.head(tokens.mean(1))


class BranchesOnValues(nn.Module):
    """Data-dependent control flow: cannot be traced symbolically."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(4, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.sum() > 0:
            return self.fc(x)
        return -self.fc(x)


class TokensNet(nn.Module):
    """A ViT-style stem written directly in ``forward``: patch conv, class token, positions,
    then one residual MLP block and a class-token head."""

    def __init__(self, num_classes: int = 10, width: int = 8, patch: int = 4, side: int = 8):
        super().__init__()
        self.patch = nn.Conv2d(1, width, patch, stride=patch)
        self.class_token = nn.Parameter(torch.randn(1, 1, width))
        self.position = nn.Parameter(torch.randn(1, 1 + (side // patch) ** 2, width))
        self.norm = nn.LayerNorm(width)
        self.mlp = nn.Linear(width, width)
        self.head = nn.Linear(width, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        tokens = self.patch(x).flatten(2).transpose(1, 2)
        tokens = torch.cat([self.class_token.expand(tokens.shape[0], -1, -1), tokens], dim=1)
        tokens = tokens + self.position
        tokens = tokens + self.mlp(self.norm(tokens))
        return self.head(tokens[:, 0])
