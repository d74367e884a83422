"""The same seed on the CPU gives the same numbers: Algorithm 1 (the demo's main job) at
toy size, run twice in fresh processes into two folders, gives identical results.json
numbers. The full-size check of ``semirobust demo --seed 0 --device cpu`` is
``scripts/check_demo_determinism.sh`` (docs/testing.md has its last result)."""

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from semirobust.testing.determinism import differing_numbers

#: the demo's path at toy size: digits-cnn (conv, BatchNorm) on digits with its registered
#: augmentation, PGD training and attacks, KSG rho, two trials
TINY = [
    "--arch", "digits-cnn", "--arch-kwargs", '{"width": 4}', "--dataset", "digits",
    "--fb-layers", "3", "--eps", "0.1", "--steps", "2", "--epochs", "2", "--train-epochs", "1",
    "--lr", "0.05", "--batch-size", "128", "--device", "cpu", "--seed", "0", "--trials", "2",
]


def run_algorithm1(out: Path) -> dict[str, Any]:
    subprocess.run([sys.executable, "-m", "semirobust.empirical.cli.main", "algorithm1", *TINY, "--out", str(out)],
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return json.loads((out / "results.json").read_text())


def test_two_runs_with_the_same_seed_give_identical_numbers(tmp_path):
    first, second = run_algorithm1(tmp_path / "first"), run_algorithm1(tmp_path / "second")
    assert differing_numbers(first, second) == []
    assert sum(1 for _ in numbers(first)) > 50, "results.json should hold the run's numbers"


def test_a_different_seed_changes_the_numbers_the_comparison_sees():
    """The comparison can fail: one changed leaf anywhere is reported with its path."""
    a = {"trials": [{"rho": [{"value": 1.5}]}], "arguments": {"out": "x"}, "Acc": 0.5}
    b = {"trials": [{"rho": [{"value": 1.25}]}], "arguments": {"out": "y"}, "Acc": 0.5}
    assert differing_numbers(a, b) == ["trials[0].rho[0].value: 1.5 != 1.25"]


def numbers(tree: Any) -> Iterator[float]:
    if isinstance(tree, dict):
        for value in tree.values():
            yield from numbers(value)
    elif isinstance(tree, list):
        for value in tree:
            yield from numbers(value)
    elif isinstance(tree, (int, float)) and not isinstance(tree, bool):
        yield tree
