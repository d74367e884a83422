"""The ``semirobust`` command line (DESIGN.md, interface contract).

Each subcommand lives in its own module (``semirobust.empirical.cli.commands.<name>``), which
exposes ``register(subparsers)``: it adds the subcommand's parser and sets ``run``. The
modules import torch, scipy, matplotlib and the attack libraries, so the CLI imports only
the chosen one: :data:`SUBCOMMANDS` names each subcommand's module and one-line help, argparse
picks the subcommand from a parser of stubs built from that table (which is also what
``semirobust --help`` lists), and only then is that one module imported and its full parser
built. Bad input, from argparse or from a :class:`BadInput` raised anywhere below, ends as
one line on stderr and exit 2; anything else is an internal failure (exit 1, traceback shown).
torch's thread count (``--threads``, ``$SEMIROBUST_THREADS``, default 1) is set after
parsing and before the subcommand runs. Under ``torchrun`` only the subcommands of
:data:`DATA_PARALLEL` run (their processes train one model together); any other would run
once per process, each writing the same outputs, and is refused.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import NoReturn

from semirobust import __version__
from semirobust.empirical.cli.options import apply_threads, resolve_threads
from semirobust.empirical.runtime.launch import launched_by_torchrun
from semirobust.errors import BadInput


@dataclass(frozen=True)
class Subcommand:
    """One entry of the lazy registry: the subcommand's name, the module that registers its
    parser (imported only when the subcommand is chosen), and its line in ``--help``."""

    name: str
    module: str
    help: str


SUBCOMMANDS: tuple[Subcommand, ...] = tuple(
    Subcommand(name, f"semirobust.empirical.cli.commands.{name}", help)
    for name, help in (
        ("demo", "the main job on the embedded default (digits), end to end"),
        ("train", "train a model and write a checkpoint dir"),
        ("attack", "robust accuracy of a checkpoint under an attack"),
        ("algorithm1", "the paper's Algorithm 1, resumable"),
        ("calibrate",
         "dependency estimators against ground truth (Gaussian pairs, transforms, mixtures)"),
        ("theory", "print the results of THEORY.md with their premises and bounds"),
        ("rho", "dependency rho_j per consecutive layer pair of f_b on attacked inputs"),
        ("lipschitz", "per-layer and per-part l2 Lipschitz bounds of a checkpoint"),
        ("check", "every quantity and verdict for one checkpoint"),
        ("s1", "Algorithm S1: linear readouts of f*_a, their accuracy and gamma, L2 judged"),
        ("sweep", "the paper's grid of Algorithm 1 runs on Ray, resumable, with its tables"),
        ("falsify", "search small exact networks for a certified counterexample to a result"),
    )
)


#: The subcommands that accept a data-parallel launch (torchrun): they train.
DATA_PARALLEL = ("train", "algorithm1")


class OneLineParser(argparse.ArgumentParser):
    """An ``ArgumentParser`` whose errors are one line and exit 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def build_parser(chosen: str | None = None) -> argparse.ArgumentParser:
    """The ``semirobust`` parser with the full parser of subcommand ``chosen`` (its module
    imported) and a stub for every other one: its name and help line, no arguments and no
    ``-h`` (so that a stub parses any arguments without acting on them)."""
    parser = OneLineParser(
        prog="semirobust",
        description="Check the semirobustness theory (THEORY.md) on trained PyTorch networks.",
    )
    parser.add_argument("--version", action="version", version=f"semirobust {__version__}")
    subparsers = parser.add_subparsers(
        dest="command", required=True, metavar="COMMAND", parser_class=OneLineParser
    )
    for subcommand in SUBCOMMANDS:
        if subcommand.name == chosen:
            importlib.import_module(subcommand.module).register(subparsers)
        else:
            subparsers.add_parser(subcommand.name, help=subcommand.help, add_help=False)
    return parser


def parse_arguments(argv: Sequence[str]) -> argparse.Namespace:
    """Parse ``argv`` twice: with stubs only, which is where argparse picks the subcommand
    (and answers ``--help``, ``--version`` and a missing or unknown subcommand), then with
    the chosen subcommand's full parser."""
    chosen, _ = build_parser().parse_known_args(argv)
    return build_parser(chosen.command).parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_arguments(sys.argv[1:] if argv is None else list(argv))
    try:
        if launched_by_torchrun() and args.command not in DATA_PARALLEL:
            raise BadInput(
                f"started by torchrun, but only {' and '.join(DATA_PARALLEL)} train on several "
                "processes: run this command once, without torchrun"
            )
        apply_threads(resolve_threads(args))
        return int(args.run(args) or 0)
    except BadInput as error:
        print(f"semirobust {args.command}: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
