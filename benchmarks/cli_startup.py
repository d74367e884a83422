"""Start-up time of the ``semirobust`` CLI: every command module imported (as before the lazy
registry) against only the chosen one, side by side in fresh processes.

Usage: ``python benchmarks/cli_startup.py [--repeats 5]``. For each command line below, the
two paths run alternately ``--repeats`` times each, and their exit codes and stderr must
agree:

* eager: import every module of :data:`semirobust.empirical.cli.main.SUBCOMMANDS`, then run
  ``main`` (what the CLI did before it imported only the chosen module);
* lazy: run ``main`` as the ``semirobust`` entry point does.

Prints the wall-clock seconds of each run, their medians and the ratio eager / lazy, and
the number of modules each path imports (from one more run under ``python -X importtime``;
unlike the seconds, it does not depend on the machine's load).
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

EAGER = (
    "import importlib, sys\n"
    "from semirobust.empirical.cli.main import SUBCOMMANDS, main\n"
    "for subcommand in SUBCOMMANDS:\n"
    "    importlib.import_module(subcommand.module)\n"
    "sys.exit(main())\n"
)
LAZY = "import sys\nfrom semirobust.empirical.cli.main import main\nsys.exit(main())\n"


def command_lines(scratch: Path) -> list[list[str]]:
    """``--help``; a bad checkpoint for ``check`` (exit 2, one line); ``theory --help``."""
    return [
        ["--help"],
        ["check", "--checkpoint", "/nonexistent", "--split", "1", "--out", str(scratch / "x")],
        ["theory", "--help"],
    ]


def timed(program: str, argv: list[str]) -> tuple[float, int, str]:
    """Wall-clock seconds, exit code and stderr of ``python -c PROGRAM ARGV``."""
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", program, *argv], capture_output=True, text=True,
                          check=False)
    return time.perf_counter() - start, done.returncode, done.stderr


def modules_imported(program: str, argv: list[str]) -> int:
    """How many modules ``python -c PROGRAM ARGV`` imports (``-X importtime`` lines)."""
    done = subprocess.run([sys.executable, "-X", "importtime", "-c", program, *argv],
                          capture_output=True, text=True, check=False)
    return sum(line.startswith("import time:") for line in done.stderr.splitlines()) - 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        for argv in command_lines(Path(scratch)):
            seconds: dict[str, list[float]] = {"eager": [], "lazy": []}
            outcomes = set()
            for _ in range(args.repeats):
                for name, program in (("eager", EAGER), ("lazy", LAZY)):
                    elapsed, code, stderr = timed(program, argv)
                    seconds[name].append(elapsed)
                    outcomes.add((code, stderr))
            if len(outcomes) != 1:
                print(f"the two paths disagree on {argv}: {sorted(outcomes)}", file=sys.stderr)
                return 1
            (code, stderr), = outcomes
            eager, lazy = (statistics.median(seconds[name]) for name in ("eager", "lazy"))
            print(f"$ semirobust {' '.join(argv)}  (exit {code}, {len(stderr.splitlines())} stderr line(s))")
            for name, program in (("eager", EAGER), ("lazy", LAZY)):
                print(f"  {name:<5} " + " ".join(f"{s:.2f}" for s in seconds[name])
                      + f"  median {statistics.median(seconds[name]):.2f} s, "
                      + f"{modules_imported(program, argv)} modules")
            print(f"  eager / lazy: {eager / lazy:.1f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
