"""The same 8 tiny Algorithm 1 settings (1 trial each) as a sweep on a local Ray instance with
2 CPUs and one after another in this process, side by side; prints both times, their ratio,
and Ray's fixed overhead (starting the instance and running 8 empty tasks).

    OMP_NUM_THREADS=1 python benchmarks/sweep.py [--json OUT]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import ray
import torch

from semirobust.empirical.data import load_dataset
from semirobust.empirical.studies.algorithm1 import run_algorithm1
from semirobust.empirical.studies.sweep import Resources, run_sweep
from semirobust.empirical.studies.sweep_spec import parse_spec

SPEC = {
    "fixed": {"architecture": "digits-cnn", "eps": 0.1, "attack_steps": 5, "trials": 1,
              "finetune_epochs": 2, "tolerance": 0.05},
    "recipe": {"epochs": 4},
    "architecture_kwargs": {"digits-cnn": {"width": 8}},
    "axes": {"attack": ["pgd", "fgsm"], "fb_layers": [3, 4], "init": ["shared", "independent"]},
}


@ray.remote(num_cpus=1)
def _empty() -> None:
    return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", default=None, help="also write the times here")
    args = parser.parse_args()
    torch.set_num_threads(1)
    spec = parse_spec(SPEC)
    with tempfile.TemporaryDirectory() as folder:
        start = time.perf_counter()
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
        ray.get([_empty.remote() for _ in range(8)])
        overhead = time.perf_counter() - start
        start = time.perf_counter()
        run_sweep(spec, Path(folder) / "sweep", resources=Resources(cpus=1, gpus=0.0), progress=False)
        swept = time.perf_counter() - start
        ray.shutdown()
        dataset = load_dataset("digits")
        start = time.perf_counter()
        for setting in spec.settings():  # each setting trains its own models, as one-by-one runs do
            run_algorithm1(setting.config, dataset, Path(folder) / "alone" / setting.name,
                           device=torch.device("cpu"), progress=False, log=lambda _: None)
        alone = time.perf_counter() - start
    print(f"Ray start + 8 empty tasks: {overhead:.1f} s")
    print(f"sweep of 8 settings on 2 CPUs (models shared): {swept:.1f} s")
    print(f"the same 8 settings one after another in one process: {alone:.1f} s")
    print(f"ratio one-by-one / sweep: {alone / swept:.2f}x")
    if args.json:
        Path(args.json).write_text(json.dumps({"ray_overhead_seconds": overhead, "sweep_seconds": swept,
                                               "one_by_one_seconds": alone, "ratio": alone / swept}, indent=2))


if __name__ == "__main__":
    main()
