"""One module per ``semirobust`` subcommand; each exposes ``register(subparsers)``."""
