"""``semirobust sweep`` on a local Ray instance (one for the module): a 2 x 2 x 2 digits grid
completes and shares its trained models; its numbers equal Algorithm 1 run one setting at a
time; a worker killed in the middle of a task is retried; a driver killed in the middle of a
sweep and rerun with --resume loses and repeats no finished task and gives the same tables."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import torch

from semirobust.empirical.data import load_dataset
from semirobust.empirical.reports.sweep import write_sweep_tables
from semirobust.empirical.studies.algorithm1 import run_algorithm1
from semirobust.empirical.studies.sweep import Resources, run_sweep
from semirobust.empirical.studies.sweep_spec import load_spec, parse_spec
from semirobust.errors import BadInput
from semirobust.testing.determinism import differing_numbers

ray = pytest.importorskip("ray")

TINY = {
    "fixed": {"architecture": "digits-cnn", "eps": 0.1, "attack_steps": 2, "trials": 1,
              "finetune_epochs": 1, "tolerance": 0.5},
    "recipe": {"epochs": 1},
    "architecture_kwargs": {"digits-cnn": {"width": 4}},
    "axes": {"attack": ["pgd", "fgsm"], "fb_layers": [3, 4], "init": ["shared", "independent"]},
}
#: what names a run rather than measures it
METADATA = {"torch_version", "numpy_version", "torch_threads", "semirobust_version", "arguments",
            "command", "seed"}
CPU = Resources(cpus=1, gpus=0.0)


@pytest.fixture(scope="module")
def local_ray():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()


@pytest.fixture(scope="module")
def tiny_sweep(local_ray, tmp_path_factory):
    out = tmp_path_factory.mktemp("sweep")
    spec = parse_spec(TINY)
    settings = run_sweep(spec, out, resources=CPU, progress=False)
    return spec, settings, out


def results_of(path: Path) -> dict:
    data = json.loads(path.read_text())
    return {k: v for k, v in data.items() if k not in METADATA}


def test_a_2x2x2_grid_completes_sharing_each_trained_model(tiny_sweep):
    _, settings, out = tiny_sweep
    assert len(settings) == 8
    assert all((out / "settings" / s.name / "results.json").is_file() for s in settings)
    assert sorted(p.name.split("-")[0] for p in (out / "models").iterdir()) == ["normal", "robust", "robust"]
    assert list((out / "running").iterdir()) == []
    manifest = json.loads((out / "sweep.json").read_text())
    assert manifest["spec"]["axes"] == TINY["axes"] and len(manifest["settings"]) == 8
    tables = write_sweep_tables(out)
    markdown = next(p for p in tables if p.suffix == ".md").read_text()
    assert markdown.count("\n| ") == 8 + 1  # header and one row per setting
    assert {p.suffix for p in tables} == {".csv", ".md", ".tex", ".png"}
    assert (out / "tables" / "digits-cnn_digits.pdf").is_file()


def test_the_sweeps_numbers_equal_algorithm1_run_one_setting_at_a_time(tiny_sweep, tmp_path):
    _, settings, out = tiny_sweep
    setting = next(s for s in settings if s.config.init == "independent" and s.config.attack == "fgsm")
    alone = run_algorithm1(setting.config, load_dataset("digits"), tmp_path / "alone",
                           device=torch.device("cpu"), progress=False, log=lambda _: None)
    assert alone.trials
    differences = differing_numbers(results_of(out / "settings" / setting.name / "results.json"),
                                    results_of(tmp_path / "alone" / "results.json"))
    assert differences == []


def test_a_worker_killed_in_the_middle_of_a_task_is_retried(local_ray, tmp_path):
    spec = parse_spec({**TINY, "fixed": {**TINY["fixed"], "trials": 2}, "axes": {"fb_layers": [3]}})
    finished: dict[str, object] = {}
    sweep = threading.Thread(target=lambda: finished.setdefault(
        "settings", run_sweep(spec, tmp_path, resources=CPU, progress=False)))
    sweep.start()
    killed = None
    deadline = time.monotonic() + 600
    while killed is None and sweep.is_alive() and time.monotonic() < deadline:
        for marker in (tmp_path / "running").glob("*trial_001.json"):
            try:
                pid = json.loads(marker.read_text())["pid"]
            except (OSError, ValueError):
                continue
            os.kill(pid, signal.SIGKILL)
            killed = pid
        time.sleep(0.05)
    sweep.join()
    assert killed is not None, "the trial task was never seen running"
    assert "settings" in finished, "the sweep did not complete after the worker was killed"
    (setting,) = finished["settings"]
    assert (tmp_path / "settings" / setting.name / "trials" / "trial_001.json").is_file()
    assert (tmp_path / "settings" / setting.name / "results.json").is_file()


def test_a_killed_driver_resumed_repeats_no_finished_task_and_gives_the_same_tables(tiny_sweep, tmp_path):
    spec_file = tmp_path / "tiny.toml"
    spec_file.write_text(toml_of(TINY))
    out = tmp_path / "interrupted"
    command = [sys.executable, "-m", "semirobust.empirical.cli.main", "sweep", str(spec_file), "--out", str(out),
               "--device", "cpu", "--seed", "0"]
    driver = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              env={**os.environ, "OMP_NUM_THREADS": "1"}, start_new_session=True)
    trials = out / "settings"
    deadline = time.monotonic() + 600
    while driver.poll() is None and time.monotonic() < deadline and not list(trials.glob("*/trials/*.json")):
        time.sleep(0.2)
    os.killpg(driver.pid, signal.SIGKILL)  # the driver and the local Ray instance it started
    driver.wait()
    before = {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in trials.glob("*/trials/*.json")}
    assert before, "no trial finished before the kill"
    done = subprocess.run([*command, "--resume"], capture_output=True, text=True,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert done.returncode == 0, done.stderr[-2000:]
    for path, (content, mtime) in before.items():
        assert path.read_bytes() == content and path.stat().st_mtime_ns == mtime, f"{path} was redone"
    _, _, uninterrupted = tiny_sweep
    write_sweep_tables(uninterrupted)
    for suffix in (".md", ".csv", ".tex"):
        name = f"digits-cnn_digits{suffix}"
        assert (out / "tables" / name).read_text() == (uninterrupted / "tables" / name).read_text()


def toml_of(spec: dict) -> str:
    """The dictionary spec as TOML (strings, numbers and lists of them only)."""
    def value(v):
        return json.dumps(v) if not isinstance(v, list) else "[" + ", ".join(json.dumps(x) for x in v) + "]"

    lines = []
    for table in ("fixed", "recipe", "axes"):
        lines += [f"[{table}]", *(f"{k} = {value(v)}" for k, v in spec[table].items()), ""]
    for name, options in spec["architecture_kwargs"].items():
        lines += [f"[architecture_kwargs.{name}]", *(f"{k} = {value(v)}" for k, v in options.items()), ""]
    return "\n".join(lines)


def test_the_spec_written_as_toml_reads_back_as_the_same_sweep(tmp_path):
    path = tmp_path / "tiny.toml"
    path.write_text(toml_of(TINY))
    assert load_spec(path).to_dict() == parse_spec(TINY).to_dict()


def test_a_folder_holding_a_sweep_needs_resume_and_the_same_spec(tiny_sweep):
    spec, _, out = tiny_sweep
    with pytest.raises(BadInput, match="already holds a sweep: pass --resume"):
        run_sweep(spec, out, resources=CPU, progress=False)
    other = parse_spec({**TINY, "axes": {"fb_layers": [3]}})
    with pytest.raises(BadInput, match="holds another spec"):
        run_sweep(other, out, resume=True, resources=CPU, progress=False)
