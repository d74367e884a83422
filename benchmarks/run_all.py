"""``make bench``: the side-by-side speed benchmarks, each a ratio against a reference.

* ``attacks.py``: PGD-10 throughput, semirobust against torchattacks on the same model
  and inputs in one process;
* ``dependency.py``: rho for the 12 layer pairs of an f_b at n = 10000 attacked inputs,
  the batched estimators against plain per-class reference implementations;
* ``threads.py``: PGD over the digits test set at 1 and 2 torch threads, without and with
  a second process keeping one core busy (the measurement behind ``--threads``' default);
* ``sweep.py``: 8 tiny Algorithm 1 settings as a Ray sweep on 2 CPUs and one after another;
* ``until_misclassified.py``: PGD robust accuracy stopping each input at its first
  misclassified iterate against the last-iterate PGD (on ``runs/demo``'s models, so after
  ``make demo``);
* ``demo_load.py``: ``semirobust demo`` quiet and with one core kept busy.

Results go to ``runs/bench/*.json``; ``BENCHMARKS.md`` records the measured ratios.
"""

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
OUT = Path("runs/bench")


def main() -> int:
    OUT.mkdir(parents=True, exist_ok=True)
    runs = [
        [str(HERE / "attacks.py"), "--json", str(OUT / "attacks.json")],
        [str(HERE / "dependency.py"), "--json", str(OUT / "dependency.json")],
        [str(HERE / "threads.py"), "--json", str(OUT / "threads.json")],
        [str(HERE / "sweep.py"), "--json", str(OUT / "sweep.json")],
        [str(HERE / "until_misclassified.py"), "--json", str(OUT / "until_misclassified.json")],
        [str(HERE / "demo_load.py"), "--json", str(OUT / "demo_load.json")],
    ]
    for arguments in runs:
        print(f"$ python {' '.join(arguments)}", flush=True)
        result = subprocess.run([sys.executable, *arguments])
        if result.returncode != 0:
            return result.returncode
    return 0


if __name__ == "__main__":
    sys.exit(main())
