"""``semirobust rho``: the dependency rho_j for every consecutive layer pair of f_b.

Loads the checkpoint, attacks its dataset's test inputs (``--attack none``: clean
inputs), takes the activations ``h_a .. h_n`` of the attacked inputs and reports, for
``j = a+1 .. n``, ``rho_j = sum_y pi(y) I(h_{j-1}; h_j | y)`` (THEORY.md section 2) with
its half-sampling interval and the permutation baseline (the same estimator at
independence). Every value names its estimator, settings and unit (caveat C2).
"""

from __future__ import annotations

import argparse
import json

import torch

from semirobust.empirical.attacks import AttackConfig, attack_names, build_attack
from semirobust.empirical.cli.checkpoint_input import open_checkpoint_and_data
from semirobust.empirical.cli.options import (
    add_attack_options,
    add_checkpoint_options,
    add_common_options,
    add_json_output,
    add_samples_option,
    add_split_options,
    add_threat_options,
    non_negative_int,
    open_unit_float,
    positive_int,
    threat_model,
)
from semirobust.empirical.dependency import ESTIMATORS, REDUCTIONS, dependency_per_layer_pair
from semirobust.empirical.dependency.rho import TooFewSamples
from semirobust.empirical.dependency.units import NATS_PER_UNIT
from semirobust.empirical.model.stages import (
    count_weight_layers,
    fa_layers_from,
    layer_activations,
    split_stage_index,
)
from semirobust.empirical.reports.writers import run_metadata, write_json_atomic
from semirobust.errors import BadInput

NO_ATTACK = "none"


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("rho", description=__doc__.split("\n\n")[0])
    add_checkpoint_options(parser)
    add_split_options(parser)
    parser.add_argument("--estimator", choices=sorted(ESTIMATORS), default="ksg",
                        help="dependency estimator (default: ksg; edge-authors: the authors' EDGE as the paper "
                             "computed rho, docs/dependency.md)")
    parser.add_argument("--setting", action="append", default=[], metavar="KEY=VALUE",
                        help="estimator setting, repeatable (e.g. --setting k=5; values parsed as JSON, else text)")
    add_attack_options(parser, attack="pgd", attack_names=[*attack_names(), NO_ATTACK], steps=10, restarts=1)
    add_threat_options(parser, from_checkpoint=True)
    add_samples_option(parser, default=None)
    parser.add_argument("--unit", choices=sorted(NATS_PER_UNIT), default=None,
                        help="information unit (default: bits; HSIC/CKA are dimensionless and take none)")
    parser.add_argument("--replicates", type=non_negative_int, default=50,
                        help="half-sampling replicates for the interval, 0: none (default: 50)")
    parser.add_argument("--level", type=open_unit_float, default=0.95, help="interval level (default: 0.95)")
    parser.add_argument("--permutations", type=non_negative_int, default=5,
                        help="within-class permutations for the baseline, 0: none (default: 5)")
    parser.add_argument("--reduction", choices=sorted(REDUCTIONS), default="none", help="dimension reduction per layer (default: none)")
    parser.add_argument("--components", type=positive_int, default=None, help="dimensions kept by --reduction pca|random")
    parser.add_argument("--batch-size", type=positive_int, default=256, help="attack and forward batch size (default: 256)")
    add_json_output(parser)
    add_common_options(parser)
    parser.set_defaults(run=run)


def parse_settings(pairs: list[str]) -> dict:
    """``["k=5", "combine=mean"]`` -> ``{"k": 5, "combine": "mean"}`` (JSON values, else text)."""
    settings = {}
    for pair in pairs:
        key, sep, text = pair.partition("=")
        if not sep or not key:
            raise BadInput(f"--setting {pair!r}: expected KEY=VALUE")
        try:
            settings[key] = json.loads(text)
        except json.JSONDecodeError:
            settings[key] = text
    return settings


def run(args: argparse.Namespace) -> int:
    settings = parse_settings(args.setting)
    opened = open_checkpoint_and_data(args)
    model, device = opened.model, opened.device
    a = fa_layers_from(model, split=args.split, fb_layers=args.fb_layers)
    split_stage_index(model, a)
    n = count_weight_layers(model)
    x, y = opened.test_inputs(args.samples)
    threat = threat_model(args, opened.config.recipe, opened.input_shape)

    attack = None
    if args.attack != NO_ATTACK:
        attack = build_attack(args.attack, AttackConfig(threat=threat, steps=args.steps,
                                                        restarts=args.restarts, seed=args.seed))
    layers, correct = _attacked_activations(model, x, y, attack, args.batch_size, device)
    try:
        pairs = dependency_per_layer_pair(
            layers[a - 1:], y.to(device), args.estimator, names=[f"rho_{j}" for j in range(a + 1, n + 1)],
            seed=args.seed, unit=args.unit, replicates=args.replicates, level=args.level,
            permutations=args.permutations, reduction=args.reduction, components=args.components, **settings,
        )
    except TooFewSamples as error:
        raise BadInput(with_reduction_hint(error, args.reduction)) from None
    result = {
        **run_metadata(args),
        "checkpoint": str(opened.path),
        "dataset": opened.config.dataset,
        "dataset_seed": opened.config.seed,
        "eps_source": args.eps_source,
        "samples": int(y.numel()),
        "split": {"a": a, "n": n, "fb_layers": n - a},
        "attack": None if attack is None else attack.settings(),
        "accuracy_on_inputs": correct / y.numel(),
        "device": str(device),
        "pairs": [{"j": a + 1 + i, "layers": [a + i, a + 1 + i], **pair.to_dict()} for i, pair in enumerate(pairs)],
    }
    write_json_atomic(args.json, result)
    for pair in pairs:
        baseline = "" if pair.independent is None else f"  (independent: {pair.independent.value:.3g})"
        print(pair.rho.describe() + baseline)
    return 0


def with_reduction_hint(error: TooFewSamples, reduction: str) -> str:
    """The estimator's message, plus the fix where the layers' dimension is what makes the
    class too small (the estimator would accept the class at dimensions (1, 1)) and no
    reduction was asked for: ``--reduction pca`` with fewer ``--components``."""
    if reduction != "none" or not error.dimension_bound:
        return str(error)
    return (f"{error}; reduce the layers' dimension with --reduction pca (and --components K) "
            f"or use more samples per class")


def _attacked_activations(model, x, y, attack, batch_size, device) -> tuple[list[torch.Tensor], int]:
    """Activations of every weight layer on the (attacked) inputs, and the correct count."""
    per_batch, correct = [], 0
    for start in range(0, x.shape[0], batch_size):
        xb, yb = x[start:start + batch_size].to(device), y[start:start + batch_size].to(device)
        if attack is not None:
            xb = attack(model, xb, yb)
        with torch.no_grad():
            activations, logits = layer_activations(model, xb)
        correct += int((logits.argmax(dim=1) == yb).sum())
        per_batch.append([h.float() for h in activations])
    return [torch.cat(layer) for layer in zip(*per_batch)], correct
