"""``run_check`` with its default (canonical) readouts gives the numbers it gave before the
probe and Lipschitz-normalised readouts were wired in: every measurement, rho, per-split
bound and verdict on a fixed small model and seed, against a golden file.

The golden file ``golden/check_canonical.json`` was written by this module's
:func:`numbers` on the code of main at 1683d7e (before ``--readout``); regenerate it with
``OMP_NUM_THREADS=1 .venv/bin/python tests/test_check_canonical_regression.py`` only when
a change of the canonical numbers is intended."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from semirobust.empirical.attacks import AttackSettings
from semirobust.empirical.attacks.threat import ThreatModel
from semirobust.empirical.data import load_dataset
from semirobust.empirical.model import ArchitectureSpec, build_model
from semirobust.empirical.studies.check import CheckSettings, run_check

GOLDEN = Path(__file__).parent / "golden" / "check_canonical.json"


def _measurement(m: dict[str, Any]) -> list[Any]:
    return [m["name"], m["value"], m["interval"], m["kind"], m["estimator"], m["unit"]]


def numbers() -> dict[str, Any]:
    """What ``run_check`` measured and decided, without timings (seconds) or warnings."""
    data = load_dataset("gaussian-mixture")
    spec = ArchitectureSpec("mlp", data.input_shape, data.num_classes, data.mean, data.std,
                            {"depth": 2, "width": 8})
    torch.manual_seed(0)
    model = build_model(spec)
    settings = CheckSettings(a=1, threat=ThreatModel("linf", 0.02), n=48,
                             attack=AttackSettings(steps=3, restarts=1, seed=3))
    result = run_check(model, data.x_test, data.y_test, settings, device=torch.device("cpu")).to_dict()
    return {
        "accuracy": [_measurement(result[k]) for k in ("clean_accuracy", "robust_accuracy")],
        "measurements": {k: [_measurement(m) for m in v] for k, v in result["measurements"].items()},
        "rho": [[_measurement(r), _measurement(r["independent"]) if r.get("independent") else None]
                for r in result["rho"]],
        "per_split": [{k: _measurement(v) for k, v in entry.items() if k != "a"} for entry in result["per_split"]],
        "verdicts": {label: [v["status"], v.get("decided_by"),
                             v.get("population", {}).get("status")]
                     for label, v in result["verdicts"].items()},
    }


def test_canonical_default_gives_the_numbers_of_before():
    expected = json.loads(GOLDEN.read_text())
    assert json.loads(json.dumps(numbers())) == expected


if __name__ == "__main__":
    GOLDEN.parent.mkdir(exist_ok=True)
    GOLDEN.write_text(json.dumps(numbers(), indent=1) + "\n")
