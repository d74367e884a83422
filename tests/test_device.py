"""Placement of models and batches: the channels-last layout changes memory, not numbers.

CUDA runs convolutional networks channels-last by default; the CPU machine that runs
these tests has no GPU, so the layout is forced here on the CPU and every consumer of a
model is run on both layouts: forward, input gradients, layer activations, training,
interval bounds, Lipschitz bounds, checkpoints.

Tests that backpropagate through NHWC convolutions use PyTorch's native kernels (oneDNN
switched off): torch 2.13.0+cpu's
oneDNN (v3.12) corrupts the heap in the weight gradient of a 1x1 stride-2 NHWC
convolution with fewer than 8 input channels (the ResNet shortcut at width 4) when run on
one thread (oneDNN issue #6035) -- the reason the CPU default stays contiguous.
"""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn
from zoo_sizes import NARROW

from semirobust.empirical.attacks.threat import ThreatModel
from semirobust.empirical.bounds import interval_bounds
from semirobust.empirical.bounds.lipschitz import OperatorNormSettings, lipschitz_upper
from semirobust.empirical.data import load_dataset
from semirobust.empirical.model import ArchitectureSpec, build_model
from semirobust.empirical.model.checkpoint import CheckpointConfig, load_checkpoint, save_checkpoint
from semirobust.empirical.model.stages import layer_activations
from semirobust.empirical.model.zoo import ZOO_ARCHITECTURES
from semirobust.empirical.runtime.device import place_batch, place_model, wants_channels_last
from semirobust.empirical.studies.training import TrainRecipe, train

CPU = torch.device("cpu")


@pytest.fixture
def native_cpu_kernels():
    """oneDNN off for tests that take weight gradients of NHWC convolutions (see above)."""
    enabled = torch.backends.mkldnn.enabled
    torch.backends.mkldnn.enabled = False
    yield
    torch.backends.mkldnn.enabled = enabled


def pair(name: str, kwargs: dict, shape=(3, 32, 32)) -> tuple[nn.Module, nn.Module]:
    """A model in eval mode with random BatchNorm statistics, and its channels-last copy."""
    torch.manual_seed(0)
    model = build_model(ArchitectureSpec(name, shape, 10, (0.5,) * shape[0], (0.25,) * shape[0], kwargs))
    for module in model.modules():
        if isinstance(module, nn.BatchNorm2d):
            module.running_mean.uniform_(-0.5, 0.5)
            module.running_var.uniform_(0.5, 2.0)
    model.eval()
    nhwc = place_model(copy.deepcopy(model), CPU, channels_last=True)
    return model, nhwc


def is_nhwc(model: nn.Module) -> bool:
    weights = [p for p in model.parameters() if p.dim() == 4]
    return bool(weights) and all(p.is_contiguous(memory_format=torch.channels_last) for p in weights)


@pytest.mark.usefixtures("native_cpu_kernels")
@pytest.mark.parametrize("name", [*ZOO_ARCHITECTURES, "digits-cnn"])
def test_channels_last_gives_the_same_logits_and_input_gradients(name: str) -> None:
    shape = (1, 8, 8) if name == "digits-cnn" else (3, 32, 32)
    model, nhwc = pair(name, NARROW.get(name, {"width": 4}), shape)
    assert is_nhwc(nhwc) and not is_nhwc(model)
    x = torch.rand((4, *shape), generator=torch.Generator().manual_seed(1))
    outputs = []
    for net, batch in ((model, x), (nhwc, place_batch(x, CPU, channels_last=True))):
        batch = batch.clone().requires_grad_(True)
        logits = net(batch)
        logits.logsumexp(dim=1).sum().backward()
        outputs.append((logits.detach(), batch.grad))
    (logits, grad), (logits_nhwc, grad_nhwc) = outputs
    torch.testing.assert_close(logits_nhwc, logits, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(grad_nhwc, grad, rtol=1e-4, atol=1e-6)


def test_activations_bounds_and_lipschitz_agree_across_layouts() -> None:
    model, nhwc = pair("resnet18", {"width": 4}, (3, 16, 16))
    x = torch.rand(3, 3, 16, 16, generator=torch.Generator().manual_seed(2))
    for h, h_nhwc in zip(layer_activations(model, x)[0], layer_activations(nhwc, x)[0]):
        torch.testing.assert_close(h_nhwc, h, rtol=1e-4, atol=1e-5)
    threat = ThreatModel("linf", 0.01)
    for bound, bound_nhwc in zip(interval_bounds(model, x, threat), interval_bounds(nhwc, x, threat)):
        torch.testing.assert_close(bound_nhwc, bound, rtol=1e-9, atol=1e-9)
    settings = OperatorNormSettings()
    assert lipschitz_upper(nhwc, (3, 16, 16), settings).product == pytest.approx(
        lipschitz_upper(model, (3, 16, 16), settings).product, rel=1e-6
    )


@pytest.mark.usefixtures("native_cpu_kernels")
def test_a_channels_last_model_trains_and_round_trips_through_a_checkpoint(tmp_path) -> None:
    data = load_dataset("digits", seed=0)
    spec = ArchitectureSpec("digits-cnn", data.input_shape, data.num_classes, data.mean, data.std, {"width": 4})
    runs = []
    for channels_last in (False, True):
        torch.manual_seed(0)
        model = place_model(build_model(spec), CPU, channels_last=channels_last)
        train(model, data, TrainRecipe(epochs=1, batch_size=128, lr=0.05), device=CPU, seed=0)
        runs.append(model)
    contiguous, nhwc = runs
    assert is_nhwc(nhwc)
    for p, p_nhwc in zip(contiguous.parameters(), nhwc.parameters()):
        torch.testing.assert_close(p_nhwc, p, rtol=1e-3, atol=1e-4)
    path = save_checkpoint(tmp_path / "ckpt", nhwc, CheckpointConfig(spec, "digits", 0))
    reloaded, _ = load_checkpoint(path, CPU)
    assert not is_nhwc(reloaded)  # the CPU default is contiguous
    for p, p_nhwc in zip(reloaded.parameters(), nhwc.parameters()):
        assert torch.equal(p, p_nhwc)


def test_channels_last_is_the_cuda_default_for_convolutional_networks_only() -> None:
    cuda = torch.device("cuda")
    conv = build_model(ArchitectureSpec("digits-cnn", (1, 8, 8), 10, (0.5,), (0.25,), {"width": 4}))
    mlp = build_model(ArchitectureSpec("mlp", (32,), 10, (0.0,), (1.0,), {"depth": 2, "width": 8}))
    assert wants_channels_last(conv, cuda) and not wants_channels_last(mlp, cuda)
    assert not wants_channels_last(conv, CPU)
    assert not is_nhwc(place_model(conv, CPU))
    assert place_batch(torch.zeros(2, 8), CPU, channels_last=True).shape == (2, 8)
