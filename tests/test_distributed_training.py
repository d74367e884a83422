"""Data-parallel training (two processes, gloo on the CPU) equals one process on the same
global batch.

Tolerance: ``atol = 1e-5`` on every trained weight and buffer. Both runs do the same
arithmetic except the order of some float32 sums (each process sums the gradient and the
BatchNorm statistics over its part, the parts are then added), so they differ by rounding:
observed at most 4.1e-8 without and 2.4e-7 with BatchNorm, while training moves the weights by
more than 1e-3 (asserted, so that equality is not that of untrained weights).
BatchNorm networks run a short comparison (4 batches): on digits such a network amplifies
a last-bit difference on one process alone (the width-4 digits-cnn's weights after two
epochs move by 2e-2 when its initial weights are perturbed by 1e-7), so after a few epochs
no tolerance tells two equal computations from two different ones.
"""

from __future__ import annotations

import dataclasses
import json
import os
import socket
import subprocess
import sys
from contextlib import nullcontext
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from cli_runner import run_cli
from safetensors.torch import load_file

from semirobust.empirical.attacks.threat import ThreatModel
from semirobust.empirical.data import load_dataset
from semirobust.empirical.model import ArchitectureSpec, build_seeded_model
from semirobust.empirical.runtime.distributed import BatchShard, Processes
from semirobust.empirical.studies import training
from semirobust.empirical.studies.training import TrainRecipe, train
from semirobust.errors import BadInput

ATOL = 1e-5
MOVED = 1e-3
WORLD = 2

# name: (architecture, builder options, recipe, training samples (None: all 898))
CASES = {
    # 15 batches an epoch, the last of 2 samples split 1 + 1
    "mlp normal": ("mlp", {"width": 16}, TrainRecipe(epochs=2, batch_size=64, lr=0.1), None),
    "mlp pgd": ("mlp", {"width": 16},
                TrainRecipe(epochs=1, batch_size=64, lr=0.1, adversarial=True, eps=0.1, steps=3), None),
    "mlp trades": ("mlp", {"width": 16}, TrainRecipe(epochs=1, batch_size=64, lr=0.1, adversarial=True,
                                                     method="trades", eps=0.1, steps=2), None),
    # BatchNorm: 251 samples, 4 batches, the last of 59 split 30 + 29
    "batchnorm normal": ("digits-cnn", {"width": 4}, TrainRecipe(epochs=1, batch_size=64, lr=0.05), 251),
    "batchnorm pgd": ("digits-cnn", {"width": 4},
                      TrainRecipe(epochs=1, batch_size=64, lr=0.05, adversarial=True, eps=0.1, steps=2), 251),
}
# The control: BatchNorm with each process's own statistics (the global ones switched off).
PER_PART_STATISTICS = "batchnorm normal"


def _digits(samples: int | None = None):
    data = load_dataset("digits")
    if samples is None:
        return data
    return dataclasses.replace(data, x_train=data.x_train[:samples], y_train=data.y_train[:samples])


def _initial_model(architecture: str, options: dict):
    data = load_dataset("digits")
    spec = ArchitectureSpec(architecture, data.input_shape, data.num_classes, data.mean, data.std, options)
    return build_seeded_model(spec, 0)


def _trained(case: str, processes: Processes):
    architecture, options, recipe, samples = CASES[case]
    model = _initial_model(architecture, options)
    history = train(model, _digits(samples), recipe, seed=3, progress=False, processes=processes)
    return model.state_dict(), history


def _worker(rank: int, port: int, out: str) -> None:
    torch.set_num_threads(1)
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=WORLD)
    processes = Processes(rank, WORLD, "gloo")
    try:
        results = {case: _trained(case, processes) for case in CASES}
        training.global_batch_norm = lambda model, _processes: nullcontext(model)
        results["per-part statistics"] = _trained(PER_PART_STATISTICS, processes)
        torch.save(results, Path(out) / f"rank{rank}.pt")
    finally:
        dist.destroy_process_group()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def two_processes(tmp_path_factory):
    """Every case trained once by two gloo processes: the state dicts and histories per rank."""
    out = tmp_path_factory.mktemp("data_parallel")
    mp.spawn(_worker, args=(_free_port(), str(out)), nprocs=WORLD)
    return [torch.load(out / f"rank{rank}.pt") for rank in range(WORLD)]


