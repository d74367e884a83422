"""The optional per-split image limit shared by the on-disk loaders."""

from __future__ import annotations

from semirobust.errors import BadInput


def check_limit(limit: int | None) -> None:
    """``limit`` (images per split) must be ``None`` (all) or an integer >= 1."""
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
        raise BadInput(f"limit={limit!r} must be a positive number of images per split, or None for all")
