"""Every zoo architecture trains for one short epoch on a generated CIFAR-10-format dataset.

The dataset is written in the exact on-disk format (Python 2 pickled batches), read back
through the ``cifar10`` loader, augmented with the registered crop-and-flip, and fed to
the project's training loop; each trained model is then saved and reloaded as a
checkpoint. Widths are narrow so the whole file runs in seconds on two CPU cores.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from zoo_sizes import NARROW

from semirobust.empirical.data import Dataset, load_dataset
from semirobust.empirical.data.augment import augmentation_for
from semirobust.empirical.data.disk.cifar import CIFAR10
from semirobust.empirical.data.disk.writers import write_cifar
from semirobust.empirical.model import ArchitectureSpec, build_model
from semirobust.empirical.model.checkpoint import CheckpointConfig, load_checkpoint, save_checkpoint
from semirobust.empirical.model.stages import count_weight_layers, split_network, valid_splits
from semirobust.empirical.model.zoo import ZOO_ARCHITECTURES
from semirobust.empirical.studies.training import TrainRecipe, train


@pytest.fixture(scope="module")
def cifar10(tmp_path_factory) -> Dataset:
    rng = np.random.default_rng(0)
    y_train, y_test = rng.integers(0, 10, 40), rng.integers(0, 10, 16)
    directory = write_cifar(
        tmp_path_factory.mktemp("cifar"), CIFAR10,
        x_train=rng.integers(0, 256, (40, 3, 32, 32), dtype=np.uint8), y_train=y_train,
        x_test=rng.integers(0, 256, (16, 3, 32, 32), dtype=np.uint8), y_test=y_test,
    )
    return load_dataset("cifar10", root=str(directory))


def spec_for(name: str, dataset: Dataset) -> ArchitectureSpec:
    return ArchitectureSpec(name, dataset.input_shape, dataset.num_classes, dataset.mean, dataset.std, NARROW[name])


@pytest.mark.parametrize("name", ZOO_ARCHITECTURES)
def test_one_short_epoch_on_cifar10_format_data(name: str, cifar10: Dataset, tmp_path: Path) -> None:
    torch.manual_seed(0)
    spec = spec_for(name, cifar10)
    model = build_model(spec)
    before = [p.detach().clone() for p in model.parameters()]
    recipe = TrainRecipe(epochs=1, batch_size=16, lr=0.01, amp=False)
    history = train(model, cifar10, recipe, seed=0, augment=augmentation_for("cifar10"), progress=False)

    assert len(history) == 1 and np.isfinite(history[0]["loss"])
    assert all(not torch.equal(b, p) for b, p in zip(before, model.parameters()) if p.requires_grad)
    with torch.no_grad():
        logits = model(cifar10.x_test)
    assert logits.shape == (16, 10) and torch.isfinite(logits).all()

    save_checkpoint(tmp_path / name, model, CheckpointConfig(spec, "cifar10", seed=0, recipe=recipe.to_dict()))
    reloaded, config = load_checkpoint(tmp_path / name)
    assert config.architecture == spec
    with torch.no_grad():
        torch.testing.assert_close(reloaded(cifar10.x_test), logits)


@pytest.mark.parametrize("name", ["resnet18", "vit"])
def test_adversarial_finetuning_of_f_b_keeps_f_a_frozen(name: str, cifar10: Dataset) -> None:
    torch.manual_seed(0)
    model = build_model(spec_for(name, cifar10))
    a = valid_splits(model)[len(valid_splits(model)) // 2]
    frozen_stages = len(split_network(model, a).f_a)
    f_a_before = {k: v.clone() for k, v in model[:frozen_stages].state_dict().items()}
    recipe = TrainRecipe(epochs=1, batch_size=20, adversarial=True, eps=8 / 255, steps=2, amp=False)
    history = train(model, cifar10, recipe, seed=1, frozen_stages=frozen_stages, progress=False,
                    augment=augmentation_for("cifar10"))
    assert np.isfinite(history[0]["loss"]) and count_weight_layers(model[:frozen_stages]) == a
    for key, value in model[:frozen_stages].state_dict().items():
        assert torch.equal(value, f_a_before[key]), key
