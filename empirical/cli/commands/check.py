"""``semirobust check``: all quantities, all verdicts, report and plots for one checkpoint.

Measures, on the first ``--samples`` test inputs of the checkpoint's own dataset draw (its
recorded seed; ``--seed`` drives the attacks and estimators only): robust accuracy, the
gamma sandwich (certified IBP/CROWN-IBP lower bounds and the PGD upper estimate), rho for every layer
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

from semirobust.empirical.cli.checkpoint_input import open_checkpoint_and_data
from semirobust.empirical.cli.options import (
    add_attack_options,
    add_checkpoint_options,
    add_common_options,
    add_out_folder,
    add_samples_option,
    add_split_options,
    add_threat_options,
    threat_model,
)
from semirobust.empirical.data import Dataset
from semirobust.empirical.dependency import ESTIMATORS
from semirobust.empirical.model.stages import fa_layers_from
from semirobust.empirical.reports.check import write_check_report
from semirobust.empirical.reports.writers import run_metadata
from semirobust.empirical.runtime.device import seed_everything
from semirobust.empirical.studies.check import CheckSettings, run_check


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("check", description=__doc__)
    add_checkpoint_options(parser)
    add_split_options(parser)
    add_out_folder(parser, help="report folder")
    add_threat_options(parser, from_checkpoint=True)
    add_samples_option(parser, default=200, help="test inputs to use")
    parser.add_argument("--estimator", choices=sorted(ESTIMATORS), default="ksg",
                        help="dependency estimator (default: ksg)")
    add_attack_options(parser, steps=20, steps_help="PGD steps of robust accuracy (2 restarts)")
    add_common_options(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    seed_everything(args.seed)
    opened = open_checkpoint_and_data(args)
    a = fa_layers_from(opened.model, split=args.split, fb_layers=args.fb_layers)
    threat = threat_model(args, opened.config.recipe, opened.input_shape)
    settings = CheckSettings(a=a, threat=threat, n=args.samples,
                             estimator=args.estimator, attack_steps=args.steps, seed=args.seed)
    _, summary = check_and_report(opened.model, opened.dataset, settings, opened.path, Path(args.out),
                                  device=opened.device, args=args)
    print(summary)
    return 0


def check_and_report(model: nn.Sequential, dataset: Dataset, settings: CheckSettings, checkpoint: Path,
                     out: Path, *, device: torch.device, args: argparse.Namespace) -> tuple[dict[str, Any], str]:
    """Run every check on the test set, write the report under ``out``; return the report
    (with the command's metadata) and the printed summary."""
    report = run_check(model, dataset.x_test, dataset.y_test, settings, device=device)
    report = {**run_metadata(args), "checkpoint": str(checkpoint), **report}
    return report, write_check_report(report, out, checkpoint)
