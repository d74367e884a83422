"""``semirobust calibrate``: every dependency estimator against ground truth (known MI).

Runs :func:`semirobust.empirical.dependency.calibration.run_calibration` and writes the
table (Markdown) and the rows (JSON). The table in docs/dependency.md comes from
``semirobust calibrate --markdown docs/calibration_table.md --json runs/calibration.json``.
"""

from __future__ import annotations

import argparse
import sys

from semirobust.empirical.cli.options import (
    add_common_options,
    add_json_output,
    output_file,
    positive_int,
)
from semirobust.empirical.dependency import ESTIMATORS
from semirobust.empirical.dependency.calibration import (
    markdown_table,
    rows_to_dicts,
    run_calibration,
)
from semirobust.empirical.reports.writers import run_metadata, write_json_atomic, write_text_atomic
from semirobust.empirical.runtime.device import resolve_device


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("calibrate", description=__doc__.split("\n\n")[0])
    parser.add_argument("--estimators", nargs="+", choices=sorted(ESTIMATORS), default=sorted(ESTIMATORS),
                        help="estimators to calibrate (default: all)")
    parser.add_argument("--n", type=positive_int, default=2000, help="samples per draw (default: 2000)")
    parser.add_argument("--repeats", type=positive_int, default=3, help="fresh draws per case (default: 3)")
    add_json_output(parser, required=False)
    parser.add_argument("--markdown", type=output_file, metavar="OUT", help="write the table as Markdown here")
    parser.add_argument("--quiet", action="store_true", help="no progress lines on stderr")
    add_common_options(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    device = resolve_device(args.device)
    progress = None if args.quiet else (lambda line: print(line, file=sys.stderr, flush=True))
    rows = run_calibration(args.estimators, n=args.n, repeats=args.repeats, seed=args.seed, device=device, progress=progress)
    table = markdown_table(rows)
    if args.markdown:
        write_text_atomic(args.markdown, table + "\n")
    if args.json:
        write_json_atomic(args.json, {**run_metadata(args), "device": str(device), "rows": rows_to_dicts(rows)})
    print(table)
    return 0
