"""Result files: atomic JSON writes and the metadata every JSON output carries."""

from __future__ import annotations

import argparse
import json
import os
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
