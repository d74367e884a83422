"""``semirobust check``: all quantities, all verdicts, report and plots for one checkpoint.

Measures, on the first ``--samples`` test inputs: robust accuracy, the gamma sandwich
(certified IBP/CROWN-IBP lower bounds and the PGD upper estimate), rho for every layer
pair with its independence baseline, Lipschitz bounds, the feature sensitivity and the
Lipschitz-transfer bound at every split; then judges T1, L1, T2 and LIP (L2 and T3 are
marked not applicable). Writes ``report.md``, ``report.json`` and ``plots/`` under ``--out``.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import torch
from torch import nn

from semirobust.empirical.attacks.threat import NORMS, ThreatModel
from semirobust.empirical.bounds.margin import MARGIN_METHODS
from semirobust.empirical.cli.options import (
    add_common_options,
    add_split_options,
    non_negative_float,
    positive_int,
)
from semirobust.empirical.data import Dataset, load_dataset
from semirobust.empirical.dependency import ESTIMATORS
from semirobust.empirical.model.checkpoint import load_checkpoint
from semirobust.empirical.model.stages import fa_layers_from
from semirobust.empirical.reports.check import write_check_report
from semirobust.empirical.reports.writers import run_metadata
from semirobust.empirical.runtime.device import resolve_device, seed_everything
from semirobust.empirical.studies.check import CheckSettings, run_check
from semirobust.errors import BadInput


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("check", description=__doc__)
    parser.add_argument("--checkpoint", required=True, help="checkpoint directory")
    add_split_options(parser)
    parser.add_argument("--out", required=True, help="report folder")
    parser.add_argument("--eps", type=non_negative_float, default=None,
                        help="threat radius (default: the checkpoint's training eps, else 8/255)")
    parser.add_argument("--norm", choices=sorted(NORMS), default="linf")
    parser.add_argument("--samples", type=positive_int, default=200, help="test inputs to use (default 200)")
    parser.add_argument("--estimator", default="ksg", help=f"dependency estimator ({', '.join(sorted(ESTIMATORS))})")
    parser.add_argument("--steps", type=positive_int, default=20, help="PGD steps (default 20, 2 restarts)")
    parser.add_argument("--data-root", default=None, help="folder of an on-disk dataset")
    parser.add_argument("--bounds", nargs="+", choices=list(MARGIN_METHODS),
                        default=list(CheckSettings.bound_methods),
                        help="certified margin bounds of the gamma sandwich (default: ibp crown-ibp)")
    add_common_options(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    seed_everything(args.seed)
    device = resolve_device(args.device)
    if args.estimator not in ESTIMATORS:
        raise BadInput(f"unknown estimator {args.estimator!r}; known: {', '.join(sorted(ESTIMATORS))}")
    model, config = load_checkpoint(args.checkpoint, device)
    a = fa_layers_from(model, split=args.split, fb_layers=args.fb_layers)
    eps = args.eps if args.eps is not None else float(config.recipe.get("eps", 8 / 255))
    dataset = load_dataset(config.dataset, seed=args.seed, root=args.data_root)
    settings = CheckSettings(a=a, threat=ThreatModel(args.norm, eps), n=args.samples,
                             estimator=args.estimator, attack_steps=args.steps, seed=args.seed,
                             bound_methods=tuple(args.bounds))
    _, summary = check_and_report(model, dataset, settings, Path(args.checkpoint), Path(args.out),
                                  device=device, args=args)
    print(summary)
    return 0


def check_and_report(model: nn.Sequential, dataset: Dataset, settings: CheckSettings, checkpoint: Path,
                     out: Path, *, device: torch.device, args: argparse.Namespace) -> tuple[dict[str, Any], str]:
    """Run every check on the test set, write the report under ``out``; return the report
    (with the command's metadata) and the printed summary."""
    report = run_check(model, dataset.x_test, dataset.y_test, settings, device=device)
    report = {**run_metadata(args), "checkpoint": str(checkpoint), **report}
    return report, write_check_report(report, out, checkpoint)
