"""``semirobust s1``: Algorithm S1, linear readouts of the robust first part, and L2 judged.

Loads a (robust) checkpoint, splits it at ``a``, fits the linear readout
``G(x) = [h_1(x), ..., h_a(x), 1] Lambda`` to the network's logits on the first part of
its dataset's test inputs (least squares per batch, averaged), and reports on the rest:
clean and PGD accuracy, gamma (expected margin under margin PGD, kind attack), R^2 and
argmax agreement with the network, for the combined readout, one fitted readout per layer,
the combined readout's per-layer blocks, and the network itself; L2 is judged with the
blocks and with the per-layer readouts (docs/s1.md).
"""

from __future__ import annotations

import argparse

from semirobust.empirical.attacks import AttackSettings
from semirobust.empirical.cli.checkpoint_input import open_checkpoint_and_data
from semirobust.empirical.cli.options import (
    add_attack_options,
    add_checkpoint_options,
    add_common_options,
    add_json_output,
    add_samples_option,
    add_split_options,
    add_threat_options,
    non_negative_float,
    open_unit_float,
    positive_int,
    threat_model,
)
from semirobust.empirical.measure.linear_readout import LeastSquaresSettings
from semirobust.empirical.model.stages import fa_layers_from, split_stage_index
from semirobust.empirical.reports.s1 import s1_table, write_s1_json
from semirobust.empirical.reports.writers import run_metadata
from semirobust.empirical.studies.s1 import S1Config, run_s1
from semirobust.errors import BadInput


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "s1",
        description=__doc__.split("\n\n")[0],
    )
    add_checkpoint_options(parser, help="checkpoint directory (a robust model)")
    add_split_options(parser)
    add_threat_options(parser, from_checkpoint=True)
    add_attack_options(parser, steps=10, steps_help="PGD steps")
    add_samples_option(parser, default=None)
    parser.add_argument(
        "--fit-fraction",
        type=open_unit_float,
        default=0.5,
        help="share of the test inputs used to fit the readouts; the rest is held out "
        "for every reported number (default: 0.5)",
    )
    parser.add_argument(
        "--fit-batch-size",
        type=positive_int,
        default=LeastSquaresSettings.batch_size,
        help="inputs per least-squares batch; solutions are averaged over batches "
        f"(default: {LeastSquaresSettings.batch_size})",
    )
    parser.add_argument(
        "--rcond",
        type=non_negative_float,
        default=LeastSquaresSettings.rcond,
        help="singular values below rcond * the largest count as zero "
        f"(default: {LeastSquaresSettings.rcond})",
    )
    parser.add_argument(
        "--ridge",
        type=non_negative_float,
        default=LeastSquaresSettings.ridge,
        help="ridge penalty on the readout's weights, bias not penalised (default: 0)",
    )
    parser.add_argument(
        "--batch-size", type=positive_int, default=256, help="attack batch size (default: 256)"
    )
    add_json_output(parser)
    add_common_options(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    opened = open_checkpoint_and_data(args)
    model, device = opened.model, opened.device
    config = S1Config(
        threat=threat_model(args, opened.config.recipe, opened.input_shape),
        attack=AttackSettings(steps=args.steps, restarts=1, seed=args.seed),
        batch_size=args.batch_size,
        least_squares=LeastSquaresSettings(args.fit_batch_size, args.rcond, args.ridge),
    )
    a = fa_layers_from(model, split=args.split, fb_layers=args.fb_layers)
    split_stage_index(model, a)
    x, y = opened.test_inputs(args.samples)
    fit_count = fit_inputs(y.numel(), args.fit_fraction)
    study = run_s1(model, a, x[:fit_count], x[fit_count:], y[fit_count:], config, device=device)
    write_s1_json(study, args.json, {
        **run_metadata(args), "checkpoint": str(opened.path), "dataset": opened.config.dataset,
        "dataset_seed": opened.config.seed, "eps_source": args.eps_source, "device": str(device),
    })
    print(s1_table(study))
    return 0


def fit_inputs(total: int, fraction: float) -> int:
    """How many of ``total`` inputs fit the readouts; both parts must be non-empty."""
    if not 0 < fraction < 1:  # --fit-fraction is validated at parse time; the API is not
        raise BadInput(f"--fit-fraction {fraction}: expected a number strictly between 0 and 1")
    count = round(total * fraction)
    if not 1 <= count <= total - 1:
        raise BadInput(
            f"--fit-fraction {fraction} of {total} inputs leaves no fit or no held-out "
            f"input; use more inputs (--samples) or another fraction"
        )
    return count
