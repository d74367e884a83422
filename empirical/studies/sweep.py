"""The paper's experiment grid on Ray (THEORY.md section 6): ``semirobust sweep``.

A spec (:mod:`~semirobust.empirical.studies.sweep_spec`) expands to settings of Algorithm 1
and then to a graph of tasks:

* one **training task** per distinct normal or robust model (settings that would train the
  same model, by :func:`~semirobust.empirical.studies.sweep_spec.training_key`, share it);
* one **trial task** per setting and trial (steps 3 and 4), after both its models;
* one **finishing task** per setting, after its trials: Algorithm 1 resumed on the folder,
  which reuses every finished piece and writes the setting's ``results.json``.

The layout of ``DIR``: ``sweep.json`` (the spec, the package version and every setting),
``models/<key>/`` (trained checkpoints), ``settings/<name>/`` (an Algorithm 1 run folder
whose ``normal`` and ``robust`` are links into ``models/``), and the tables of
:mod:`semirobust.empirical.reports.sweep`. Every task writes its result atomically, so a
task is finished exactly when its file exists: an interrupted sweep resumed with
``resume=True`` submits only the unfinished tasks. Ray retries a task whose worker dies
(``max_retries``); each task records the process running it in ``running/`` while it runs.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from semirobust import __version__
from semirobust.empirical.reports.writers import write_json_atomic
from semirobust.empirical.runtime.progress import bar_disabled
from semirobust.empirical.studies.algorithm1 import Algorithm1Config
from semirobust.empirical.studies.sweep_spec import Setting, SweepSpec, training_key
from semirobust.errors import BadInput

TASK_RETRIES = 3


@dataclass(frozen=True)
class Resources:
    """What each task asks of the cluster: CPUs (also torch's thread count) and a GPU share
    (``None``: a whole GPU where the cluster has GPUs, none otherwise)."""

    cpus: float = 1.0
    gpus: float | None = 0.0

    def __post_init__(self) -> None:
        if not self.cpus > 0 or (self.gpus is not None and not 0 <= self.gpus <= 1):
            raise BadInput(f"task resources: need cpus > 0 and 0 <= gpus <= 1, got {self.cpus}, {self.gpus}")

    def on(self, cluster_gpus: float) -> Resources:
        """The share resolved against the cluster's GPUs."""
        return self if self.gpus is not None else replace(self, gpus=1.0 if cluster_gpus else 0.0)

    @property
    def device(self) -> str:
        return "cuda" if self.gpus > 0 else "cpu"


@dataclass(frozen=True)
class SweepLayout:
    """The paths of one sweep folder."""

    root: Path

    @property
    def manifest(self) -> Path:
        return self.root / "sweep.json"

    def model(self, key: str) -> Path:
        return self.root / "models" / key

    def setting(self, setting: Setting) -> Path:
        return self.root / "settings" / setting.name

    def trial(self, setting: Setting, t: int) -> Path:
        return self.setting(setting) / "trials" / f"trial_{t:03d}.json"

    def results(self, setting: Setting) -> Path:
        return self.setting(setting) / "results.json"

    def running(self, task: str) -> Path:
        return self.root / "running" / f"{task}.json"


def manifest(spec: SweepSpec, settings: Sequence[Setting]) -> dict[str, Any]:
    """What ``sweep.json`` records: the spec, the version and every setting's configuration."""
    return {
        "semirobust_version": __version__,
        "spec": spec.to_dict(),
        "settings": [{"name": s.name, "axes": s.axes, "config": s.config.to_dict()} for s in settings],
    }


def prepare_folder(layout: SweepLayout, spec: SweepSpec, settings: Sequence[Setting], resume: bool) -> None:
    """Write ``sweep.json``, or check that the folder holds this same sweep (``resume``)."""
    wanted = manifest(spec, settings)
    if layout.manifest.exists():
        if not resume:
            raise BadInput(f"{layout.root} already holds a sweep: pass --resume to continue it or choose another --out")
        try:
            stored = json.loads(layout.manifest.read_text(encoding="utf-8"))
        except ValueError:
            raise BadInput(f"{layout.manifest} is not valid JSON: delete it to start the sweep again") from None
        if stored.get("spec") != json.loads(json.dumps(wanted["spec"])):
            raise BadInput(f"--resume: {layout.manifest} holds another spec; use the same spec or another --out")
    write_json_atomic(layout.manifest, wanted)


def link_models(layout: SweepLayout, setting: Setting) -> None:
    """``settings/<name>/normal`` and ``/robust`` as relative links to the shared models."""
    folder = layout.setting(setting)
    folder.mkdir(parents=True, exist_ok=True)
    for role in ("normal", "robust"):
        link = folder / role
        target = os.path.relpath(layout.model(training_key(setting.config, role)), folder)
        if link.is_symlink() and os.readlink(link) == target:
            continue
        temporary = folder / f".{role}.link.tmp"
        temporary.unlink(missing_ok=True)
        os.symlink(target, temporary)
        os.replace(temporary, link)


@dataclass(frozen=True)
class Task:
    """One node of the graph: its name, what it waits for, and the work itself."""

    name: str
    needs: tuple[str, ...]
    output: Path
    work: Callable[[], None]


def task_graph(layout: SweepLayout, settings: Sequence[Setting], data_root: str | None,
               resources: Resources) -> list[Task]:
    """Training, trial and finishing tasks in dependency order (module docstring)."""
    tasks: dict[str, Task] = {}
    for setting in settings:
        for role in ("normal", "robust"):
            key = training_key(setting.config, role)
            if key not in tasks:
                tasks[key] = Task(key, (), layout.model(key) / "config.json",
                                  _bind(train_model_task, setting.config, role, str(layout.model(key)),
                                        data_root, resources))
        models = (training_key(setting.config, "normal"), training_key(setting.config, "robust"))
        trials = []
        for t in range(1, setting.config.trials + 1):
            name = f"{setting.name}/trial_{t:03d}"
            trials.append(name)
            tasks[name] = Task(name, models, layout.trial(setting, t),
                               _bind(trial_task, setting.config, str(layout.setting(setting)), t,
                                     data_root, resources))
        finish = f"{setting.name}/results"
        tasks[finish] = Task(finish, (*models, *trials), layout.results(setting),
                             _bind(finish_task, setting.config, str(layout.setting(setting)),
                                   data_root, resources))
    return list(tasks.values())


def _bind(function: Callable[..., None], *args: Any) -> Callable[[], None]:
    def work() -> None:
        function(*args)

    work.__name__ = function.__name__
    return work


def _open(config: Algorithm1Config, data_root: str | None, resources: Resources):
    """Set the worker's threads and load the setting's dataset (seeded as Algorithm 1 does)."""
    import torch

    from semirobust.empirical.data import load_dataset

    torch.set_num_threads(max(1, int(resources.cpus)))
    return load_dataset(config.dataset, seed=config.seed, root=data_root), torch.device(resources.device)


def train_model_task(config: Algorithm1Config, role: str, path: str, data_root: str | None,
                     resources: Resources) -> None:
    """Steps 1 or 2 of Algorithm 1: train the ``role`` model of ``config`` into ``path``."""
    from semirobust.empirical.studies.algorithm1 import train_role

    dataset, device = _open(config, data_root, resources)
    train_role(config, dataset, Path(path), role, device=device, progress=False, log=_quiet)


def trial_task(config: Algorithm1Config, folder: str, t: int, data_root: str | None,
               resources: Resources) -> None:
    """Steps 3 and 4 for trial ``t`` in the setting's folder (its models linked in)."""
    from semirobust.empirical.studies.algorithm1 import run_trial

    dataset, device = _open(config, data_root, resources)
    run_trial(config, dataset, Path(folder), t, device=device, progress=False, log=_quiet)


def finish_task(config: Algorithm1Config, folder: str, data_root: str | None,
                resources: Resources) -> None:
    """Algorithm 1 resumed on the finished folder: writes the setting's ``results.json``."""
    from semirobust.empirical.studies.algorithm1 import run_algorithm1

    dataset, device = _open(config, data_root, resources)
    run_algorithm1(config, dataset, Path(folder), device=device, resume=True, progress=False, log=_quiet)


def _quiet(_message: str) -> None:
    """Workers log nothing per step; the driver's progress bar covers the sweep."""


def run_sweep(spec: SweepSpec, out: str | Path, *, address: str | None = None, resume: bool = False,
              resources: Resources = Resources(gpus=None), progress: bool = True) -> list[Setting]:
    """Run (or resume) the sweep of ``spec`` in ``out`` on Ray: a local instance, or the
    cluster at ``address``. Returns the settings; their results are on disk."""
    try:
        import ray
    except ImportError:
        raise BadInput("semirobust sweep needs Ray: pip install 'semirobust[sweep]' (ray>=2.60)") from None
    from tqdm.auto import tqdm

    layout = SweepLayout(Path(out))
    settings = spec.settings()
    prepare_folder(layout, spec, settings, resume)
    for setting in settings:
        link_models(layout, setting)
    started_here = not ray.is_initialized()
    if started_here:
        ray.init(address=address, include_dashboard=False, log_to_driver=False,
                 **({} if address else {"num_cpus": max(1, os.cpu_count() or 1)}))
    try:
        resources = resources.on(ray.cluster_resources().get("GPU", 0))
        tasks = task_graph(layout, settings, spec.data_root, resources)
        remote = ray.remote(_run_task).options(num_cpus=resources.cpus, num_gpus=resources.gpus,
                                               max_retries=TASK_RETRIES, retry_exceptions=False)
        refs: dict[str, Any] = {}
        pending = [task for task in tasks if not task.output.exists()]
        with tqdm(total=len(tasks), initial=len(tasks) - len(pending), desc="sweep", unit="task",
                  disable=bar_disabled(progress)) as bar:
            for task in pending:
                refs[task.name] = remote.remote(str(layout.running(task.name.replace("/", "__"))),
                                                task.work, *[refs[n] for n in task.needs if n in refs])
            waiting = list(refs.values())
            while waiting:
                done, waiting = ray.wait(waiting, num_returns=1)
                ray.get(done)  # re-raises a task's error (BadInput stays one line)
                bar.update(len(done))
    finally:
        if started_here:
            ray.shutdown()
    return settings


def _run_task(running: str, work: Callable[[], None], *_finished_inputs: Any) -> None:
    """Run one task, recording the worker process in ``running`` while it runs."""
    marker = Path(running)
    write_json_atomic(marker, {"pid": os.getpid()})
    try:
        work()
    finally:
        marker.unlink(missing_ok=True)
