"""Data-parallel processes: a ``torchrun`` launch, its process group, and the collectives
that training needs.

``torchrun --nproc_per_node W ...`` starts ``W`` copies of a command with ``RANK``,
``WORLD_SIZE`` and ``LOCAL_RANK`` in their environment (Ray Train's torch workers set the
same variables). :func:`data_parallel_processes` reads them, joins the process group
(``nccl`` on CUDA, each process on GPU ``LOCAL_RANK``; ``gloo`` on the CPU) and leaves it at
the end; without them it is one process and nothing is started. The group is then passed
down as a :class:`Processes` value: nothing reads the group from torch's global state.

How a global batch of ``n`` samples is shared (:meth:`Processes.shard`): process ``r`` takes
the ``r``-th of ``W`` contiguous, disjoint slices (sizes differ by at most one, as
``torch.tensor_split``'s), and every gradient is summed over the processes after each
process weighted its mean loss by its share ``n_r / n``, so the summed gradient is the
gradient of the mean loss over the whole batch: ``sum_r (n_r / n) grad mean_r = grad
(1/n) sum_i loss_i`` (:func:`sum_gradients`).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn

from semirobust.empirical.runtime.launch import LAUNCH_VARIABLES, launched_by_torchrun
from semirobust.errors import BadInput

# Odd 64-bit constant (the golden ratio's bits) spacing the per-process seeds.
SEED_STRIDE = 0x9E3779B97F4A7C15


@dataclass(frozen=True)
class BatchShard:
    """Rows ``start:stop`` of a global batch of ``size`` rows: one process's part."""

    start: int
    stop: int
    size: int

    @property
    def rows(self) -> slice:
        return slice(self.start, self.stop)

    @property
    def count(self) -> int:
        return self.stop - self.start

    @property
    def weight(self) -> float:
        """``n_r / n``: the factor that turns this part's mean loss into its share of the
        global batch's mean loss."""
        return self.count / self.size


@dataclass(frozen=True)
class Processes:
    """This process's ``rank`` among the ``world_size`` processes training one model, and
    the group's ``backend`` (``None``: one process, no group)."""

    rank: int = 0
    world_size: int = 1
    backend: str | None = None
    local_rank: int = 0

    def __post_init__(self) -> None:
        if self.world_size < 1 or not 0 <= self.rank < self.world_size:
            raise BadInput(f"rank {self.rank} of world size {self.world_size}: expected 0 <= rank < world size >= 1")

    @property
    def parallel(self) -> bool:
        return self.world_size > 1

    @property
    def writes(self) -> bool:
        """Whether this process writes files and logs (rank 0 only)."""
        return self.rank == 0

    def shard(self, size: int) -> BatchShard:
        """This process's rows of a global batch of ``size`` rows (contiguous; the first
        ``size mod W`` processes take one row more)."""
        base, extra = divmod(size, self.world_size)
        start = self.rank * base + min(self.rank, extra)
        return BatchShard(start, start + base + (self.rank < extra), size)

    def seed(self, seed: int) -> int:
        """A seed of this process's own (``seed`` itself on rank 0), for draws that each
        process makes for its own rows only (dropout masks)."""
        return (seed + self.rank * SEED_STRIDE) % 2**64

    def to_dict(self) -> dict[str, int | str | None]:
        """What a checkpoint's notes and a result's metadata record."""
        return {"world_size": self.world_size, "backend": self.backend}


ONE_PROCESS = Processes()


def _launch_value(name: str) -> int:
    value = os.environ[name]
    try:
        return int(value)
    except ValueError:
        raise BadInput(f"${name} = {value!r}: torchrun sets it to an integer") from None


