"""One way to open a checkpoint and its data (semirobust.empirical.cli.checkpoint_input),
used by every command that takes ``--checkpoint``: the dataset draw follows the
checkpoint's recorded seed (``--seed`` drives attacks and estimators only), the data's input
shape is checked against the model's, and ``--data-root`` reaches on-disk datasets."""

import argparse
import json

import numpy as np
import pytest
import torch
from cli_runner import run_cli
from torch import nn

from semirobust.empirical.cli.checkpoint_input import open_checkpoint_and_data
from semirobust.empirical.cli.commands import check as check_command
from semirobust.empirical.cli.main import main
from semirobust.empirical.data import load_dataset
from semirobust.empirical.data.disk.cifar import CIFAR10
from semirobust.empirical.data.disk.writers import write_cifar
from semirobust.empirical.model import (
    ArchitectureSpec,
    build_model,
    register_architecture,
    registry,
)
from semirobust.empirical.model.checkpoint import CheckpointConfig, save_checkpoint
from semirobust.empirical.model.normalize import Normalize

# The checkpoint's seed is neither of the --seed values the tests pass, so a command that
# drew the data with --seed would draw another set than the checkpoint's.
CHECKPOINT_SEED = 7



@pytest.fixture(scope="module")
def mixture_checkpoint(tmp_path_factory):
    data = load_dataset("gaussian-mixture", seed=CHECKPOINT_SEED)
    spec = ArchitectureSpec("mlp", data.input_shape, data.num_classes, data.mean, data.std, {"depth": 3, "width": 8})
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("ckpt") / "mixture"
    return save_checkpoint(path, build_model(spec), CheckpointConfig(spec, "gaussian-mixture", seed=CHECKPOINT_SEED))


def namespace(checkpoint, seed: int, data_root=None) -> argparse.Namespace:
    return argparse.Namespace(checkpoint=str(checkpoint), device="cpu", data_root=data_root, seed=seed)


def test_the_dataset_draw_follows_the_checkpoints_seed_not_the_command_seed(mixture_checkpoint):
    own = load_dataset("gaussian-mixture", seed=CHECKPOINT_SEED)
    other = load_dataset("gaussian-mixture", seed=3)
    assert not torch.equal(own.x_test, other.x_test)  # the seed does change the draw
    for seed in (0, 3):
        opened = open_checkpoint_and_data(namespace(mixture_checkpoint, seed))
        assert torch.equal(opened.dataset.x_test, own.x_test)
        assert torch.equal(opened.dataset.y_test, own.y_test)
        assert opened.input_shape == own.input_shape
        assert opened.record()["dataset_seed"] == CHECKPOINT_SEED


def test_check_with_seed_3_and_seed_0_evaluates_the_same_test_inputs(mixture_checkpoint, tmp_path, monkeypatch):
    """The inputs ``check`` hands to the study, recorded at the call (the study itself is
    stopped there: what is measured on the inputs is not what this test is about)."""
    seen = {}

    class Stop(Exception):
        pass

    def recording_run_check(model, x, y, settings, *, device, fit=None):
        seen[settings.attack.seed] = (x.clone(), y.clone())
        raise Stop

    monkeypatch.setattr(check_command, "run_check", recording_run_check)
    for seed in (3, 0):
        with pytest.raises(Stop):
            main(["check", "--checkpoint", str(mixture_checkpoint), "--split", "1", "--samples", "50",
                  "--seed", str(seed), "--device", "cpu", "--out", str(tmp_path / f"check{seed}")])
    assert set(seen) == {0, 3}
    assert torch.equal(seen[0][0], seen[3][0]) and torch.equal(seen[0][1], seen[3][1])
    own = load_dataset("gaussian-mixture", seed=CHECKPOINT_SEED)
    assert torch.equal(seen[0][0], own.x_test)


