"""Training-time data augmentation, and which datasets use it.

The standard CIFAR / TinyImageNet recipe: pad each image by 4 pixels with zeros, crop a
window of the original size at a uniformly random offset, and flip it horizontally with
probability 1/2. :func:`augment` does this per sample on a whole batch tensor with an
explicit generator (no global random state). The training loop asks
:func:`augmentation_for` per dataset; datasets registered without one (the embedded
digits, the Gaussian mixture) are used as they are.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch.nn import functional

from semirobust.errors import BadInput

CROP_PADDING = 4

Augmentation = Callable[[torch.Tensor, torch.Generator], torch.Tensor]
_AUGMENTATIONS: dict[str, Augmentation] = {}


def augment(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Random crop with 4-pixel zero padding, then random horizontal flip, per sample.

    ``x`` is a batch ``(N, C, H, W)``; the result has the same shape, device and dtype,
    and every output image is a translate of its input by ``(di, dj)`` in ``[-4, 4]^2``
    (uncovered pixels zero), mirrored left-right for about half of the batch. Offsets
    and flips are drawn from ``generator`` on its own device.
    """
    if not isinstance(x, torch.Tensor) or x.dim() != 4:
        shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
        raise BadInput(f"augment: x must be an image batch (N, C, H, W); got {shape}")
    n, _, height, width = x.shape
    offsets = torch.randint(
        0, 2 * CROP_PADDING + 1, (2, n), generator=generator, device=generator.device
    ).to(x.device)
    flips = torch.rand(n, generator=generator, device=generator.device).to(x.device) < 0.5
    padded = functional.pad(x, (CROP_PADDING,) * 4)
    rows = offsets[0, :, None] + torch.arange(height, device=x.device)  # (N, H)
    cols = offsets[1, :, None] + torch.arange(width, device=x.device)  # (N, W)
    cols = torch.where(flips[:, None], cols.flip(1), cols)
    batch = torch.arange(n, device=x.device)[:, None, None]
    cropped = padded[batch, :, rows[:, :, None], cols[:, None, :]]  # (N, H, W, C)
    return cropped.permute(0, 3, 1, 2).contiguous()


def register_augmentation(dataset_name: str, augmentation: Augmentation) -> None:
    """Train ``dataset_name`` with ``augmentation(x, generator)`` applied to every batch."""
    _AUGMENTATIONS[dataset_name] = augmentation


def augmentation_for(dataset_name: str) -> Augmentation | None:
    """The augmentation registered for ``dataset_name``, or ``None`` for none."""
    return _AUGMENTATIONS.get(dataset_name)