@contextmanager
def data_parallel_processes(device: torch.device) -> Iterator[tuple[Processes, torch.device]]:
    """The processes of this launch and the device this one computes on: under torchrun the
    process group is joined (``nccl`` for CUDA, on ``cuda:LOCAL_RANK``; ``gloo`` for the
    CPU) and left on exit; otherwise one process on ``device``."""
    if not launched_by_torchrun():
        yield ONE_PROCESS, device
        return
    rank, world_size, local_rank = (_launch_value(name) for name in LAUNCH_VARIABLES)
    if device.type == "cuda":
        if local_rank >= torch.cuda.device_count():
            raise BadInput(
                f"LOCAL_RANK {local_rank} but {torch.cuda.device_count()} CUDA device(s): "
                "start at most one process per GPU (torchrun --nproc_per_node)"
            )
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
    backend = "nccl" if device.type == "cuda" else "gloo"
    processes = Processes(rank, world_size, backend, local_rank)
    dist.init_process_group(backend, rank=rank, world_size=world_size)
    try:
        yield processes, device
    finally:
        dist.destroy_process_group()


def global_sum(processes: Processes, values: torch.Tensor) -> torch.Tensor:
    """``values`` summed over the processes (the same tensor for one process)."""
    if not processes.parallel:
        return values
    values = values.clone()
    dist.all_reduce(values, op=dist.ReduceOp.SUM)
    return values


class _DifferentiableSum(torch.autograd.Function):
    """``y = sum_r x_r`` over the processes; the gradient with respect to each ``x_r`` is
    ``sum_r dL/dy_r`` (every process's output depends on every input)."""

    @staticmethod
    def forward(ctx, values: torch.Tensor) -> torch.Tensor:
        values = values.clone()
        dist.all_reduce(values, op=dist.ReduceOp.SUM)
        return values

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        grad = grad.clone()
        dist.all_reduce(grad, op=dist.ReduceOp.SUM)
        return grad


def differentiable_global_sum(processes: Processes, values: torch.Tensor) -> torch.Tensor:
    """:func:`global_sum` through which gradients flow back to every process's ``values``."""
    if not processes.parallel:
        return values
    return _DifferentiableSum.apply(values)


def sum_gradients(processes: Processes, parameters: Iterable[nn.Parameter]) -> None:
    """Replace each parameter's gradient by its sum over the processes (one collective on
    one flat buffer). Parameters without a gradient are left alone: every process runs
    the same computation, so the same parameters have none."""
    if not processes.parallel:
        return
    grads = [p.grad for p in parameters if p.grad is not None]
    if not grads:
        return
    flat = torch.cat([g.reshape(-1) for g in grads])
    dist.all_reduce(flat, op=dist.ReduceOp.SUM)
    offset = 0
    for grad in grads:
        grad.copy_(flat[offset:offset + grad.numel()].view_as(grad))
        offset += grad.numel()


def broadcast_state(processes: Processes, model: nn.Module) -> None:
    """Every parameter and buffer of ``model`` set to rank 0's (so that all processes start
    from the same weights, whatever each built)."""
    if not processes.parallel:
        return
    tensors = [*model.parameters(), *model.buffers()]
    with torch.no_grad():
        for tensor in tensors:
            dist.broadcast(tensor.data, src=0)


def rank_zero_decides(processes: Processes, decision: bool) -> bool:
    """Rank 0's ``decision`` on every process (control flow that must not diverge)."""
    if not processes.parallel:
        return decision
    flag = torch.tensor([int(decision)], dtype=torch.int64)
    if processes.backend == "nccl":
        flag = flag.cuda()
    dist.broadcast(flag, src=0)
    return bool(flag.item())


def barrier(processes: Processes) -> None:
    """Wait until every process reaches this point."""
    if processes.parallel:
        dist.barrier()


def written_by_rank_zero(processes: Processes, write: Callable[[], object]) -> None:
    """Run ``write`` on rank 0 only, between two barriers: every process has finished
    reading what it read before the write, and none reads after it until it is done, so
    all processes see the same files at the same point of the (shared) program."""
    barrier(processes)
    if processes.writes:
        write()
    barrier(processes)
