"""The GPU path agrees with the CPU path (runs only where CUDA is available).

The issue's claim: "a CPU run of the same command gives the same verdicts up to estimator
noise". On a machine with a GPU these tests train a small convolutional network on the
GPU (bfloat16 autocast, channels-last), run ``semirobust check`` on it with
``--device cuda`` and ``--device cpu``, and compare verdicts and numbers; and they check
that the deterministic dependency estimators give the CPU's numbers on the GPU.
"""

from __future__ import annotations

import json

import pytest
import torch

from semirobust.empirical.attacks.evaluation import predict_logits
from semirobust.empirical.cli.main import main
from semirobust.empirical.data import load_dataset
from semirobust.empirical.dependency import dependency_per_layer_pair
from semirobust.empirical.model import ArchitectureSpec, build_model
from semirobust.empirical.model.checkpoint import CheckpointConfig, save_checkpoint
from semirobust.empirical.studies.training import TrainRecipe, train

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
CUDA = torch.device("cuda")


RECIPE = TrainRecipe(epochs=4, batch_size=64, lr=0.05, adversarial=True, eps=0.1, steps=5)


def trained(device: torch.device):
    data = load_dataset("digits", seed=0)
    spec = ArchitectureSpec("digits-cnn", data.input_shape, data.num_classes, data.mean, data.std, {"width": 8})
    torch.manual_seed(0)
    model = build_model(spec)
    train(model, data, RECIPE, device=device, progress=False)
    accuracy = (predict_logits(model, data.x_test, device=device).argmax(dim=1) == data.y_test).double().mean()
    return model, spec, float(accuracy)


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    model, spec, accuracy = trained(CUDA)
    path = tmp_path_factory.mktemp("gpu") / "ckpt"
    save_checkpoint(path, model, CheckpointConfig(spec, "digits", seed=0, recipe=RECIPE.to_dict()))
    return path, accuracy


def test_training_on_the_gpu_with_amp_and_channels_last_matches_the_cpu(checkpoint) -> None:
    _, accuracy_gpu = checkpoint
    _, _, accuracy_cpu = trained(torch.device("cpu"))
    # the same recipe and seed; bfloat16 and the GPU's kernels change the path, not the outcome
    assert accuracy_gpu > 0.3 and abs(accuracy_gpu - accuracy_cpu) < 0.1


def test_check_gives_the_same_verdicts_on_cpu_and_gpu(checkpoint, tmp_path) -> None:
    path, _ = checkpoint
    reports = {}
    for device in ("cpu", "cuda"):
        out = tmp_path / device
        arguments = ["check", "--checkpoint", str(path), "--split", "2", "--out", str(out),
                     "--samples", "200", "--eps", "0.1", "--device", device]
        assert main(arguments) == 0
        reports[device] = json.loads((out / "report.json").read_text())
    cpu, gpu = reports["cpu"], reports["cuda"]
    assert {k: v["status"] for k, v in gpu["verdicts"].items()} == {k: v["status"] for k, v in cpu["verdicts"].items()}
    certified_cpu, attacked_cpu = cpu["measurements"]["gamma_whole"]
    certified_gpu, attacked_gpu = gpu["measurements"]["gamma_whole"]
    # bound propagation runs in float64 on both: the same number up to summation order
    assert certified_gpu["value"] == pytest.approx(certified_cpu["value"], rel=1e-6, abs=1e-6)
    # attacks are estimates: each side's value lies in the other's sampling interval
    assert attacked_cpu["interval"][0] <= attacked_gpu["value"] <= attacked_cpu["interval"][1]


def test_deterministic_estimators_give_the_cpu_numbers_on_the_gpu() -> None:
    generator = torch.Generator().manual_seed(0)
    layers = [torch.randn(600, 6, generator=generator, dtype=torch.float64)]
    for _ in range(3):
        layers.append(torch.relu(layers[-1] @ torch.randn(6, 6, generator=generator, dtype=torch.float64)))
    labels = torch.arange(600) % 3
    for estimator in ("ksg", "gaussian", "edge"):
        cpu = dependency_per_layer_pair(layers, labels, estimator, replicates=20, permutations=2, seed=0)
        gpu = dependency_per_layer_pair([h.to(CUDA) for h in layers], labels.to(CUDA), estimator,
                                        replicates=20, permutations=2, seed=0)
        for a, b in zip(cpu, gpu):
            assert b.rho.value == pytest.approx(a.rho.value, rel=1e-9, abs=1e-12), estimator
            assert b.rho.interval == pytest.approx(a.rho.interval, rel=1e-9, abs=1e-12), estimator
