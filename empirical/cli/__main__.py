"""``python -m semirobust.empirical.cli``: the ``semirobust`` command."""

import sys

from semirobust.empirical.cli.main import main

if __name__ == "__main__":  # not when a spawned worker process imports this module
    sys.exit(main())
