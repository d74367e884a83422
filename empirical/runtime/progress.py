"""Progress bars: shown on a terminal only.

A bar is drawn when the caller wants one and stderr is a terminal; a log file, a pipe or
CI gets no bars, so an error stays one line on stderr (DESIGN.md, interface contract),
while a person watching a long attack sees its stages and the inputs left.
"""

from __future__ import annotations

import sys


def bar_disabled(progress: bool) -> bool:
    """tqdm's ``disable`` for a bar the caller wants (``progress``) or not."""
    isatty = getattr(sys.stderr, "isatty", None)
    return not (progress and isatty is not None and isatty())
