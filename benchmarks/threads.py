"""PGD over the digits test set at 1 and 2 torch threads, side by side, without and with a
second process keeping one core busy: the measurement behind the CLI's ``--threads``
default (issue 17 item 1; BENCHMARKS.md).

One process, one model (digits-cnn, width 16, random weights from seed 0: time does not
depend on training), the whole digits test set in batches of ``--batch-size``, PGD-10
l-inf eps 0.1 from a seeded random start. The thread counts alternate round by round
(``torch.set_num_threads``), ``--repeats`` rounds each, first without and then with a
busy process (``python -c "while True: pass"``, started here and ended here by its pid);
medians are reported with the ratio ``time(2 threads) / time(1 thread)`` (> 1: two
threads are slower). The load average at the start of each block is printed, since a
"quiet" block on a shared machine is only as quiet as the other users let it be.
Whether the adversarial inputs are bit-identical across thread counts is printed too.

    OMP_NUM_THREADS=1 python benchmarks/threads.py [--repeats 5] [--json OUT]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

import torch

from semirobust.empirical.attacks import PGD
from semirobust.empirical.attacks.threat import ThreatModel
from semirobust.empirical.data import load_dataset
from semirobust.empirical.model import ArchitectureSpec, build_model

EPS = 0.1
STEPS = 10
THREAD_COUNTS = (1, 2)


def attack_all(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int) -> torch.Tensor:
    """PGD-10 (seed 0) on every input, batch by batch; the adversarial inputs."""
    pgd = PGD(ThreatModel("linf", EPS), steps=STEPS, step_size=EPS / 4, seed=0)
    return torch.cat([pgd(model, x[i:i + batch_size], y[i:i + batch_size])
                      for i in range(0, x.shape[0], batch_size)])


def timed_block(model, x, y, batch_size: int, repeats: int) -> tuple[dict[int, list[float]], dict[int, torch.Tensor]]:
    """Seconds per round for each thread count (alternating), and each count's last output."""
    seconds: dict[int, list[float]] = {n: [] for n in THREAD_COUNTS}
    outputs: dict[int, torch.Tensor] = {}
    for _ in range(repeats):
        for n in THREAD_COUNTS:
            torch.set_num_threads(n)
            start = time.perf_counter()
            outputs[n] = attack_all(model, x, y, batch_size)
            seconds[n].append(time.perf_counter() - start)
    return seconds, outputs


def summary(label: str, seconds: dict[int, list[float]], outputs: dict[int, torch.Tensor], load: float) -> dict:
    medians = {n: statistics.median(times) for n, times in seconds.items()}
    identical = bool(torch.equal(outputs[1], outputs[2]))
    max_difference = float((outputs[1] - outputs[2]).abs().max())
    row = {
        "condition": label,
        "load_average_1min_at_start": load,
        "median_seconds": {str(n): round(t, 3) for n, t in medians.items()},
        "rounds_seconds": {str(n): [round(t, 3) for t in times] for n, times in seconds.items()},
        "ratio_2_over_1": round(medians[2] / medians[1], 2),
        "adversarial_inputs_identical": identical,
        "max_abs_difference": max_difference,
    }
    print(f"{label:28} load {load:5.2f}  1 thread {medians[1]:7.2f} s  2 threads {medians[2]:7.2f} s  "
          f"ratio 2/1 {row['ratio_2_over_1']:6.2f}  identical outputs: {identical} "
          f"(max |diff| {max_difference:.2e})", flush=True)
    return row


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=5, help="rounds per thread count and condition (default 5)")
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--json", default=None, help="also write the results here")
    args = parser.parse_args()
    dataset = load_dataset("digits")
    spec = ArchitectureSpec("digits-cnn", dataset.input_shape, 10, dataset.mean, dataset.std, {"width": 16})
    torch.manual_seed(0)
    model = build_model(spec).eval()
    x, y = dataset.x_test, dataset.y_test
    print(f"PGD-{STEPS} l-inf eps={EPS} on the {x.shape[0]} digits test inputs, digits-cnn (width 16), "
          f"batch {args.batch_size}, {args.repeats} alternating rounds per thread count; "
          f"torch {torch.__version__}, {os.cpu_count()} CPUs", flush=True)
    attack_all(model, x[: args.batch_size], y[: args.batch_size], args.batch_size)  # warm-up
    rows = []
    seconds, outputs = timed_block(model, x, y, args.batch_size, args.repeats)
    rows.append(summary("as found (no extra load)", seconds, outputs, os.getloadavg()[0]))
    busy = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        load = os.getloadavg()[0]
        seconds, outputs = timed_block(model, x, y, args.batch_size, args.repeats)
    finally:
        busy.kill()
        busy.wait()
    rows.append(summary("one core kept busy", seconds, outputs, load))
    if args.json:
        with open(args.json, "w", encoding="utf-8") as handle:
            json.dump({"torch": torch.__version__, "cpus": os.cpu_count(), "eps": EPS, "steps": STEPS,
                       "inputs": int(x.shape[0]), "batch_size": args.batch_size, "rows": rows}, handle, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
