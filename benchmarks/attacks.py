"""PGD-10 throughput, semirobust against torchattacks on the same model and inputs.

Both attacks run 10 l-inf steps of eps/4 from a uniform random start on the same batch;
the two are timed alternately, ``--repeats`` times each, and the medians compared.
Throughput is attacked images per second; the ratio is ours / torchattacks' (> 1: ours
is faster). With ``--amp`` on a CUDA device our PGD runs its forward passes under
bfloat16 autocast (torchattacks has no such switch and runs in float32).

    python benchmarks/attacks.py [--device cpu|cuda] [--amp] [--json OUT]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from typing import Callable

import torch
import torchattacks

from semirobust.empirical.attacks import PGD
from semirobust.empirical.attacks.threat import ThreatModel
from semirobust.empirical.data import load_dataset
from semirobust.empirical.model import ArchitectureSpec, build_model

EPS = 0.1
STEPS = 10


def models(dataset) -> dict[str, torch.nn.Module]:
    """The benchmarked models (random weights: throughput does not depend on training)."""
    specs = {
        "digits-cnn (width 16)": ArchitectureSpec(
            "digits-cnn", dataset.input_shape, 10, dataset.mean, dataset.std, {"width": 16}
        ),
        "mlp (3 x 256)": ArchitectureSpec(
            "mlp", dataset.input_shape, 10, dataset.mean, dataset.std, {"width": 256, "depth": 3}
        ),
    }
    torch.manual_seed(0)
    return {name: build_model(spec).eval() for name, spec in specs.items()}


def median_seconds(run: Callable[[], torch.Tensor], device: torch.device) -> Callable[[], float]:
    def once() -> float:
        if device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        run()
        if device.type == "cuda":
            torch.cuda.synchronize()
        return time.perf_counter() - start

    return once


def compare(
    model: torch.nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    repeats: int,
    amp: bool,
    device: torch.device,
) -> dict:
    ours = PGD(ThreatModel("linf", EPS), steps=STEPS, step_size=EPS / 4, seed=0, amp=amp)
    reference = torchattacks.PGD(model, eps=EPS, alpha=EPS / 4, steps=STEPS, random_start=True)
    time_ours = median_seconds(lambda: ours(model, x, y), device)
    time_reference = median_seconds(lambda: reference(x, y), device)
    time_ours(), time_reference()  # warm-up
    ours_times, reference_times = [], []
    for _ in range(repeats):
        ours_times.append(time_ours())
        reference_times.append(time_reference())
    ours_rate = x.shape[0] / statistics.median(ours_times)
    reference_rate = x.shape[0] / statistics.median(reference_times)
    return {
        "ours_images_per_s": round(ours_rate, 1),
        "torchattacks_images_per_s": round(reference_rate, 1),
        "ratio": round(ours_rate / reference_rate, 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument(
        "--amp", action="store_true", help="bfloat16 autocast in our PGD (CUDA only)"
    )
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--json", default=None, help="also write the results here")
    args = parser.parse_args()
    device = torch.device(args.device)
    dataset = load_dataset("digits")
    x = dataset.x_test[: args.batch_size].to(device)
    y = dataset.y_test[: args.batch_size].to(device)
    results = {
        "device": str(device),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "batch_size": x.shape[0],
        "eps": EPS,
        "steps": STEPS,
        "amp": args.amp,
        "models": {},
    }
    print(
        f"PGD-{STEPS} l-inf eps={EPS}, batch {x.shape[0]}, {device}, {torch.get_num_threads()} threads, amp={args.amp}"
    )
    print(f"{'model':24} {'ours img/s':>12} {'torchattacks img/s':>20} {'ratio':>7}")
    for name, model in models(dataset).items():
        row = compare(model.to(device), x, y, repeats=args.repeats, amp=args.amp, device=device)
        results["models"][name] = row
        print(
            f"{name:24} {row['ours_images_per_s']:>12} {row['torchattacks_images_per_s']:>20} {row['ratio']:>7}"
        )
    if args.json:
        with open(args.json, "w", encoding="utf-8") as handle:
            json.dump(results, handle, indent=2)


if __name__ == "__main__":
    main()
