"""Result files: atomic JSON writes and folder copies, and the metadata every JSON output carries."""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import tempfile
from pathlib import Path
from typing import Any

import numpy
import torch

from semirobust import __version__


def environment_metadata() -> dict[str, Any]:
    """What the numbers depend on besides the arguments: ``semirobust_version``, the torch
    and numpy versions and torch's intra-op thread count (``torch.get_num_threads()``:
    the order of floating-point sums, hence the last bits of trained weights, can follow it)."""
    return {
        "semirobust_version": __version__,
        "torch_version": torch.__version__,
        "numpy_version": numpy.__version__,
        "torch_threads": torch.get_num_threads(),
    }


def run_metadata(args: argparse.Namespace) -> dict[str, Any]:
    """:func:`environment_metadata`, the command's arguments and its seed (DESIGN.md)."""
    arguments = {k: v for k, v in vars(args).items() if k != "run" and not callable(v)}
    return {
        **environment_metadata(),
        "command": arguments.get("command"),
        "arguments": json.loads(json.dumps(arguments, default=str)),
        "seed": arguments.get("seed"),
    }


def current_umask() -> int:
    """The process's file-creation mask (read by setting it and putting it back)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def temporary_prefix(path: Path) -> str:
    """The name start of a temporary file for an atomic write of ``path``: hidden, and naming
    this host and process, so that a later write can tell a dead writer's file from a live one."""
    return f".{path.name}.{socket.gethostname()}-{os.getpid()}."


def remove_stale_temporaries(path: Path) -> None:
    """Delete the hidden temporary files that interrupted atomic writes of ``path`` left
    beside it: those of this host whose writing process no longer runs. A concurrent
    writer's file (another live process, or another host on a shared folder) is kept."""
    host = socket.gethostname()
    for candidate in path.parent.glob(f".{path.name}.{host}-*.tmp"):
        pid = candidate.name[len(f".{path.name}.{host}-"):].split(".", 1)[0]
        if pid.isdigit() and not _process_runs(int(pid)):
            candidate.unlink(missing_ok=True)


def _process_runs(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # it runs, as another user
        return True
    return True


def write_text_atomic(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` to ``path`` via a temporary file in the same folder and a rename,
    so a reader never sees a half-written file and an interrupted run leaves the old one.
    The file gets the permissions of an ordinary new file under the user's umask (a
    temporary file is created private), and temporaries left by a killed write are removed."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=temporary_prefix(path), suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fchmod(handle.fileno(), 0o666 & ~current_umask())
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def write_json_atomic(path: str | os.PathLike, data: Any) -> Path:
    """:func:`write_text_atomic` for JSON (sorted keys, indented, NaN refused)."""
    return write_text_atomic(path, json.dumps(data, indent=2, sort_keys=True, allow_nan=False) + "\n")


def copy_folder_atomic(source: Path, target: Path) -> None:
    """Copy ``source`` to ``target`` through a hidden temporary folder and a rename, so an
    interrupted copy leaves no half-copied ``target`` (a leftover temporary is replaced)."""
    temporary = target.with_name(f".{target.name}.copy.tmp")
    shutil.rmtree(temporary, ignore_errors=True)
    shutil.copytree(source, temporary)
    os.replace(temporary, target)
