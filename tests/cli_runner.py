"""Running ``semirobust`` inside a test: the exit code and the stderr lines."""

from __future__ import annotations

from semirobust.empirical.cli.main import main


def run_cli(argv: list[str], capsys) -> tuple[int, list[str]]:
    """Exit code and stderr lines of ``semirobust ARGV`` (argparse errors exit via SystemExit)."""
    try:
        code = main(argv)
    except SystemExit as exited:
        code = int(exited.code)
    return code, capsys.readouterr().err.strip().splitlines()
