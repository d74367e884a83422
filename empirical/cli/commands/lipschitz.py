"""``semirobust lipschitz --checkpoint CKPT --json OUT``: per-layer and per-part l2
Lipschitz bounds of a checkpoint (docs/bounds.md).

Writes the per-layer factors, the product upper bound of the whole network and of
``f_a`` and ``f_b`` for the requested split (``--split A`` or ``--fb-layers N``) or, if
none is given, for every valid split; and the local lower bound found on ``--samples``
test inputs, which must not exceed the product (a check printed and stored).
"""

from __future__ import annotations

import argparse
from typing import Any

from semirobust.empirical.bounds.lipschitz import (
    OperatorNormSettings,
    lipschitz_upper,
    split_lipschitz,
)
from semirobust.empirical.cli.options import add_common_options, positive_int
from semirobust.empirical.data import load_dataset
from semirobust.empirical.measure.local_lipschitz import local_lipschitz_lower
from semirobust.empirical.model.checkpoint import load_checkpoint
from semirobust.empirical.model.stages import count_weight_layers, fa_layers_from, valid_splits
from semirobust.empirical.reports.writers import run_metadata, write_json_atomic
from semirobust.empirical.runtime.device import resolve_device
from semirobust.errors import BadInput


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "lipschitz",
        description="Per-layer and per-part l2 Lipschitz bounds of a checkpoint, with a local "
        "lower bound on test inputs (docs/bounds.md).",
    )
    parser.add_argument("--checkpoint", required=True, help="checkpoint directory")
    parser.add_argument(
        "--json", required=True, metavar="OUT", help="where to write the JSON result"
    )
    group = parser.add_mutually_exclusive_group()
    group.add_argument(
        "--split", type=int, metavar="A", help="weight layers in f_a (default: every valid split)"
    )
    group.add_argument(
        "--fb-layers", type=int, metavar="N", help="weight layers in f_b (paper's convention)"
    )
    parser.add_argument(
        "--samples",
        type=int,
        default=64,
        metavar="N",
        help="test inputs for the local lower bound; 0 skips it (default: 64)",
    )
    parser.add_argument(
        "--exact-input-limit",
        type=int,
        default=OperatorNormSettings.exact_input_limit,
        metavar="D",
        help="largest layer input size whose operator norm is computed exactly "
        "by SVD of the unrolled operator; larger ones use power iteration (default: %(default)s)",
    )
    parser.add_argument(
        "--power-iterations",
        type=positive_int,
        default=OperatorNormSettings.power_iterations,
        metavar="K",
        help="power-iteration steps at most (default: %(default)s)",
    )
    add_common_options(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    if args.samples < 0:
        raise BadInput(f"--samples {args.samples}: must be >= 0")
    if args.exact_input_limit < 0:
        raise BadInput(f"--exact-input-limit {args.exact_input_limit}: must be >= 0")
    device = resolve_device(args.device)
    model, config = load_checkpoint(args.checkpoint, device)
    settings = OperatorNormSettings(
        exact_input_limit=args.exact_input_limit,
        power_iterations=args.power_iterations,
        seed=args.seed,
    )
    input_shape = config.architecture.input_shape
    whole = lipschitz_upper(model, input_shape, settings, device=device)
    if args.split is None and args.fb_layers is None:
        splits = valid_splits(model)
    else:
        splits = [fa_layers_from(model, split=args.split, fb_layers=args.fb_layers)]
    n = count_weight_layers(model)
    parts = []
    for a in splits:
        f_a, f_b = split_lipschitz(model, whole, a)
        parts.append(
            {
                "a": a,
                "fb_layers": n - a,
                "f_a": f_a.measurement("lipschitz_f_a", a=a).to_dict(),
                "f_b": f_b.measurement("lipschitz_f_b", a=a).to_dict(),
            }
        )
    result: dict[str, Any] = {
        **run_metadata(args),
        "checkpoint": str(args.checkpoint),
        "architecture": config.architecture.to_dict(),
        "weight_layers": n,
        "layers": [layer.to_dict() for layer in whole.layers],
        "whole": whole.measurement("lipschitz_F").to_dict(),
        "splits": parts,
        "local_lower": None,
        "upper_at_least_local_lower": None,
    }
    print(whole.measurement("lipschitz_F").describe())
    if args.samples:
        dataset = load_dataset(config.dataset, seed=config.seed)
        local = local_lipschitz_lower(
            model, dataset.x_test[: args.samples], seed=args.seed, device=device
        )
        result["local_lower"] = local.measurement().to_dict()
        result["upper_at_least_local_lower"] = bool(local.value <= whole.product * (1 + 1e-9))
        print(local.measurement().describe())
    for part in parts:
        print(
            f"split a={part['a']}: L(f_a) <= {part['f_a']['value']:.4g}, "
            f"L(f_b) <= {part['f_b']['value']:.4g}"
        )
    write_json_atomic(args.json, result)
    return 0