@pytest.fixture(scope="module")
def cifar_checkpoint(tmp_path_factory):
    """A CIFAR-10-format folder of 40 training and 12 test images, and an untrained MLP
    checkpoint for cifar10."""
    rng = np.random.default_rng(0)
    parent = tmp_path_factory.mktemp("cifar")
    write_cifar(parent, CIFAR10,
                x_train=rng.integers(0, 256, (40, 3, 32, 32), dtype=np.uint8), y_train=np.arange(40) % 10,
                x_test=rng.integers(0, 256, (12, 3, 32, 32), dtype=np.uint8), y_test=np.arange(12) % 10)
    data = load_dataset("cifar10", root=str(parent))
    spec = ArchitectureSpec("mlp", data.input_shape, 10, data.mean, data.std, {"depth": 2, "width": 8})
    torch.manual_seed(0)
    path = save_checkpoint(tmp_path_factory.mktemp("ckpt") / "cifar", build_model(spec),
                           CheckpointConfig(spec, "cifar10", seed=0))
    return path, parent


def test_lipschitz_reads_a_cifar_format_folder_through_data_root(cifar_checkpoint, tmp_path, capsys):
    checkpoint, root = cifar_checkpoint
    out = tmp_path / "lip.json"
    code, err = run_cli(["lipschitz", "--checkpoint", str(checkpoint), "--data-root", str(root), "--samples", "6",
                         "--split", "1", "--device", "cpu", "--json", str(out)], capsys)
    assert (code, err) == (0, [])
    result = json.loads(out.read_text())
    assert result["dataset"] == "cifar10"
    assert 0 < result["local_lower"]["value"] <= result["whole"]["value"] * (1 + 1e-9)
    assert result["upper_at_least_local_lower"] is True


def test_lipschitz_without_data_root_on_a_cifar_checkpoint_is_one_line(cifar_checkpoint, tmp_path, capsys):
    checkpoint, _ = cifar_checkpoint
    code, err = run_cli(["lipschitz", "--checkpoint", str(checkpoint), "--device", "cpu",
                         "--json", str(tmp_path / "lip.json")], capsys)
    assert code == 2 and len(err) == 1 and "cifar10" in err[0]
    assert not (tmp_path / "lip.json").exists()


def pooled(spec: ArchitectureSpec) -> nn.Sequential:
    """Average pooling then one linear layer: weights independent of the image size, so a
    config.json with another input shape still loads its weights."""
    return nn.Sequential(Normalize(spec.mean, spec.std),
                         nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(spec.input_shape[0], spec.num_classes)))


@pytest.fixture(scope="module")
def misshapen_checkpoint(tmp_path_factory):
    """A digits checkpoint whose config records 4x4 inputs (digits are 8x8); its
    architecture is registered for this module's tests only (other tests list the registry)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(registry, "_ARCHITECTURES", dict(registry._ARCHITECTURES))
        register_architecture("test-pooled-linear", pooled)
        spec = ArchitectureSpec("test-pooled-linear", (1, 4, 4), 10, (0.3,), (0.4,))
        torch.manual_seed(0)
        yield save_checkpoint(tmp_path_factory.mktemp("ckpt") / "pooled", build_model(spec),
                              CheckpointConfig(spec, "digits", seed=0))


@pytest.mark.parametrize("command, extra", [
    ("attack", ["--attack", "pgd", "--json"]),
    ("rho", ["--split", "1", "--json"]),
    ("lipschitz", ["--json"]),
    ("s1", ["--split", "1", "--json"]),
    ("check", ["--split", "1", "--out"]),
])
def test_every_checkpoint_command_checks_the_datas_input_shape(command, extra, misshapen_checkpoint, tmp_path, capsys):
    out = tmp_path / "out"
    code, err = run_cli([command, "--checkpoint", str(misshapen_checkpoint), "--device", "cpu", *extra, str(out)],
                        capsys)
    line = (f"semirobust {command}: error: dataset 'digits' has inputs of shape (1, 8, 8), "
            f"but the checkpoint's model expects (1, 4, 4)")
    assert (code, err) == (2, [line])
    assert not out.exists()
