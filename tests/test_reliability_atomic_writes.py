"""Every results file is written atomically (temporary file in the same folder + rename):
an interrupted or failing write leaves the previous file whole, and no module of
``semirobust.empirical`` writes a file any other way."""

import ast
import math
import os
import socket
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from semirobust.empirical.reports.writers import write_json_atomic

EMPIRICAL = Path(__file__).parents[1] / "empirical"

#: calls that write files, by attribute or function name
WRITING_CALLS = {"write_text", "write_bytes", "dump", "savefig", "save", "save_file", "open"}

#: the modules allowed to write directly, and why
DIRECT_WRITERS = {
    "reports/writers.py": "the atomic writers themselves",
    "model/checkpoint.py": "safetensors into a temporary file, then os.replace",
    "reports/plots.py": "savefig into a temporary file, then os.replace",
    "data/disk/writers.py": "writes synthetic on-disk datasets for tests, not results",
}


def writing_calls(path: Path) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Call):
            name = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
            if name in WRITING_CALLS and not _reads_only(node):
                found.append(f"{path.relative_to(EMPIRICAL)}:{node.lineno} {name}")
    return found


def _reads_only(call: ast.Call) -> bool:
    """``open(path)`` / ``open(path, "rb")``: reading, not writing."""
    name = call.func.attr if isinstance(call.func, ast.Attribute) else getattr(call.func, "id", "")
    if name != "open":
        return False
    modes = [a.value for a in call.args[1:2] if isinstance(a, ast.Constant)]
    modes += [k.value.value for k in call.keywords if k.arg == "mode" and isinstance(k.value, ast.Constant)]
    return all("w" not in m and "a" not in m and "x" not in m for m in modes)


def test_only_the_atomic_writers_write_files():
    direct = [
        call for path in sorted(EMPIRICAL.rglob("*.py"))
        if str(path.relative_to(EMPIRICAL)) not in DIRECT_WRITERS
        for call in writing_calls(path)
    ]
    assert direct == [], "write through semirobust.empirical.reports.writers.write_json_atomic / write_text_atomic"
    # the scan sees writes where they are
    assert writing_calls(EMPIRICAL / "reports" / "plots.py") and writing_calls(EMPIRICAL / "model" / "checkpoint.py")


def test_a_failing_write_leaves_the_previous_file_and_no_temporary(tmp_path):
    target = tmp_path / "results.json"
    write_json_atomic(target, {"gamma": 1.0})
    before = target.read_text()
    with pytest.raises(ValueError):
        write_json_atomic(target, {"gamma": math.nan})  # NaN is refused, never written
    assert target.read_text() == before
    assert [p.name for p in tmp_path.iterdir()] == ["results.json"]


def dead_pid() -> int:
    """The process id of a process that has exited."""
    done = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    return int(done.stdout)


def test_results_get_the_users_umask_and_a_dead_writers_temporary_is_removed(tmp_path):
    host = socket.gethostname()
    stale = tmp_path / f".results.json.{host}-{dead_pid()}.k1ll3d.tmp"
    stale.write_text("{half")
    live = tmp_path / f".results.json.{host}-{os.getpid()}.writing.tmp"  # a concurrent writer's
    live.write_text("{in progress")
    previous = os.umask(0o027)
    try:
        target = write_json_atomic(tmp_path / "results.json", {"gamma": 1.0})
    finally:
        os.umask(previous)
    assert stat.S_IMODE(target.stat().st_mode) == 0o640
    assert sorted(p.name for p in tmp_path.iterdir()) == [live.name, "results.json"]


def test_a_checkpoint_gets_the_users_umask_and_an_interrupted_saves_temporary_is_removed(tmp_path):
    from torch import nn

    from semirobust.empirical.model import ArchitectureSpec
    from semirobust.empirical.model.checkpoint import CheckpointConfig, save_checkpoint

    folder = tmp_path / "ckpt"
    folder.mkdir()
    (folder / f".model.safetensors.{socket.gethostname()}-{dead_pid()}.k1ll3d.tmp").write_bytes(b"half")
    spec = ArchitectureSpec("mlp", (4,), 2, (0.5,) * 4, (0.25,) * 4, {"depth": 0})
    previous = os.umask(0o027)
    try:
        save_checkpoint(folder, nn.Sequential(nn.Linear(4, 2)), CheckpointConfig(spec, "digits", seed=0))
    finally:
        os.umask(previous)
    assert sorted(p.name for p in folder.iterdir()) == ["config.json", "model.safetensors"]
    assert stat.S_IMODE((folder / "model.safetensors").stat().st_mode) == 0o640