def _max_difference(a: dict, b: dict) -> float:
    return max(float((a[k].double() - b[k].double()).abs().max()) for k in a if a[k].is_floating_point())


@pytest.mark.parametrize("case", list(CASES))
def test_two_processes_train_the_weights_of_one_process_on_the_global_batch(two_processes, case):
    single, single_history = _trained(case, Processes())
    initial = _initial_model(*CASES[case][:2]).state_dict()
    assert _max_difference(single, initial) > MOVED, "training did not move the weights"
    rank0, history0 = two_processes[0][case]
    rank1, _ = two_processes[1][case]
    for key in single:
        assert torch.equal(rank0[key], rank1[key]), f"the processes hold different {key}"
    assert _max_difference(single, rank0) <= ATOL, case
    for ours, theirs in zip(history0, single_history, strict=True):
        assert ours["train_accuracy"] == theirs["train_accuracy"]
        assert ours["loss"] == pytest.approx(theirs["loss"], abs=ATOL)


def test_per_part_batchnorm_statistics_would_fail_the_comparison(two_processes):
    """The control: with each process's own BatchNorm statistics the weights differ by far
    more than the tolerance, so the BatchNorm comparison above can fail."""
    single, _ = _trained(PER_PART_STATISTICS, Processes())
    per_part, _ = two_processes[0]["per-part statistics"]
    assert _max_difference(single, per_part) > 100 * ATOL


@pytest.mark.parametrize("norm", ["linf", "l2"])
def test_a_shard_starts_pgd_where_the_whole_batch_would(norm):
    threat = ThreatModel(norm, 0.1)
    x = torch.rand(7, 1, 4, 4, generator=torch.Generator().manual_seed(0))
    whole = threat.random_start(x, torch.Generator().manual_seed(5))
    for rank in range(3):
        shard = Processes(rank, 3).shard(7)
        part = threat.random_start(x[shard.rows], torch.Generator().manual_seed(5), shard)
        assert torch.equal(part, whole[shard.rows])


def test_shards_partition_the_batch_in_order_with_sizes_one_apart():
    for world in range(1, 5):
        for size in range(world, 20):
            shards = [Processes(rank, world).shard(size) for rank in range(world)]
            assert [s.start for s in shards] == [0, *(s.stop for s in shards[:-1])]
            assert shards[-1].stop == size
            assert max(s.count for s in shards) - min(s.count for s in shards) <= 1
            assert sum(s.weight for s in shards) == pytest.approx(1.0)
    assert Processes(1, 2).shard(5) == BatchShard(3, 5, 5)


def _model_and_data(architecture: str = "mlp", samples: int | None = None):
    return _initial_model(architecture, {"width": 4}), _digits(samples)


# The refusals come before any communication: no process group is needed to see them.
def test_a_batch_size_not_divisible_by_the_world_size_is_bad_input():
    model, data = _model_and_data()
    with pytest.raises(BadInput, match="--batch-size 63 does not split into 2 equal parts"):
        train(model, data, TrainRecipe(epochs=1, batch_size=63), processes=Processes(0, 2, "gloo"))


def test_a_last_batch_smaller_than_the_world_size_is_bad_input():
    model, data = _model_and_data(samples=129)
    with pytest.raises(BadInput, match="last batch holds 1 of the 129 training samples"):
        train(model, data, TrainRecipe(epochs=1, batch_size=64), processes=Processes(0, 2, "gloo"))


