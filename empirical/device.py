"""Device choice (``--device auto|cpu|cuda``) and seeding.

Code never requires a GPU: ``auto`` picks CUDA when present and the CPU otherwise.
Seeding uses explicit generators where possible and never a time-based seed.
"""

from __future__ import annotations

import random

import numpy as np
import torch

from semirobust.empirical.errors import BadInput

DEVICE_CHOICES = ("auto", "cpu", "cuda")


def resolve_device(choice: str) -> torch.device:
    """``auto`` -> CUDA if available else CPU; ``cuda`` without a GPU is bad input."""
    if choice not in DEVICE_CHOICES:
        raise BadInput(f"--device {choice!r}: expected one of {', '.join(DEVICE_CHOICES)}")
    if choice == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if choice == "cuda" and not torch.cuda.is_available():
        raise BadInput("--device cuda was asked for but no CUDA device is available")
    return torch.device(choice)


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
