"""The one exception type for bad user input.

The CLI turns :class:`BadInput` into one line on stderr and exit code 2 (DESIGN.md,
interface contract). Raise it wherever a user-supplied value is checked, naming the
argument, the value and what is accepted.
"""


class BadInput(ValueError):
    """User input the tool cannot work with (missing file, malformed value, ...)."""
