"""The built wheel holds every source module of the three package roots (setup.py finds
subpackages; a folder without ``__init__.py`` or a forgotten listing would drop files)."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE_ROOTS = {"semirobust": "semirobust", "theory": "semirobust/theory", "empirical": "semirobust/empirical"}


def source_modules() -> set[str]:
    """Every ``.py`` file under a package root, as its path inside the wheel."""
    modules = set()
    for folder, installed in PACKAGE_ROOTS.items():
        for path in (ROOT / folder).rglob("*.py"):
            if "__pycache__" not in path.parts:
                modules.add(f"{installed}/{path.relative_to(ROOT / folder).as_posix()}")
    return modules


def test_every_folder_with_modules_is_a_package():
    for folder in PACKAGE_ROOTS:
        for path in (ROOT / folder).rglob("*.py"):
            assert (path.parent / "__init__.py").exists(), f"{path.parent} lacks __init__.py"


def test_the_wheel_holds_every_source_module(tmp_path):
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
         "--wheel-dir", str(tmp_path), str(ROOT)],
        check=True, capture_output=True,
    )
    (wheel,) = tmp_path.glob("semirobust-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        packed = {name for name in archive.namelist() if name.endswith(".py")}
    expected = source_modules()
    assert expected - packed == set()
    assert "semirobust/empirical/model/zoo/resnet.py" in packed
