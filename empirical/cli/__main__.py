"""``python -m semirobust.empirical.cli``: the ``semirobust`` command."""

import sys

from semirobust.empirical.cli.main import main

sys.exit(main())
