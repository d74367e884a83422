"""``semirobust theory [--latex]``: print the statements, premises and bounds of THEORY.md.

Imports only :mod:`semirobust.theory` (no torch): the six results of
:data:`semirobust.theory.RESULTS` as plain text, or as a standalone LaTeX document.
"""

from __future__ import annotations

import argparse

from semirobust.empirical.cli.options import add_common_options
from semirobust.theory import RESULTS
from semirobust.theory.render import latex_document, text_document


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "theory",
        description="Print T1, L1, T2, L2, T3 and the Lipschitz transfer result with their "
                    "premises, assumptions, conclusions, bounds and caveats.",
    )
    parser.add_argument("--latex", action="store_true",
                        help="print a standalone LaTeX document instead of plain text")
    parser.add_argument("--result", choices=list(RESULTS), action="append",
                        help="print only this result (repeatable; default: all)")
    add_common_options(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    results = [RESULTS[name] for name in (args.result or RESULTS)]
    render = latex_document if args.latex else text_document
    print(render(results), end="" if args.latex else "\n")
    return 0
