"""The zoo's residual blocks declared for interval propagation, the linear relaxation
(CROWN) and Lipschitz bounds.

Each block of :mod:`semirobust.empirical.model.zoo` is ``activation(branch(h) + shortcut(h))``
written freehand in ``forward``; this module states its parts once (THEORY.md's
"residual add"), so IBP, CROWN-IBP, full CROWN and the Lipschitz product handle
ResNet-18/50 and WRN-34-10. Imported by :mod:`semirobust.empirical.bounds`.
"""

from __future__ import annotations

from torch import nn

from semirobust.empirical.bounds.residual import ResidualParts, register_residual_block
from semirobust.empirical.model.zoo.resnet import BasicBlock, Bottleneck
from semirobust.empirical.model.zoo.wide_resnet import PreActBlock


def _basic(block: BasicBlock) -> ResidualParts:
    """``relu(bn2(conv2(relu(bn1(conv1 h)))) + shortcut(h))``."""
    branch = nn.Sequential(block.conv1, block.bn1, nn.ReLU(), block.conv2, block.bn2)
    return ResidualParts(branch=branch, shortcut=block.shortcut, activation=nn.ReLU())


def _bottleneck(block: Bottleneck) -> ResidualParts:
    """``relu(bn3(conv3(relu(bn2(conv2(relu(bn1(conv1 h))))))) + shortcut(h))``."""
    branch = nn.Sequential(
        block.conv1,
        block.bn1,
        nn.ReLU(),
        block.conv2,
        block.bn2,
        nn.ReLU(),
        block.conv3,
        block.bn3,
    )
    return ResidualParts(branch=branch, shortcut=block.shortcut, activation=nn.ReLU())


def _pre_activation(block: PreActBlock) -> ResidualParts:
    """``conv2(relu(bn2(conv1(a)))) + (h or projection(a))`` with ``a = relu(bn1(h))``: with a
    projection, ``a`` is the shared ``pre`` of both paths (relaxed once, its coefficients
    from the two paths added first, as the graph path does)."""
    pre = nn.Sequential(block.bn1, nn.ReLU())
    body = [block.conv1, block.bn2, nn.ReLU(), block.conv2]
    if block.projection is None:
        return ResidualParts(branch=nn.Sequential(*pre, *body), shortcut=nn.Identity())
    return ResidualParts(branch=nn.Sequential(*body), shortcut=block.projection, pre=pre)


register_residual_block(BasicBlock, _basic)
register_residual_block(Bottleneck, _bottleneck)
register_residual_block(PreActBlock, _pre_activation)
