"""One module per ``semirobust`` subcommand; each exposes ``register(subparsers)``.

The CLI imports a module only when its subcommand is chosen; the subcommand's name, module
and one-line help are listed in :data:`semirobust.empirical.cli.main.SUBCOMMANDS`.
"""
