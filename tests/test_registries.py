"""Registries are filled by the package that owns them, whatever a process imports first
(no registration by import order), and theory/ stands on its own."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def fresh_process(code: str) -> dict:
    """Run ``code`` in a new interpreter (one thread) and read the JSON it prints."""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                          env={"OMP_NUM_THREADS": "1", "PATH": ""})
    return json.loads(done.stdout)


def test_lipschitz_upper_on_a_resnet_with_only_the_lipschitz_module_imported():
    result = fresh_process(
        "import json, torch\n"
        "from semirobust.empirical.bounds.lipschitz import lipschitz_upper\n"
        "from semirobust.empirical.model.zoo.resnet import resnet18\n"
        "from semirobust.empirical.model.registry import ArchitectureSpec\n"
        "spec = ArchitectureSpec('resnet18', (3, 8, 8), 10, (0.5,) * 3, (0.25,) * 3, {'width': 4})\n"
        "bound = lipschitz_upper(resnet18(spec).eval(), (3, 8, 8))\n"
        "print(json.dumps({'product': bound.product, 'certified': bound.certified}))\n"
    )
    assert result["product"] > 0 and result["certified"] is True


def test_the_registries_are_full_whichever_module_is_imported_first():
    result = fresh_process(
        "import json\n"
        "from semirobust.empirical.model.registry import architecture_names\n"
        "from semirobust.empirical.data.registry import dataset_names\n"
        "print(json.dumps({'architectures': architecture_names(), 'datasets': dataset_names()}))\n"
    )
    assert {"digits-cnn", "mlp", "resnet18", "vit", "wrn-34-10"} <= set(result["architectures"])
    assert set(result["datasets"]) == {"digits", "gaussian-mixture", "cifar10", "cifar100", "tinyimagenet"}


def test_theory_imports_nothing_from_empirical():
    offending = [
        f"{path.relative_to(ROOT)}:{number}"
        for path in sorted((ROOT / "theory").rglob("*.py"))
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if "semirobust.empirical" in line
    ]
    assert offending == []
    modules = fresh_process("import json, sys, semirobust.theory; print(json.dumps(sorted(sys.modules)))")
    assert not [m for m in modules if m.startswith("semirobust.empirical") or m == "torch"]
