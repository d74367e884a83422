"""BatchNorm over the global batch when several processes each hold a part of it.

A BatchNorm in train mode normalises by the statistics of its batch. When ``W`` processes
each hold a part of a global batch (:mod:`semirobust.empirical.runtime.distributed`), the
statistics of a part differ from the global batch's, and so would the trained weights.
:class:`GlobalBatchNorm` computes the global ones from per-part sums, per channel ``c``:

    mean_c = sum_r S1_rc / N,   var_c = sum_r S2_rc / N,   N = sum_r n_r (values per channel)

with ``S1_rc`` the sum of part ``r``'s values and ``S2_rc`` the sum of their squared
deviations from ``mean_c`` (two passes, as a single process computes them). Both sums are
differentiable across the processes, so the backward pass is the global batch's as well.
Running statistics move as torch's BatchNorm moves them (the unbiased variance
``var_c N / (N - 1)``, momentum or the cumulative average). In eval mode (and for frozen
stages) the wrapped BatchNorm runs unchanged on its running statistics: no communication.

torch's ``nn.SyncBatchNorm`` computes the same statistics but only on GPUs (torch 2.13.0
refuses CPU inputs), so this one module serves the CPU (gloo) and CUDA (nccl) alike and the
path the CPU tests check is the path that runs on GPUs. :func:`global_batch_norm` swaps
it in for the duration of training and puts the original modules (the same parameter and
buffer objects, now trained) back after, so checkpoints hold ordinary BatchNorm layers.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

from semirobust.empirical.runtime.distributed import Processes, differentiable_global_sum


class GlobalBatchNorm(nn.Module):
    """The BatchNorm ``inner`` with train-mode statistics taken over every process's part."""

    def __init__(self, inner: _BatchNorm, processes: Processes) -> None:
        super().__init__()
        self.inner = inner
        self.processes = processes

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        bn = self.inner
        if not (bn.training or bn.running_mean is None):
            return bn(x)
        h = x.float()  # statistics in float32 under autocast too, as torch's BatchNorm
        dims = [0, *range(2, h.dim())]
        shape = [1, -1, *([1] * (h.dim() - 2))]
        channels = h.shape[1]
        count = h.new_full((1,), h.numel() // channels)
        totals = differentiable_global_sum(self.processes, torch.cat([h.sum(dims), count]))
        n = totals[-1]
        mean = totals[:channels] / n
        centred = h - mean.view(shape)
        var = differentiable_global_sum(self.processes, (centred * centred).sum(dims)) / n
        y = centred * torch.rsqrt(var + bn.eps).view(shape)
        if bn.affine:
            y = y * bn.weight.view(shape) + bn.bias.view(shape)
        if bn.training and bn.track_running_stats:
            self._update_running_statistics(mean.detach(), var.detach(), n.detach())
        return y.to(x.dtype)

    def _update_running_statistics(self, mean: torch.Tensor, var: torch.Tensor, n: torch.Tensor) -> None:
        bn = self.inner
        with torch.no_grad():
            bn.num_batches_tracked.add_(1)
            factor = 1.0 / float(bn.num_batches_tracked) if bn.momentum is None else bn.momentum
            unbiased = var * n / (n - 1).clamp_min(1)
            bn.running_mean.mul_(1 - factor).add_(factor * mean)
            bn.running_var.mul_(1 - factor).add_(factor * unbiased)


@contextmanager
def global_batch_norm(model: nn.Module, processes: Processes) -> Iterator[nn.Module]:
    """Inside: every BatchNorm of ``model`` wrapped in :class:`GlobalBatchNorm` (nothing
    changes for one process); after: the original modules back in place."""
    if not processes.parallel:
        yield model
        return
    swapped = [
        (parent, name, child)
        for parent in model.modules()
        for name, child in parent.named_children()
        if isinstance(child, _BatchNorm)
    ]
    for parent, name, child in swapped:
        setattr(parent, name, GlobalBatchNorm(child, processes))
    try:
        yield model
    finally:
        for parent, name, child in swapped:
            setattr(parent, name, child)


def has_batch_norm(model: nn.Module) -> bool:
    """Whether ``model`` holds a BatchNorm (of any dimension)."""
    return any(isinstance(m, _BatchNorm) for m in model.modules())
