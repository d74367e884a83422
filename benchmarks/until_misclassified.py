"""Robust accuracy by PGD-10 over the digits test set: run ``until_misclassified`` against
the last-iterate PGD of the same seed, side by side in one process (docs/attacks.md).

Models from a finished demo folder (``--run``, default ``runs/demo``): its normal model,
its robust model, and the robust first part under the normal rest (the ``Acc_sr``
network): a weakly, a strongly and a barely robust model. Rounds alternate the two
variants; printed per model: the median seconds of each over the rounds, the ratio
early / plain, and both robust accuracies (the early one can only be lower or equal).

    python benchmarks/until_misclassified.py [--run runs/demo] [--rounds 5] [--json OUT]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from dataclasses import replace
from pathlib import Path

import torch
from torch import nn

from semirobust.empirical.attacks import AttackSettings, build_attack
from semirobust.empirical.attacks.evaluation import evaluate_attack
from semirobust.empirical.data import load_dataset
from semirobust.empirical.model.checkpoint import load_checkpoint
from semirobust.empirical.model.stages import fa_layers_from, split_stage_index
from semirobust.empirical.studies.algorithm1 import Algorithm1Config, robust_part_under_normal_rest


def models(run: Path) -> tuple[Algorithm1Config, dict[str, nn.Module]]:
    config = Algorithm1Config.from_dict(json.loads((run / "algorithm1_config.json").read_text(encoding="utf-8")))
    normal, _ = load_checkpoint(run / "normal")
    robust, _ = load_checkpoint(run / "robust")
    boundary = split_stage_index(robust, fa_layers_from(robust, split=None, fb_layers=config.fb_layers))
    mixed = robust_part_under_normal_rest(normal, robust, boundary)
    return config, {"normal": normal, "robust": robust, "robust f_a under normal f_b": mixed}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", default="runs/demo", help="a finished demo (or algorithm1) folder")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--json", help="write the rows here")
    args = parser.parse_args()
    torch.set_num_threads(1)
    config, networks = models(Path(args.run))
    dataset = load_dataset(config.dataset)
    plain = AttackSettings(steps=config.attack_steps, restarts=1, seed=1).config(config.threat())
    rows = []
    for name, model in networks.items():
        seconds = {False: [], True: []}
        accuracy = {}
        for _ in range(args.rounds):
            for early in (False, True):
                attack = build_attack(config.attack, replace(plain, until_misclassified=early))
                start = time.perf_counter()
                evaluation = evaluate_attack(model, dataset.x_test, dataset.y_test, attack, progress=False)
                seconds[early].append(time.perf_counter() - start)
                accuracy[early] = evaluation.robust_accuracy().value
        row = {"model": name, "plain_s": statistics.median(seconds[False]),
               "until_misclassified_s": statistics.median(seconds[True]),
               "plain_robust_accuracy": accuracy[False], "until_misclassified_robust_accuracy": accuracy[True]}
        row["ratio"] = row["until_misclassified_s"] / row["plain_s"]
        rows.append(row)
        print(f"{name:28s} plain {row['plain_s']:.2f} s (acc {accuracy[False]:.4f})  until misclassified "
              f"{row['until_misclassified_s']:.2f} s (acc {accuracy[True]:.4f})  ratio {row['ratio']:.2f}",
              flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
