"""Whether this process is one of several started by ``torchrun`` (or Ray Train's torch
workers, which set the same variables).

Kept apart from :mod:`.distributed`, which imports torch, so that the command line can
refuse a data-parallel launch of a command that does not train without importing torch.
"""

from __future__ import annotations

import os

#: What torchrun sets in each process it starts.
LAUNCH_VARIABLES = ("RANK", "WORLD_SIZE", "LOCAL_RANK")


def launched_by_torchrun() -> bool:
    """Whether ``RANK``, ``WORLD_SIZE`` and ``LOCAL_RANK`` are all set."""
    return all(name in os.environ for name in LAUNCH_VARIABLES)
