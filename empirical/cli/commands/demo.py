"""``semirobust demo``: the paper's question on the embedded default, end to end.

Trains a normal and a PGD-robust 7-layer CNN on scikit-learn's digits, runs Algorithm 1
(THEORY.md section 6) with the robust first part under the normally trained rest, measures
the layer-to-layer dependency on attacked data, judges T2, runs ``check`` on the robust model
(every result judged, in ``--out/check``), and writes ``results.json``, ``report.md`` and
``plots/*.png`` under ``--out``. Steps 1-3 are repeated in
``--out/independent-init`` with the robust model started from independent initial
weights, since THEORY.md section 6 says ``Acc_sr`` depends strongly on that choice, and at
two more training seeds under both initialisations (``--out/seeds``, seed 10 in a second
process with ``--workers 2``); the report states their spread.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from semirobust.empirical.cli.options import add_common_options, add_out_folder
from semirobust.empirical.reports.demo import write_demo_report
from semirobust.empirical.reports.writers import run_metadata
from semirobust.empirical.runtime.device import resolve_device
from semirobust.empirical.studies.demo import run_demo


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("demo", description=__doc__)
    add_out_folder(parser, help="output folder", default="runs/demo")
    parser.add_argument("--resume", action="store_true", help="continue (or reuse) the run in --out")
    parser.add_argument("--workers", type=int, choices=(1, 2), default=min(2, len(os.sched_getaffinity(0))),
                        help="processes: 2 runs the second training seed in a second process meanwhile, "
                             "1 runs it after the rest; the numbers are the same (default: 2 where 2 cores are "
                             "available)")
    add_common_options(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    start = time.perf_counter()
    device = resolve_device(args.device)
    out = Path(args.out)
    result = run_demo(out, seed=args.seed, device=device, resume=args.resume, workers=args.workers,
                      log=lambda line: print(line, file=sys.stderr))
    print(write_demo_report(result, out, metadata=run_metadata(args),
                            elapsed_seconds=time.perf_counter() - start, device=str(device)))
    return 0
