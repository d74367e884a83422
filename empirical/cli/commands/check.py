"""``semirobust check``: all quantities, all verdicts, report and plots for one checkpoint
(or a user's own model: ``--model package.module:callable --weights FILE --dataset D``).

Measures, on the first ``--samples`` test inputs of the checkpoint's own dataset draw (its
recorded seed; ``--seed`` drives the attacks and estimators only): robust accuracy, the
gamma sandwich (certified IBP/CROWN-IBP lower bounds and the PGD upper estimate), rho for every layer
pair with its independence baseline, Lipschitz bounds, the feature sensitivity and the
Lipschitz-transfer bound at every split; then judges T1, L1, T2 and LIP (L2 and T3 are
marked not applicable). ``--readout`` names what every gamma and A2 gap is read through
(caveat C1): the trained rest (canonical, the default), a norm-constrained linear probe
per layer fitted on the first ``--probe-samples`` training inputs (clean, or at PGD's
points), or the rest divided by its certified Lipschitz constant. Writes ``report.md``,
``report.json`` and ``plots/`` under ``--out``. Before any work, every operation the
certified bounds have no rule for (a layer, or a node of a traced model, with its
operation) is named on stderr, one line each; the rest is then measured without
certificates.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from semirobust.empirical.attacks import AttackSettings
from semirobust.empirical.bounds.margin import MARGIN_METHODS
from semirobust.empirical.cli.checkpoint_input import OpenedCheckpoint, open_checkpoint_and_data
from semirobust.empirical.cli.options import (
    add_attack_options,
    add_checkpoint_options,
    add_common_options,
    add_out_folder,
    add_samples_option,
    add_split_options,
    add_threat_options,
    positive_float,
    positive_int,
    threat_model,
)
from semirobust.empirical.dependency import ESTIMATORS
from semirobust.empirical.measure.readouts import FIT_DATA, PROBE_METHODS
from semirobust.empirical.model.stages import fa_layers_from, split_network
from semirobust.empirical.reports.check import write_check_report
from semirobust.empirical.reports.writers import run_metadata
from semirobust.empirical.studies.check import CheckSettings, missing_bound_rules, run_check
from semirobust.empirical.studies.check_readouts import READOUTS, FitData, ReadoutSettings


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("check", description=__doc__)
    add_checkpoint_options(parser)
    add_split_options(parser)
    add_out_folder(parser, help="report folder")
    add_threat_options(parser, from_checkpoint=True)
    add_samples_option(parser, default=200, help="test inputs to use")
    parser.add_argument("--estimator", choices=sorted(ESTIMATORS), default="ksg",
                        help="dependency estimator (default: ksg)")
    add_attack_options(parser, steps=20, restarts=2, steps_help="steps of every attack")
    parser.add_argument("--bounds", nargs="+", choices=list(MARGIN_METHODS),
                        default=list(CheckSettings.bound_methods),
                        help="certified margin bounds of the gamma sandwich (default: ibp crown-ibp)")
    _add_readout_options(parser)
    add_common_options(parser)
    parser.set_defaults(run=run)


def _add_readout_options(parser: argparse.ArgumentParser) -> None:
    defaults = ReadoutSettings()
    parser.add_argument("--readout", choices=READOUTS, default=defaults.name,
                        help="the readout of every layer's gamma and A2 gap (caveat C1; default: canonical)")
    parser.add_argument("--probe-method", choices=PROBE_METHODS, default=defaults.method,
                        help=f"how a probe is fitted (default: {defaults.method})")
    parser.add_argument("--probe-fit", choices=FIT_DATA, default=defaults.fitted_on,
                        help="fit probes on clean activations or on those at the PGD points "
                             f"(default: {defaults.fitted_on})")
    parser.add_argument("--probe-norm", type=positive_float, default=defaults.norm_bound,
                        help=f"the probes' constraint ||W||_2 <= B (default: {defaults.norm_bound:g})")
    parser.add_argument("--probe-samples", type=positive_int, default=500,
                        help="training inputs the probes are fitted on (default: 500)")


def _fit_data(opened: OpenedCheckpoint, samples: int) -> FitData:
    """The first ``samples`` training inputs: held out from the test inputs measured."""
    data = opened.dataset
    x, y = data.x_train[:samples], data.y_train[:samples]
    return FitData(x, y, f"the first {x.shape[0]} training inputs of {opened.config.dataset} "
                         f"(seed {opened.config.seed})")


def run(args: argparse.Namespace) -> int:
    opened = open_checkpoint_and_data(args)
    a = fa_layers_from(opened.model, split=args.split, fb_layers=args.fb_layers)
    settings = CheckSettings(
        a=a, threat=threat_model(args, opened.config.recipe, opened.input_shape), n=args.samples,
        estimator=args.estimator, attack=AttackSettings(steps=args.steps, restarts=args.restarts, seed=args.seed),
        bound_methods=tuple(args.bounds),
        readout=ReadoutSettings(args.readout, method=args.probe_method, fitted_on=args.probe_fit,
                                norm_bound=args.probe_norm),
    )
    split_network(opened.model, a)  # a split that cuts a block is refused before anything is said
    missing = missing_bound_rules(opened.model, settings.bound_methods)
    if missing:
        print(f"semirobust check: no certified bounds: {len(missing)} operation(s) have no bound rule; "
              "measuring what needs no certificate", file=sys.stderr)
        for entry in missing:
            print(f"semirobust check: no bound rule: {entry}", file=sys.stderr)
    x, y = opened.test_inputs(None)
    fit = _fit_data(opened, args.probe_samples) if args.readout == "probe" else None
    result = run_check(opened.model, x, y, settings, device=opened.device, fit=fit)
    print(write_check_report(result, Path(args.out), opened.path, metadata=run_metadata(args),
                             source=opened.description))
    return 0
