"""The ``semirobust`` command line (DESIGN.md, interface contract).

Each subcommand lives in ``semirobust.empirical.commands.<name>`` and exposes
``register(subparsers)``, which adds its parser and sets ``run``. Bad input, from argparse
or from a :class:`BadInput` raised anywhere below, ends as one line on stderr and exit 2;
anything else is an internal failure (exit 1, traceback shown).
"""

from __future__ import annotations

import argparse
import importlib
import sys
from typing import NoReturn, Sequence

from semirobust.empirical.errors import BadInput

COMMANDS: tuple[str, ...] = (
    "demo",
    "train",
    "attack",
    "algorithm1",
    "calibrate",
    "theory",
    "rho",
    "lipschitz",
    "check",
)


class OneLineParser(argparse.ArgumentParser):
    """An ``ArgumentParser`` whose errors are one line and exit 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(
        prog="semirobust",
        description="Check the semirobustness theory (THEORY.md) on trained PyTorch networks.",
    )
    from semirobust import __version__

    parser.add_argument("--version", action="version", version=f"semirobust {__version__}")
    subparsers = parser.add_subparsers(
        dest="command", required=True, metavar="COMMAND", parser_class=OneLineParser
    )
    for name in COMMANDS:
        importlib.import_module(f"semirobust.empirical.commands.{name}").register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.run(args) or 0)
    except BadInput as error:
        print(f"semirobust {args.command}: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
