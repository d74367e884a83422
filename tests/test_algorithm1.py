"""Algorithm 1 end to end at toy size: the columns, resume after kill -9, bad input."""

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from semirobust.empirical.cli.main import main

TINY = [
    "--arch", "mlp", "--arch-kwargs", '{"depth": 3, "width": 16}', "--dataset", "gaussian-mixture",
    "--fb-layers", "2", "--eps", "0.05", "--steps", "2", "--epochs", "2", "--train-epochs", "2",
    "--lr", "0.05", "--batch-size", "128", "--device", "cpu", "--seed", "0",
]


def run_cli(*args: str) -> int:
    """Exit code of ``semirobust algorithm1 ARGS`` (argparse errors exit via SystemExit)."""
    try:
        return main(["algorithm1", *args])
    except SystemExit as exited:
        return int(exited.code)


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("alg1") / "run"
    assert run_cli(*TINY, "--trials", "2", "--out", str(out)) == 0
    return out


def test_writes_the_paper_columns_with_provenance(finished_run):
    results = json.loads((finished_run / "results.json").read_text())
    for key in ("Acc", "Acc*", "gamma_a"):
        assert {"value", "interval", "kind", "estimator", "unit"} <= set(results[key])
    assert results["Acc"]["kind"] == "attack" and results["Acc"]["unit"] == "fraction"
    assert len(results["trials"]) == 2
    for trial in results["trials"]:
        assert 1 <= trial["epochs"] <= 2
        assert [r["pair"] for r in trial["rho"]] == [[2, 3], [3, 4]]
        assert all(r["unit"] == "bits" and r["kind"] == "estimate" for r in trial["rho"])
        assert trial["gAcc"]["value"] == max(p["robust_accuracy"]["value"] for p in trial["curve"])
    header = (finished_run / "table.csv").read_text().splitlines()[0].split(",")
    assert header[:6] == ["Acc", "Acc*", "Acc_sr", "gAcc", "Diff", "epochs"]
    assert header[6:] == ["rho_4", "rho_3"]
    assert (finished_run / "plots" / "finetuning.png").stat().st_size > 0
    assert "## The paper's columns" in (finished_run / "report.md").read_text()
    import numpy
    import torch

    assert (results["torch_version"], results["numpy_version"]) == (torch.__version__, numpy.__version__)
    assert results["torch_threads"] == torch.get_num_threads() and results["semirobust_version"]
    assert results["command"] == "algorithm1" and results["seed"] == 0 and results["arguments"]["trials"] == 2


def test_a2_gap_at_a_plus_1_is_measured_certified_and_attacked(finished_run):
    """gamma_a is read by f*_b and layer a+1 by the finetuned f_b': their gap is measured
    (certified below the attack), and T2 judges it at j = a+1; j > a+1 stays the identity."""
    results = json.loads((finished_run / "results.json").read_text())
    first = results["split"]["a"] + 1
    for trial in results["trials"]:
        certified, attacked = trial["margin_gap_first"]
        assert (certified["kind"], attacked["kind"]) == ("certified", "attack")
        assert certified["name"] == attacked["name"] == f"margin_gap_{first}"
        assert certified["value"] <= attacked["value"]
        assert "f*_b" in certified["settings"]["readout"]
        verdict = results["verdicts"][f"T2 (trial {trial['trial']})"]
        a2 = {p["label"]: p for p in verdict["premises"]}
        measured = next(m for m in verdict["measurements"] if m["name"] == f"margin_gap_{first}")
        assert measured["kind"] == "certified + attack"
        assert a2[f"A2 [j = {first + 1}]"]["status"] == "violated"  # the canonical identity 0
        assert verdict["decided_by"]


def test_existing_run_needs_resume(finished_run, capsys):
    assert run_cli(*TINY, "--trials", "2", "--out", str(finished_run)) == 2
    assert "--resume" in capsys.readouterr().err


