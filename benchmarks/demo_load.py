"""`semirobust demo` quiet and with one core kept busy, side by side (issue 17; BENCHMARKS.md).

Each run starts from an empty output folder (everything trained). Per round, in this
order: ``--workers`` 2 (the default where 2 cores are available) quiet, then the same with
another process (``python -c "while True: pass"``, started and ended here by its pid)
keeping one core busy; ``--rounds R`` alternates the two R times, since this shared
machine's speed drifts by tens of percent over minutes, and each round's ratio compares
runs made back to back. With ``--with-one-worker``, ``--workers 1`` quiet is timed last, as
the reference the second process is measured against. Printed per run: wall-clock seconds
of the command, the load average when it started, and whether its ``results.json``
numbers equal the first run's (``semirobust.testing.determinism``); then each round's ratio
loaded / quiet.

    python benchmarks/demo_load.py [--rounds R] [--with-one-worker] [--json OUT]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from semirobust.testing.determinism import differing_numbers


def run_demo(out: Path, workers: int) -> float:
    """Wall-clock seconds of ``semirobust demo --out OUT --workers N`` in a fresh folder."""
    shutil.rmtree(out, ignore_errors=True)
    command = [sys.executable, "-m", "semirobust.empirical.cli", "demo", "--out", str(out),
               "--workers", str(workers)]
    start = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def numbers(out: Path) -> dict:
    """``results.json`` without the command's arguments (``--out``, ``--workers``)."""
    results = json.loads((out / "results.json").read_text(encoding="utf-8"))
    results.pop("arguments", None)
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--with-one-worker", action="store_true", help="also time --workers 1 quiet")
    parser.add_argument("--rounds", type=int, default=1, help="quiet/loaded pairs, alternating (default 1)")
    parser.add_argument("--json", help="write the rows here")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        reference = Path(folder) / "reference"
        conditions = [("quiet", 2), ("one core busy", 2)] * args.rounds \
            + ([("quiet", 1)] if args.with_one_worker else [])
        for condition, workers in conditions:
            out = reference if not rows else Path(folder) / "run"
            busy = subprocess.Popen([sys.executable, "-c", "while True: pass"]) if condition != "quiet" else None
            try:
                load = os.getloadavg()[0]
                seconds = run_demo(out, workers)
            finally:
                if busy is not None:
                    busy.kill()
                    busy.wait()
            same = out == reference or not differing_numbers(numbers(reference), numbers(out))
            rows.append({"condition": condition, "workers": workers, "seconds": round(seconds, 1),
                         "load_average_at_start": round(load, 2), "same_numbers_as_first": same})
            print(f"{condition:14s} workers {workers}: {seconds:6.1f} s (load {load:.2f}) "
                  f"same numbers: {same}", flush=True)
    for round_ in range(args.rounds):
        quiet, loaded = rows[2 * round_], rows[2 * round_ + 1]
        print(f"round {round_ + 1}: ratio one core busy / quiet (workers 2): "
              f"{loaded['seconds'] / quiet['seconds']:.2f}")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
