"""The ``semirobust`` entry point: its lazy registry of subcommands (semirobust.empirical.cli.main).

Start-up runs in fresh processes, which report the modules they imported: ``--help`` and a
bad subcommand import no command module and no torch, and ``SUBCOMMAND --help`` imports
only that subcommand's module (and the helpers it imports itself).
"""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from semirobust.empirical.cli import commands
from semirobust.empirical.cli.main import SUBCOMMANDS, build_parser, main

# Runs main(argv[2:]), then writes its exit code and the loaded modules to argv[1] as JSON.
PROBE = """
import json, sys
from semirobust.empirical.cli.main import main
try:
    code = main(sys.argv[2:])
except SystemExit as exit:
    code = exit.code
with open(sys.argv[1], "w") as file:
    json.dump({"code": code, "modules": sorted(sys.modules)}, file)
"""


def probe(tmp_path: Path, *argv: str) -> tuple[int, set[str], str, str]:
    """Exit code, imported modules, stdout and stderr of ``semirobust ARGV`` in a new process."""
    report = tmp_path / "probe.json"
    done = subprocess.run([sys.executable, "-c", PROBE, str(report), *argv],
                          capture_output=True, text=True, check=True)
    result = json.loads(report.read_text())
    return result["code"], set(result["modules"]), done.stdout, done.stderr


def command_modules(modules: set[str]) -> set[str]:
    return {m for m in modules if m.startswith(f"{commands.__name__}.")}


def test_importing_the_cli_imports_no_torch_and_no_command():
    done = subprocess.run(
        [sys.executable, "-c",
         "import json, sys; import semirobust.empirical.cli.main; print(json.dumps(sorted(sys.modules)))"],
        capture_output=True, text=True, check=True,
    )
    modules = set(json.loads(done.stdout))
    assert "torch" not in modules and "numpy" not in modules and "sympy" not in modules
    assert command_modules(modules) == set()


def test_help_lists_every_subcommand_with_its_help_line_without_importing_any(tmp_path):
    code, modules, out, err = probe(tmp_path, "--help")
    assert (code, err) == (0, "")
    listed = " ".join(out.split())  # argparse wraps long help lines
    for subcommand in SUBCOMMANDS:
        assert f" {subcommand.name} {subcommand.help}" in listed
    assert "torch" not in modules and command_modules(modules) == set()


def test_an_unknown_subcommand_is_one_line_exit_2_without_importing_any(tmp_path):
    code, modules, _, err = probe(tmp_path, "nope")
    assert code == 2
    assert err.splitlines() == [
        "semirobust: error: argument COMMAND: invalid choice: 'nope' (choose from "
        + ", ".join(f"'{s.name}'" for s in SUBCOMMANDS) + ") (see --help)"
    ]
    assert "torch" not in modules and command_modules(modules) == set()


def test_subcommand_help_imports_only_that_subcommand(tmp_path):
    code, modules, out, _ = probe(tmp_path, "theory", "--help")
    assert code == 0 and out.startswith("usage: semirobust theory")
    assert command_modules(modules) == {f"{commands.__name__}.theory"}


def test_theory_runs_without_torch(tmp_path):
    code, modules, out, _ = probe(tmp_path, "theory", "--result", "T1")
    assert code == 0 and "T1" in out
    assert "torch" not in modules


def test_the_table_names_every_command_module_and_each_registers_its_subcommand():
    on_disk = {p.stem for p in Path(commands.__file__).parent.glob("*.py")} - {"__init__"}
    assert {s.name for s in SUBCOMMANDS} == on_disk
    for subcommand in SUBCOMMANDS:
        parser = build_parser(subcommand.name)
        (choices,) = [a.choices for a in parser._actions if isinstance(a.choices, dict)]
        assert callable(choices[subcommand.name].get_default("run")), subcommand.name


def test_bad_input_below_the_chosen_subcommand_is_still_one_line_and_exit_2(capsys):
    assert main(["lipschitz", "--checkpoint", "/nonexistent", "--json", "/nonexistent/x.json"]) == 2
    assert capsys.readouterr().err.splitlines() == [
        ("semirobust lipschitz: error: checkpoint /nonexistent: no such directory "
         "(expected config.json + model.safetensors)")
    ]


@pytest.mark.parametrize("argv", [["check"], ["--bogus", "theory"]])
def test_argparse_errors_of_the_chosen_subcommand_exit_2(argv, capsys):
    with pytest.raises(SystemExit) as exited:
        main(argv)
    assert exited.value.code == 2 and len(capsys.readouterr().err.splitlines()) == 1


def test_the_cli_package_runs_as_a_module():
    done = subprocess.run([sys.executable, "-m", "semirobust.empirical.cli", "--version"],
                          capture_output=True, text=True)
    assert done.returncode == 0 and done.stdout.startswith("semirobust ")
