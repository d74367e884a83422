"""Compare the numbers of two results files (same seed on the CPU must give the same numbers).

``python -m semirobust.testing.determinism A/results.json B/results.json`` prints every
number that differs, with its path, and exits 1 if any does (0 otherwise).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

#: entries that name the run rather than measure it: output folders, wall-clock times
IGNORED_KEYS = frozenset({"out", "elapsed_seconds", "seconds", "wall_seconds", "time"})


def differing_numbers(first: Any, second: Any, path: str = "") -> list[str]:
    """``"path: a != b"`` for every leaf (number, string, verdict) and every structural
    difference between two JSON trees, skipping keys in :data:`IGNORED_KEYS`; exact
    comparison, no tolerance."""
    if isinstance(first, dict) and isinstance(second, dict):
        keys = sorted((set(first) | set(second)) - IGNORED_KEYS)
        return [d for k in keys for d in differing_numbers(first.get(k), second.get(k), f"{path}.{k}".lstrip("."))]
    if isinstance(first, list) and isinstance(second, list):
        if len(first) != len(second):
            return [f"{path}: {len(first)} entries != {len(second)}"]
        return [d for i, (a, b) in enumerate(zip(first, second)) for d in differing_numbers(a, b, f"{path}[{i}]")]
    return [] if first == second and type(first) is type(second) else [f"{path}: {first!r} != {second!r}"]


def main(argv: list[str] | None = None) -> int:
    paths = sys.argv[1:] if argv is None else argv
    if len(paths) != 2:
        print("usage: python -m semirobust.testing.determinism A/results.json B/results.json", file=sys.stderr)
        return 2
    first, second = (json.loads(Path(p).read_text(encoding="utf-8")) for p in paths)
    differences = differing_numbers(first, second)
    for line in differences:
        print(line)
    print(f"{len(differences)} differing numbers", file=sys.stderr)
    return 1 if differences else 0


if __name__ == "__main__":
    sys.exit(main())