def test_resume_with_other_settings_is_refused(finished_run, capsys):
    assert run_cli(*TINY, "--trials", "3", "--out", str(finished_run), "--resume") == 2
    assert "other settings" in capsys.readouterr().err


def test_a_stale_model_directory_with_another_architecture_is_refused(finished_run, tmp_path, capsys):
    """Trained models lying in --out without the run's config (left from an earlier run
    with other settings) are not silently reused."""
    out = tmp_path / "run"
    out.mkdir()
    shutil.copytree(finished_run / "normal", out / "normal")
    wider = TINY[:]
    wider[wider.index("--arch-kwargs") + 1] = '{"depth": 3, "width": 32}'
    assert run_cli(*wider, "--trials", "1", "--out", str(out)) == 2
    errors = [line for line in capsys.readouterr().err.splitlines() if "error:" in line]
    assert len(errors) == 1 and "holds a model trained with architecture.kwargs" in errors[0]
    assert "'width': 16" in errors[0] and "'width': 32" in errors[0]


@pytest.mark.parametrize(
    "args, message",
    [
        (["--fb-layers", "4"], "outside the network"),
        (["--eps", "-0.1"], "--eps"),
        (["--attack", "nope"], "argument --attack: 'nope': expected one of"),
        (["--init", "sometimes"], "--init"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(tmp_path, capsys, args, message):
    base = list(TINY)
    for flag in ("--fb-layers", "--eps"):
        if flag in args:
            index = base.index(flag)
            del base[index:index + 2]
    assert run_cli(*base, *args, "--trials", "1", "--out", str(tmp_path / "x")) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0]


def test_kill_9_mid_run_then_resume_loses_no_finished_trial(tmp_path):
    out = tmp_path / "run"
    command = [sys.executable, "-m", "semirobust.empirical.cli.main", "algorithm1", *TINY, "--trials", "3", "--out", str(out)]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    first = out / "trials" / "trial_001.json"
    while not first.exists() and process.poll() is None:
        time.sleep(0.2)
    assert process.poll() is None, "the run ended before it could be interrupted"
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    finished_before = sorted(p.name for p in (out / "trials").glob("trial_*.json"))
    snapshot = {name: (out / "trials" / name).read_text() for name in finished_before}
    assert not (out / "results.json").exists()
    subprocess.run([*command, "--resume"], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    results = json.loads((out / "results.json").read_text())
    assert [t["trial"] for t in results["trials"]] == [1, 2, 3]
    for name, text in snapshot.items():
        assert (out / "trials" / name).read_text() == text, f"{name} was redone"
    assert not list(out.rglob("*.tmp")), "a temporary file was left behind"


def test_trades_adversarial_training_runs_algorithm1(tmp_path):
    out = tmp_path / "trades"
    assert run_cli(*TINY, "--method", "trades", "--trades-beta", "3", "--trials", "1", "--out", str(out)) == 0
    results = json.loads((out / "results.json").read_text())
    assert results["config"]["recipe"]["method"] == "trades"
    assert results["config"]["recipe"]["trades_beta"] == 3.0
    robust = json.loads((out / "robust" / "config.json").read_text())
    assert robust["recipe"]["method"] == "trades" and robust["recipe"]["adversarial"]


def test_results_on_disk_read_back_into_the_typed_result(finished_run):
    """Resume reads JSON back: results.json -> Algorithm1Result -> the same JSON, and each
    trial file -> Trial -> the same file."""
    from semirobust.empirical.studies.algorithm1 import Algorithm1Result, Trial
    from semirobust.theory.verdict import Status

    data = json.loads((finished_run / "results.json").read_text())
    result = Algorithm1Result.from_dict(data)
    assert json.loads(json.dumps(result.to_dict())) == {k: v for k, v in data.items() if k in result.to_dict()}
    assert all(v.status in set(Status) for v in result.verdicts.values())
    for path in sorted((finished_run / "trials").glob("trial_*.json")):
        stored = json.loads(path.read_text())
        assert json.loads(json.dumps(Trial.from_dict(stored).to_dict())) == stored


def test_check_on_an_algorithm1_checkpoint_plots_its_finetuning(finished_run, tmp_path):
    out = tmp_path / "check"
    assert main(["check", "--checkpoint", str(finished_run / "robust"), "--fb-layers", "2", "--out", str(out),
                 "--samples", "60", "--steps", "2", "--device", "cpu"]) == 0
    assert (out / "plots" / "finetuning.png").stat().st_size > 1000


def test_the_paper_table_is_also_latex_with_booktabs_rules(finished_run):
    csv_rows = (finished_run / "table.csv").read_text().splitlines()
    lines = (finished_run / "table.tex").read_text().splitlines()
    body = [line for line in lines if not line.startswith("%")]
    assert body[0] == "\\begin{tabular}{" + "r" * 8 + "}" and body[-1] == "\\end{tabular}"
    assert [body[1], body[3], body[5]] == ["\\toprule", "\\midrule", "\\bottomrule"]
    header, row = body[2], body[4]
    assert header.split(" & ")[:6] == ["Acc", "Acc$^*$", "Acc$_{\\mathrm{sr}}$", "gAcc", "Diff", "epochs"]
    assert header.split(" & ")[6:] == ["$\\rho_{4}$", "$\\rho_{3}$ \\\\"]
    values = row.removesuffix(" \\\\").split(" & ")
    assert [v.replace("$", "") for v in values] == csv_rows[1].split(",")


@pytest.mark.parametrize(("damaged", "remedy"), [
    ("trials/trial_001.json", "delete it and --resume redoes that trial"),
    ("algorithm1_config.json", "the run's settings: delete it, or choose another --out"),
])
def test_a_corrupt_run_file_is_named_with_what_to_do(finished_run, tmp_path, capsys, damaged, remedy):
    out = tmp_path / "run"
    shutil.copytree(finished_run, out)
    text = (out / damaged).read_text()
    (out / damaged).write_text(text[: len(text) // 2])
    assert run_cli(*TINY, "--trials", "2", "--out", str(out), "--resume") == 2
    line = capsys.readouterr().err.strip().splitlines()[-1]  # after the progress log lines
    assert line.startswith("semirobust algorithm1: error: ")
    assert f"{out / damaged} is corrupt (JSONDecodeError" in line and line.endswith(remedy)


def test_an_interrupted_copy_of_a_model_folder_leaves_no_half_copy(tmp_path, monkeypatch):
    from semirobust.empirical.reports import writers

    source = tmp_path / "normal"
    source.mkdir()
    for name in ("config.json", "model.safetensors"):
        (source / name).write_text(name)
    real_copytree = shutil.copytree

    def copy_one_file_then_die(src, dst, *args, **kwargs):
        Path(dst).mkdir(parents=True)
        shutil.copy2(Path(src) / "config.json", Path(dst) / "config.json")
        raise KeyboardInterrupt  # interrupted after the first file

    monkeypatch.setattr(shutil, "copytree", copy_one_file_then_die)
    with pytest.raises(KeyboardInterrupt):
        writers.copy_folder_atomic(source, tmp_path / "copy" / "normal")
    assert not (tmp_path / "copy" / "normal").exists()
    monkeypatch.setattr(shutil, "copytree", real_copytree)
    writers.copy_folder_atomic(source, tmp_path / "copy" / "normal")  # the next start completes it
    assert sorted(p.name for p in (tmp_path / "copy").iterdir()) == ["normal"]
    assert sorted(p.name for p in (tmp_path / "copy" / "normal").iterdir()) == ["config.json", "model.safetensors"]


def test_each_trials_verdict_is_headed_with_its_trial(finished_run):
    report = (finished_run / "report.md").read_text()
    for trial in (1, 2):
        assert f"### T2 (trial {trial}): " in report