def test_certified_training_of_a_batchnorm_network_on_several_processes_is_bad_input():
    model, data = _model_and_data("digits-cnn")
    recipe = TrainRecipe(epochs=1, batch_size=64, adversarial=True, method="ibp", eps=0.1)
    with pytest.raises(BadInput, match="--method ibp on several processes"):
        train(model, data, recipe, processes=Processes(0, 2, "gloo"))


def test_a_command_that_does_not_train_refuses_a_torchrun_launch(monkeypatch, capsys):
    monkeypatch.setenv("RANK", "0")
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("LOCAL_RANK", "0")
    code, err = run_cli(["theory"], capsys)
    assert code == 2
    assert err == [("semirobust theory: error: started by torchrun, but only train and algorithm1 train "
                    "on several processes: run this command once, without torchrun")]


TORCHRUN = Path(sys.executable).with_name("torchrun")
TRAIN_ARGUMENTS = ["--arch", "mlp", "--arch-kwargs", '{"width": 16}', "--dataset", "digits",
                   "--epochs", "1", "--batch-size", "64", "--lr", "0.1", "--seed", "0"]


def _torchrun(arguments: list[str]) -> subprocess.CompletedProcess:
    environment = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK")}
    return subprocess.run(
        [str(TORCHRUN), "--nproc_per_node", str(WORLD), "--master_addr", "127.0.0.1",
         "--master_port", str(_free_port()), "-m", "semirobust.empirical.cli", *arguments],
        env={**environment, "OMP_NUM_THREADS": "1"}, capture_output=True, text=True, check=False,
    )


def test_semirobust_train_under_torchrun_writes_the_single_process_checkpoint(tmp_path, capsys):
    done = _torchrun(["train", *TRAIN_ARGUMENTS, "--out", str(tmp_path / "two")])
    assert done.returncode == 0, done.stderr
    assert done.stdout.count("wrote ") == 1 and "2 processes (gloo)" in done.stdout
    code, _ = run_cli(["train", *TRAIN_ARGUMENTS, "--out", str(tmp_path / "one")], capsys)
    assert code == 0
    two, one = load_file(tmp_path / "two" / "model.safetensors"), load_file(tmp_path / "one" / "model.safetensors")
    assert _max_difference(one, two) <= ATOL
    notes = json.loads((tmp_path / "two" / "config.json").read_text())["notes"]
    assert notes["training_processes"] == {"world_size": 2, "backend": "gloo"}
    recipe_one = json.loads((tmp_path / "one" / "config.json").read_text())["recipe"]
    assert json.loads((tmp_path / "two" / "config.json").read_text())["recipe"] == recipe_one


def test_semirobust_algorithm1_under_torchrun_trains_the_single_process_models(tmp_path):
    from semirobust.empirical.studies.algorithm1 import Algorithm1Config, train_role

    arguments = ["--arch", "mlp", "--arch-kwargs", '{"width": 16}', "--dataset", "digits", "--fb-layers", "2",
                 "--steps", "1", "--eps", "0.1", "--trials", "1", "--epochs", "1", "--train-epochs", "1",
                 "--batch-size", "64", "--lr", "0.1", "--estimator", "gaussian", "--seed", "0"]
    done = _torchrun(["algorithm1", *arguments, "--out", str(tmp_path / "run")])
    assert done.returncode == 0, done.stderr
    results = json.loads((tmp_path / "run" / "results.json").read_text())
    assert results["training_processes"] == {"world_size": 2, "backend": "gloo"}
    config = Algorithm1Config.from_dict(json.loads((tmp_path / "run" / "algorithm1_config.json").read_text()))
    data = load_dataset("digits")
    for role in ("normal", "robust"):
        train_role(config, data, tmp_path / "one" / role, role, device=torch.device("cpu"),
                   progress=False, log=lambda _line: None)
        one = load_file(tmp_path / "one" / role / "model.safetensors")
        two = load_file(tmp_path / "run" / role / "model.safetensors")
        assert _max_difference(one, two) <= ATOL, role
