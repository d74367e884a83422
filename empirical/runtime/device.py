"""Device choice (``--device auto|cpu|cuda``), placement of models and batches, seeding.

Code never requires a GPU: ``auto`` picks CUDA when present and the CPU otherwise.
On CUDA, networks with 2-d convolutions run channels-last (NHWC, the layout cuDNN's
tensor-core convolutions use under mixed precision); on the CPU they stay contiguous
(NCHW): oneDNN's NHWC kernels are not reliably faster there, and in torch 2.13.0+cpu
the weight gradient of a 1x1 stride-2 NHWC convolution with few input channels corrupts
the heap on one thread (oneDNN issue #6035; tests/test_device.py). The layout changes
where numbers sit in memory, not what they are: outputs agree up to floating-point
summation order (tests/test_device.py).
Seeding uses explicit generators where possible and never a time-based seed.
"""

from __future__ import annotations

import random

import numpy as np
import torch
from torch import nn

from semirobust.empirical.runtime.device_names import DEVICE_CHOICES
from semirobust.errors import BadInput


def resolve_device(choice: str) -> torch.device:
    """``auto`` -> CUDA if available else CPU; ``cuda`` without a GPU is bad input."""
    if choice not in DEVICE_CHOICES:
        raise BadInput(f"--device {choice!r}: expected one of {', '.join(DEVICE_CHOICES)}")
    if choice == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if choice == "cuda" and not torch.cuda.is_available():
        raise BadInput("--device cuda was asked for but no CUDA device is available")
    return torch.device(choice)


def wants_channels_last(model: nn.Module, device: torch.device) -> bool:
    """The default layout rule: channels-last on CUDA for networks with an ``nn.Conv2d``."""
    return device.type == "cuda" and any(isinstance(m, nn.Conv2d) for m in model.modules())


def place_model(model: nn.Module, device: torch.device, *, channels_last: bool | None = None) -> nn.Module:
    """Move ``model`` to ``device`` (in place, returned); with ``channels_last`` (default:
    :func:`wants_channels_last`) its 4-d weights are stored NHWC."""
    model.to(device)
    if wants_channels_last(model, device) if channels_last is None else channels_last:
        model.to(memory_format=torch.channels_last)
    return model


def place_batch(x: torch.Tensor, device: torch.device, *, channels_last: bool = False) -> torch.Tensor:
    """Move a batch to ``device``; image batches (4-d) become NHWC with ``channels_last``."""
    if channels_last and x.dim() == 4:
        return x.to(device, memory_format=torch.channels_last)
    return x.to(device)


def seed_everything(seed: int) -> torch.Generator:
    """Seed Python, NumPy and torch from ``seed``; return a CPU generator for sampling."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)


def amp_context(device: torch.device, enabled: bool = True):
    """Mixed precision on CUDA (bfloat16 autocast); a no-op context on the CPU."""
    if device.type == "cuda" and enabled:
        return torch.autocast(device_type="cuda", dtype=torch.bfloat16)
    return torch.autocast(device_type="cpu", enabled=False)
