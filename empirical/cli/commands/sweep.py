"""``semirobust sweep SPEC --out DIR``: the paper's grid of Algorithm 1 runs on Ray.

The spec (TOML: ``[fixed]``, ``[recipe]``, ``[axes]``, ``[[exclude]]``; see
``examples/sweep-tiny.toml``) expands to settings; every normal and robust model is trained
once and shared by the settings that use it, then every trial runs, then each setting's
``results.json`` and the tables. Runs on a local Ray instance, or on the cluster at
``--address``. ``--resume`` continues an interrupted sweep without redoing finished tasks;
``--report`` only rebuilds the tables from the results on disk.
"""

from __future__ import annotations

import argparse
from dataclasses import replace
from pathlib import Path

from semirobust.empirical.cli.options import add_common_options, positive_float
from semirobust.empirical.reports.sweep import write_sweep_tables
from semirobust.empirical.studies.sweep import Resources, run_sweep
from semirobust.empirical.studies.sweep_spec import load_spec
from semirobust.errors import BadInput


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("sweep", description=__doc__)
    parser.add_argument("spec", nargs="?", help="the sweep's TOML spec (not needed with --report)")
    parser.add_argument("--out", required=True, help="sweep folder")
    parser.add_argument("--address", default=None,
                        help="a running Ray cluster (e.g. auto, or HOST:PORT); default: a local instance")
    parser.add_argument("--resume", action="store_true", help="continue the sweep in --out")
    parser.add_argument("--report", action="store_true", help="only rebuild the tables from --out")
    parser.add_argument("--cpus-per-task", type=positive_float, default=1.0,
                        help="CPUs each task asks for, also its torch threads (default: 1)")
    parser.add_argument("--gpus-per-task", type=positive_float, default=None,
                        help="GPU share each task asks for, at most 1 (default: 1 with --device cuda or when "
                             "the cluster has GPUs, else 0)")
    add_common_options(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    out = Path(args.out)
    if not args.report:
        if args.spec is None:
            raise BadInput("sweep: give the spec (SPEC.toml), or --report to rebuild the tables of --out")
        spec = load_spec(args.spec)
        if "seed" not in spec.fixed and "seed" not in spec.axes:
            spec = replace(spec, fixed={**spec.fixed, "seed": args.seed})
        run_sweep(spec, out, address=args.address, resume=args.resume, resources=resources(args))
    for path in write_sweep_tables(out):
        print(path)
    return 0


def resources(args: argparse.Namespace) -> Resources:
    """What each task asks for (``--device auto`` leaves the GPU share to the cluster)."""
    if args.device == "cpu":
        if args.gpus_per_task:
            raise BadInput("--gpus-per-task with --device cpu: choose one")
        return Resources(cpus=args.cpus_per_task, gpus=0.0)
    if args.device == "cuda" and args.gpus_per_task is None:
        return Resources(cpus=args.cpus_per_task, gpus=1.0)
    return Resources(cpus=args.cpus_per_task, gpus=args.gpus_per_task)
