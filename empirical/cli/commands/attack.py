"""``semirobust attack``: robust accuracy of a checkpoint under one attack (docs/attacks.md).

Loads the checkpoint and its dataset's test split, attacks the first ``--samples`` (or
``--limit``) inputs in the threat model ``--eps --norm`` (default: the checkpoint's training one)
and writes clean and robust accuracy and the expected adversarial margin (each a
Measurement) plus per-input margins and reliability flags to ``--json``. ``--ladder``
also runs the weaker attacks of FGSM -> I-FGSM -> PGD -> AutoAttack up to the chosen one
and the chosen attack at ``eps/2``, and flags robust accuracy that is not non-increasing.
"""

from __future__ import annotations

import argparse
import sys
import warnings
from collections.abc import Callable

from semirobust.empirical.attacks import STRENGTH_LADDER, AttackConfig, attack_names, build_attack
from semirobust.empirical.attacks.diagnostics import (
    AttackReliabilityWarning,
    ReliabilityFlag,
    not_monotone,
)
from semirobust.empirical.attacks.evaluation import AttackEvaluation, evaluate_attack
from semirobust.empirical.attacks.objectives import OBJECTIVES, objective_by_name
from semirobust.empirical.attacks.threat import ThreatModel
from semirobust.empirical.cli.checkpoint_input import open_checkpoint_and_data
from semirobust.empirical.cli.options import (
    add_attack_options,
    add_checkpoint_options,
    add_common_options,
    add_json_output,
    add_samples_option,
    add_threat_options,
    positive_int,
    threat_model,
)
from semirobust.empirical.reports.writers import run_metadata, write_json_atomic


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("attack", description=__doc__)
    add_checkpoint_options(parser)
    add_attack_options(parser, attack_names=attack_names(), steps=None, restarts=1)
    add_threat_options(parser, from_checkpoint=True)
    add_json_output(parser)
    parser.add_argument(
        "--objective",
        choices=sorted(OBJECTIVES),
        default="ce",
        help="what gradient attacks maximise",
    )
    add_samples_option(parser, default=None, help="attack only the first N test inputs")
    parser.add_argument("--batch-size", type=positive_int, default=256)
    parser.add_argument(
        "--amp", action="store_true", help="mixed precision forward passes (CUDA only)"
    )
    parser.add_argument(
        "--ladder",
        action="store_true",
        help="also run weaker attacks and eps/2; flag non-monotone results",
    )
    parser.add_argument(
        "--per-sample", action="store_true", help="write per-input margins and success to the JSON"
    )
    add_common_options(parser)
    parser.set_defaults(run=run)


#: Attacks whose objective (``--objective``) they follow; with ``margin`` they minimise it.
OBJECTIVE_ATTACKS = ("fgsm", "ifgsm", "pgd")


def margin_not_measured(attack: str, objective: str) -> str | None:
    """Why the expected adversarial margin is not reported, or None when it is: only an
    attack that minimises the margin estimates ``E[inf m]`` (THEORY.md 2); one that stops at
    the first misclassification (AutoAttack, C&W) or follows another loss leaves margins far
    above the infimum."""
    if attack in OBJECTIVE_ATTACKS and objective == "margin":
        return None
    return (f"expected adversarial margin not reported: {attack} with objective {objective!r} does not "
            "minimise the margin (use --attack pgd --objective margin for an estimate of E[inf m])")


def run(args: argparse.Namespace) -> int:
    opened = open_checkpoint_and_data(args)
    model, device = opened.model, opened.device
    threat = threat_model(args, opened.config.recipe, opened.input_shape)
    x, y = opened.test_inputs(args.samples)

    def evaluate(name: str, eps: float) -> AttackEvaluation:
        attack = build_attack(
            name,
            AttackConfig(
                threat=ThreatModel(args.norm, eps),
                steps=args.steps,
                restarts=args.restarts,
                objective=objective_by_name(args.objective),
                seed=args.seed,
                amp=args.amp,
            ),
        )
        return evaluate_attack(model, x, y, attack, batch_size=args.batch_size, device=device)

    with warnings.catch_warnings():  # flags are printed once below, not as Python warnings too
        warnings.simplefilter("ignore", AttackReliabilityWarning)
        evaluation = evaluate(args.attack, threat.eps)
        ladder: dict = {}
        if args.ladder:
            ladder, flags = _ladder(args, evaluation, evaluate)
            evaluation = evaluation.with_flags(flags)
    unmeasured = margin_not_measured(args.attack, args.objective)
    result = {
        **run_metadata(args),
        "attack": args.attack,
        "eps": threat.eps,
        "eps_source": args.eps_source,
        "norm": threat.norm,
        "n": evaluation.n,
        "checkpoint": opened.record(),
        "clean_accuracy": evaluation.clean_accuracy().to_dict(),
        "robust_accuracy": evaluation.robust_accuracy().to_dict(),
        "expected_adversarial_margin": None if unmeasured else evaluation.expected_adversarial_margin().to_dict(),
        **({"expected_adversarial_margin_note": unmeasured} if unmeasured else {}),
        "stage_robust_accuracy": [
            {"stage": stage, "robust_accuracy": value}
            for stage, value in evaluation.stage_robust_accuracy().items()
        ],
        "flags": [flag.to_dict() for flag in evaluation.flags],
        **({"ladder": ladder} if ladder else {}),
        **({"per_sample": evaluation.per_sample()} if args.per_sample else {}),
    }
    write_json_atomic(args.json, result)
    print(evaluation.clean_accuracy().describe())
    print(evaluation.robust_accuracy().describe())
    print(unmeasured or evaluation.expected_adversarial_margin().describe())
    for flag in evaluation.flags:
        print(f"warning: {flag.code}: {flag.message}", file=sys.stderr)
    print(f"wrote {args.json}")
    return 0


def _ladder(
    args: argparse.Namespace,
    evaluation: AttackEvaluation,
    evaluate: Callable[[str, float], AttackEvaluation],
) -> tuple[dict, list[ReliabilityFlag]]:
    """Robust accuracy of the weaker attacks of the ladder and of the attack at ``eps/2``,
    with a flag for every step where it rises."""
    chain = (
        list(STRENGTH_LADDER[: STRENGTH_LADDER.index(args.attack)])
        if args.attack in STRENGTH_LADDER
        else []
    )
    by_attack = [(name, evaluate(name, args.eps).robust_accuracy().value) for name in chain]
    by_attack.append((args.attack, evaluation.robust_accuracy().value))
    half = args.eps / 2
    by_eps = [
        (half, evaluate(args.attack, half).robust_accuracy().value),
        (args.eps, evaluation.robust_accuracy().value),
    ]
    flags = not_monotone(by_attack, "the attack ladder") + not_monotone(
        [(f"eps={eps:g}", value) for eps, value in by_eps], "eps"
    )
    ladder = {
        "by_attack": [{"attack": name, "robust_accuracy": value} for name, value in by_attack],
        "by_eps": [{"eps": eps, "robust_accuracy": value} for eps, value in by_eps],
    }
    return ladder, flags
