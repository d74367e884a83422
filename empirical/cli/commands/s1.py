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
from semirobust.empirical.attacks.threat import NORMS, ThreatModel
from semirobust.empirical.cli.options import (
    add_common_options,
    add_split_options,
    non_negative_float,
    positive_int,
)
from semirobust.empirical.data import load_dataset
from semirobust.empirical.measure.linear_readout import LeastSquaresSettings
from semirobust.empirical.model.checkpoint import load_checkpoint
from semirobust.empirical.model.stages import fa_layers_from, split_stage_index
from semirobust.empirical.reports.s1 import s1_table, write_s1_json
from semirobust.empirical.reports.writers import run_metadata
from semirobust.empirical.runtime.device import resolve_device
from semirobust.empirical.studies.s1 import S1Config, run_s1
from semirobust.errors import BadInput


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "s1",
        description=__doc__.split("\n\n")[0],
    )
    parser.add_argument("--checkpoint", required=True, help="checkpoint directory (a robust model)")
    add_split_options(parser)
    parser.add_argument("--eps", type=non_negative_float, required=True, help="threat model radius")
    parser.add_argument(
        "--norm", choices=sorted(NORMS), default="linf", help="threat model norm (default: linf)"
    )
    parser.add_argument("--steps", type=positive_int, default=10, help="PGD steps (default: 10)")
    parser.add_argument(
        "--limit",
        type=positive_int,
        default=None,
        metavar="N",
        help="use the first N test inputs (default: all)",
    )
    parser.add_argument(
        "--fit-fraction",
        type=float,
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
    parser.add_argument("--data-root", default=None, help="folder of an on-disk dataset")
    parser.add_argument("--json", required=True, metavar="OUT", help="write the result JSON here")
    add_common_options(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    device = resolve_device(args.device)
    config = S1Config(
        threat=ThreatModel(args.norm, args.eps),
        attack=AttackSettings(steps=args.steps, restarts=1, seed=args.seed),
        batch_size=args.batch_size,
        least_squares=LeastSquaresSettings(args.fit_batch_size, args.rcond, args.ridge),
    )
    model, checkpoint = load_checkpoint(args.checkpoint, device)
    a = fa_layers_from(model, split=args.split, fb_layers=args.fb_layers)
    split_stage_index(model, a)
    dataset = load_dataset(checkpoint.dataset, seed=checkpoint.seed, root=args.data_root)
    x, y = dataset.x_test[: args.limit], dataset.y_test[: args.limit]
    fit_count = fit_inputs(y.numel(), args.fit_fraction)
    study = run_s1(model, a, x[:fit_count], x[fit_count:], y[fit_count:], config, device=device)
    write_s1_json(study, args.json, {**run_metadata(args), "checkpoint": str(args.checkpoint),
                                     "dataset": checkpoint.dataset, "device": str(device)})
    print(s1_table(study))
    return 0


def fit_inputs(total: int, fraction: float) -> int:
    """How many of ``total`` inputs fit the readouts; both parts must be non-empty."""
    if not 0 < fraction < 1:
        raise BadInput(f"--fit-fraction {fraction}: expected a number strictly between 0 and 1")
    count = round(total * fraction)
    if not 1 <= count <= total - 1:
        raise BadInput(
            f"--fit-fraction {fraction} of {total} inputs leaves no fit or no held-out "
            f"input; use more inputs (--limit) or another fraction"
        )
    return count
