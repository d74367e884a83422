"""``semirobust lipschitz --checkpoint CKPT --json OUT``: per-layer and per-part l2
Lipschitz bounds of a checkpoint (docs/bounds.md).

Writes the per-layer factors, the product upper bound of the whole network and of
``f_a`` and ``f_b`` for the requested split (``--split A`` or ``--fb-layers N``) or, if
none is given, for every valid split; and the local lower bound found on ``--samples``
test inputs of the checkpoint's dataset (``--data-root`` for on-disk sets), which must not
exceed the product (a check printed and stored).
"""

from __future__ import annotations

import argparse
from typing import Any

from semirobust.empirical.bounds.lipschitz import (
    OperatorNormSettings,
    lipschitz_upper,
    split_lipschitz,
)
from semirobust.empirical.cli.checkpoint_input import open_checkpoint_and_data
from semirobust.empirical.cli.options import (
    add_checkpoint_options,
    add_common_options,
    add_json_output,
    add_samples_option,
    add_split_options,
    non_negative_int,
    positive_int,
)
from semirobust.empirical.measure.local_lipschitz import local_lipschitz_lower
from semirobust.empirical.model.stages import count_weight_layers, fa_layers_from, valid_splits
from semirobust.empirical.reports.writers import run_metadata, write_json_atomic


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "lipschitz",
        description="Per-layer and per-part l2 Lipschitz bounds of a checkpoint, with a local "
        "lower bound on test inputs (docs/bounds.md).",
    )
    add_checkpoint_options(parser)
    add_json_output(parser)
    add_split_options(parser, required=False, missing=" (default: every valid split)")
    add_samples_option(parser, default=64, allow_zero=True,
                       help="test inputs for the local lower bound; 0 skips it")
    parser.add_argument(
        "--exact-input-limit",
        type=non_negative_int,
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
    opened = open_checkpoint_and_data(args)
    model, config, device = opened.model, opened.config, opened.device
    settings = OperatorNormSettings(
        exact_input_limit=args.exact_input_limit,
        power_iterations=args.power_iterations,
        seed=args.seed,
    )
    whole = lipschitz_upper(model, opened.input_shape, settings, device=device)
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
        "checkpoint": str(opened.path),
        "dataset": config.dataset,
        "dataset_seed": config.seed,
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
        x, _ = opened.test_inputs(args.samples)
        local = local_lipschitz_lower(model, x, seed=args.seed, device=device)
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
