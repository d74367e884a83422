"""Device choice (``--device auto|cpu|cuda``), placement of models and batches, seeding.

Code never requires a GPU: ``auto`` picks CUDA when present and the CPU otherwise.
On CUDA, networks with 2-d convolutions run channels-last (NHWC, the layout cuDNN's
tensor-core convolutions use under mixed precision); on the CPU they stay contiguous
(NCHW): oneDNN's NHWC kernels are not reliably faster there, and in torch 2.13.0+cpu
the weight gradient of a 1x1 stride-2 NHWC convolution with few input channels corrupts
the heap on one thread (oneDNN issue #6035; tests/test_device.py). The layout changes
where numbers sit in memory, not what they are: outputs agree up to floating-point
summation order (tests/test_device.py).
Seeding uses explicit generators (``torch.Generator().manual_seed(seed)``) passed down;
code that draws from torch's default generators runs under :func:`seeded_torch_rng`. Nothing
reseeds the global generators, and no seed is time-based.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

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


@contextmanager
def seeded_torch_rng(seed: int, device: torch.device | str = "cpu") -> Iterator[None]:
    """Inside: torch's default generators (the CPU's, and ``device``'s when it is CUDA)
    start from the state of ``torch.Generator().manual_seed(seed)``, for code that draws
    from them without taking a generator (``nn.Module`` initialisation, dropout). The
    caller's random state is forked before and restored after: no global reseeding."""
    device = torch.device(device)
    cuda = [device] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=cuda):
        torch.set_rng_state(torch.Generator().manual_seed(seed).get_state())
        for each in cuda:
            torch.cuda.set_rng_state(torch.Generator(device=each).manual_seed(seed).get_state(), each)
        yield


def amp_context(device: torch.device, enabled: bool = True):
    """Mixed precision on CUDA (bfloat16 autocast); a no-op context on the CPU."""
    if device.type == "cuda" and enabled:
        return torch.autocast(device_type="cuda", dtype=torch.bfloat16)
    return torch.autocast(device_type="cpu", enabled=False)
