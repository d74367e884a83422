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

from semirobust.empirical.attacks import AttackSettings
from semirobust.empirical.attacks.threat import NORMS, ThreatModel
from semirobust.empirical.cli.options import (
    add_common_options,
    add_split_options,
    non_negative_float,
    positive_int,
)
from semirobust.empirical.data import load_dataset
from semirobust.empirical.dependency import ESTIMATORS
from semirobust.empirical.model.checkpoint import load_checkpoint
from semirobust.empirical.model.stages import fa_layers_from
from semirobust.empirical.reports.check import write_check_report
from semirobust.empirical.reports.writers import run_metadata
from semirobust.empirical.runtime.device import resolve_device
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
    parser.add_argument("--steps", type=positive_int, default=20, help="steps of every attack (default 20)")
    parser.add_argument("--restarts", type=positive_int, default=2, help="restarts of every attack (default 2)")
    parser.add_argument("--data-root", default=None, help="folder of an on-disk dataset")
    add_common_options(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    device = resolve_device(args.device)
    if args.estimator not in ESTIMATORS:
        raise BadInput(f"unknown estimator {args.estimator!r}; known: {', '.join(sorted(ESTIMATORS))}")
    model, config = load_checkpoint(args.checkpoint, device)
    a = fa_layers_from(model, split=args.split, fb_layers=args.fb_layers)
    eps = args.eps if args.eps is not None else float(config.recipe.get("eps", 8 / 255))
    dataset = load_dataset(config.dataset, seed=args.seed, root=args.data_root)
    settings = CheckSettings(a=a, threat=ThreatModel(args.norm, eps), n=args.samples, estimator=args.estimator,
                             attack=AttackSettings(steps=args.steps, restarts=args.restarts, seed=args.seed))
    result = run_check(model, dataset.x_test, dataset.y_test, settings, device=device)
    print(write_check_report(result, Path(args.out), Path(args.checkpoint), metadata=run_metadata(args)))
    return 0
