"""``semirobust demo``: the paper's question on the embedded default, end to end.

Trains a normal and a PGD-robust 7-layer CNN on scikit-learn's digits, runs Algorithm 1
(THEORY.md section 6) with a robust first part under a normally trained rest, measures the
layer-to-layer dependency on attacked data, and writes ``results.json``, ``report.md`` and
``plots/*.png`` under ``--out``.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from semirobust.empirical.algorithm1 import Algorithm1Config, run_algorithm1
from semirobust.empirical.commands.common import add_common_options
from semirobust.empirical.data import load_dataset
from semirobust.empirical.algorithm1_report import write_algorithm1_report
from semirobust.empirical.device import resolve_device, seed_everything
from semirobust.empirical.training import TrainRecipe

DEMO_RECIPE = TrainRecipe(epochs=20, batch_size=64, lr=0.05)


def demo_config(seed: int) -> Algorithm1Config:
    """Digits, digits-cnn, PGD l-inf eps 0.1 (10 steps), 3 weight layers in f_b, 2 trials."""
    return Algorithm1Config(
        architecture="digits-cnn", dataset="digits", fb_layers=3, attack="pgd", norm="linf",
        eps=0.1, attack_steps=10, trials=2, finetune_epochs=10, tolerance=0.02,
        init="shared", estimator="ksg", recipe=DEMO_RECIPE, seed=seed,
    )


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("demo", help="the main job on the embedded default (digits), end to end",
                                   description=__doc__)
    parser.add_argument("--out", default="runs/demo", help="output folder (default: runs/demo)")
    parser.add_argument("--resume", action="store_true", help="continue an interrupted run in --out")
    add_common_options(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    start = time.perf_counter()
    seed_everything(args.seed)
    device = resolve_device(args.device)
    out = Path(args.out)
    results = run_algorithm1(
        demo_config(args.seed), load_dataset("digits"), out, device=device, resume=args.resume,
        log=lambda line: print(line, file=sys.stderr),
    )
    elapsed = time.perf_counter() - start
    summary = write_algorithm1_report(results, out, elapsed_seconds=elapsed, device=str(device))
    print(summary)
    return 0
