"""``semirobust falsify RESULT [--budget N] [--space all|1d|cnn] [--out DIR]``: search for a
certified witness.

Calls :func:`semirobust.empirical.studies.falsify.falsify` and writes what it found with
:func:`~semirobust.empirical.studies.falsify.write_witness`: ``DIR/witness.json`` (every
quantity with its kind), ``DIR/report.md`` (one page to check by hand) and, for a
witness, ``DIR/checkpoint/``. Exit 0 whether or not a witness is found. ``--space``
chooses the candidates: scalar-input networks with exact worst cases (``1d``), small CNNs
on 1x4x4 images with certified bounds and attack values (``cnn``), or both (``all``, the
default). ``--seed`` seeds the search; everything is computed in float64 on the CPU
(``--device`` has no effect).
"""

from __future__ import annotations

import argparse

from semirobust.empirical.cli.options import add_common_options
from semirobust.empirical.studies.falsify import SEARCHED, SOUND, SPACES, falsify, write_witness


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "falsify",
        description="Search small networks (scalar input, linear and ReLU layers, exact; "
                    "small CNNs on 1x4x4 images, certified and attacked; two classes) for a "
                    "witness whose premises certainly hold and whose conclusion certainly "
                    "fails. For " + ", ".join(SOUND) + " (sound) a witness is a bug report.",
    )
    parser.add_argument("result", choices=list(SEARCHED), help="the result to search against")
    parser.add_argument("--budget", type=int, default=200,
                        help="candidates drawn by the search (default 200)")
    parser.add_argument("--space", choices=SPACES, default="all",
                        help="candidates: 1d (exact), cnn (certified and attacked) or all (default)")
    parser.add_argument("--out", default="falsify-out",
                        help="folder for witness.json, report.md and the checkpoint")
    add_common_options(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    outcome = falsify(args.result, budget=args.budget, seed=args.seed, space=args.space)
    written = write_witness(outcome, args.out)
    print(outcome.summary())
    if outcome.found:
        print(f"verdict: {outcome.verdict.status.value} (decided by {outcome.verdict.decided_text()})")
    print("wrote: " + "  ".join(str(p) for p in written))
    return 0
