"""The README's "Check your own model" example runs as written: examples/my_model.py trains
and saves a state dict, and the README's ``semirobust check --model ...`` command (with
fewer attack steps and inputs, so that the test is quick) writes the report with every
verdict and the certified numbers the README says it holds."""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

import torch
from cli_runner import run_cli

ROOT = Path(__file__).resolve().parents[1]
ALL_VERDICTS = {"T1", "L1", "T2", "LIP (certified Delta_a)", "LIP (attacked Delta_a)", "L2", "T3"}


def readme_section(title: str) -> str:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    return text.split(f"\n## {title}\n", 1)[1].split("\n## ", 1)[0]


def readme_blocks(language: str) -> list[str]:
    """The section's fenced blocks in ``language`` (empty: shell commands)."""
    blocks = re.findall(r"```(\w*)\n(.*?)\n```", readme_section("Check your own model"), flags=re.DOTALL)
    return [body for fence, body in blocks if fence == language]


def test_the_readme_shows_the_example_modules_own_lines():
    (shown,) = readme_blocks("python")
    source = (ROOT / "examples" / "my_model.py").read_text(encoding="utf-8").splitlines()
    assert [line for line in shown.splitlines() if line not in source] == []


def test_the_readme_example_trains_saves_and_checks(tmp_path, capsys, monkeypatch):
    (shell,) = readme_blocks("")
    train_line, check_line = shell.splitlines()
    assert shlex.split(train_line) == ["python", "-m", "examples.my_model", "my_weights.pt"]
    monkeypatch.chdir(ROOT)  # the README runs its commands from the repository root
    from examples.my_model import SmallResNet, train

    torch.save(train(epochs=1).state_dict(), tmp_path / "my_weights.pt")
    argv = shlex.split(check_line)
    assert argv[:2] == ["semirobust", "check"] and "examples.my_model:SmallResNet" in argv
    argv = [str(tmp_path / a) if a in ("my_weights.pt", "runs/my-model") else a for a in argv[1:]]
    code, err = run_cli([*argv, "--samples", "120", "--steps", "2", "--restarts", "1", "--device", "cpu"], capsys)
    assert code == 0, err
    report = json.loads((tmp_path / "runs" / "my-model" / "report.json").read_text())
    assert set(report["verdicts"]) == ALL_VERDICTS
    assert report["split"]["n"] == 6 == sum(isinstance(m, (torch.nn.Conv2d, torch.nn.Linear))
                                             for m in SmallResNet().modules())
    markdown = (tmp_path / "runs" / "my-model" / "report.md").read_text()
    assert "Model `examples.my_model:SmallResNet`" in markdown
    assert report["certification"] == "certified bounds and Lipschitz bounds computed"
    assert [m["kind"] for m in report["measurements"]["gamma_whole"]] == ["certified", "attack"]
    for name in ("L_b", "gamma_transfer", "Delta_a"):
        assert report["measurements"][name][0]["kind"] == "certified", name
    assert [s["a"] for s in report["per_split"]] == [1, 3, 5] and report["sandwich_violations"] == 0
    assert [f["layer"] for f in report["lipschitz_layers"]] == [
        "GraphModule (stem)", "GraphModule (blocks.0.conv1, blocks.0.conv2)",
        "GraphModule (blocks.1.conv1, blocks.1.conv2)", "GraphModule (head)"]
    lip = report["verdicts"]["LIP (certified Delta_a)"]
    assert lip["status"] != "not applicable" and lip["per_sample"]["failing_samples"] == []
    assert "Certified per-sample margins never exceeded attacked ones: 0 violations." in markdown
