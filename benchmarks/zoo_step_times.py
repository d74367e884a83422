"""Seconds per SGD step (forward + backward) of each zoo architecture at the paper's size.

Usage: ``OMP_NUM_THREADS=1 python benchmarks/zoo_step_times.py [--batch 16] [--device cpu]``.
Random CIFAR-10-shaped inputs; the first step (allocation, warm-up) is not timed; prints
one Markdown row per architecture with the median of ``--repeats`` timed steps.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from torch.nn import functional

from semirobust.empirical.model import ArchitectureSpec, build_model
from semirobust.empirical.model.stages import count_weight_layers
from semirobust.empirical.model.zoo import ZOO_ARCHITECTURES


def step_seconds(name: str, batch: int, repeats: int, device: torch.device) -> tuple[int, int, float]:
    torch.manual_seed(0)
    model = build_model(ArchitectureSpec(name, (3, 32, 32), 10, (0.5,) * 3, (0.25,) * 3)).to(device)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    x = torch.rand(batch, 3, 32, 32, device=device)
    y = torch.randint(0, 10, (batch,), device=device)
    times = []
    for _ in range(repeats + 1):
        if device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        optimizer.zero_grad()
        functional.cross_entropy(model(x), y).backward()
        optimizer.step()
        if device.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    parameters = sum(p.numel() for p in model.parameters())
    return count_weight_layers(model), parameters, statistics.median(times[1:])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    device = torch.device(args.device)
    print(f"| architecture | weight layers | parameters | s / step (batch {args.batch}, {device.type}, "
          f"{torch.get_num_threads()} threads) |\n|---|---|---|---|")
    for name in ZOO_ARCHITECTURES:
        layers, parameters, seconds = step_seconds(name, args.batch, args.repeats, device)
        print(f"| {name} | {layers} | {parameters:,} | {seconds:.3f} |", flush=True)


if __name__ == "__main__":
    main()
