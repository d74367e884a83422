"""Result files: atomic JSON writes and the metadata every JSON output carries."""

from __future__ import annotations

import argparse
import json
import os
import tempfile
from pathlib import Path
from typing import Any

from semirobust import __version__


def run_metadata(args: argparse.Namespace) -> dict[str, Any]:
    """``semirobust_version``, the command's arguments and its seed (DESIGN.md)."""
    arguments = {k: v for k, v in vars(args).items() if k != "run" and not callable(v)}
    return {
        "semirobust_version": __version__,
        "command": arguments.get("command"),
        "arguments": json.loads(json.dumps(arguments, default=str)),
        "seed": arguments.get("seed"),
    }


def write_text_atomic(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` to ``path`` via a temporary file in the same folder and a rename,
    so a reader never sees a half-written file and an interrupted run leaves the old one."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def write_json_atomic(path: str | os.PathLike, data: Any) -> Path:
    """:func:`write_text_atomic` for JSON (sorted keys, indented, NaN refused)."""
    return write_text_atomic(path, json.dumps(data, indent=2, sort_keys=True, allow_nan=False) + "\n")
