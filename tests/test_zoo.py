"""The model zoo: paper sizes and counts, stage structure, activations, splits, training steps."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn
from zoo_sizes import NARROW

from semirobust.empirical.model import ArchitectureSpec, Normalize, architecture_names, build_model
from semirobust.empirical.model.stages import (
    WEIGHT_LAYER_TYPES,
    count_weight_layers,
    layer_activations,
    split_network,
    stage_weight_counts,
    valid_splits,
    weight_layers,
)
from semirobust.empirical.model.zoo import ZOO_ARCHITECTURES
from semirobust.empirical.model.zoo.resnet import BasicBlock, Bottleneck
from semirobust.empirical.model.zoo.splits import paper_specs, split_table_markdown, summarize
from semirobust.empirical.model.zoo.vit import TransformerBlock
from semirobust.empirical.model.zoo.wide_resnet import PreActBlock
from semirobust.errors import BadInput

RESIDUAL_BLOCKS = (BasicBlock, Bottleneck, PreActBlock, TransformerBlock)


def spec(name: str, kwargs: dict | None = None, shape=(3, 32, 32), classes: int = 10) -> ArchitectureSpec:
    return ArchitectureSpec(name, shape, classes, (0.5,) * 3, (0.25,) * 3, dict(kwargs or {}))


def narrow_model(name: str, shape=(3, 32, 32), classes: int = 10) -> nn.Sequential:
    torch.manual_seed(0)
    return build_model(spec(name, NARROW[name], shape, classes))


def meta_model(name: str, kwargs: dict | None = None) -> nn.Sequential:
    with torch.device("meta"):
        return build_model(spec(name, kwargs))


def test_every_zoo_architecture_is_registered() -> None:
    assert set(ZOO_ARCHITECTURES) <= set(architecture_names())
    assert set(NARROW) == set(ZOO_ARCHITECTURES)


# Weight layers as the paper names them, and the published parameter counts of the CIFAR
# variants (10 classes): ResNet-18 11.17M, ResNet-50 23.52M, WRN-34-10 46.16M (TRADES),
# AlexNet 2.47M (bearpaw/pytorch-classification).
@pytest.mark.parametrize(
    ("name", "kwargs", "layers", "parameters"),
    [
        ("alexnet", {}, 6, 2_472_266),
        ("vgg16-bn", {}, 16, None),
        ("resnet18", {}, 18, 11_173_962),
        ("resnet50", {}, 50, 23_520_842),
        ("wrn-34-10", {}, 32, 46_160_474),
        ("vit", {}, 8, None),
        ("vit", {"depth": 12, "width": 768, "heads": 12, "mlp_width": 3072}, 14, None),
    ],
)
def test_paper_sizes_have_the_paper_layer_counts(name, kwargs, layers, parameters) -> None:
    model = meta_model(name, kwargs)
    assert count_weight_layers(model) == layers
    if parameters is not None:
        assert sum(p.numel() for p in model.parameters()) == parameters


def test_vgg16_bn_parameter_count_matches_its_closed_form() -> None:
    convs = [(3, 64), (64, 64), (64, 128), (128, 128), (128, 256), (256, 256), (256, 256),
             (256, 512)] + [(512, 512)] * 5
    conv_parameters = sum(9 * c_in * c_out + c_out + 2 * c_out for c_in, c_out in convs)
    linear_parameters = (512 * 4096 + 4096) + (4096 * 4096 + 4096) + (4096 * 10 + 10)
    model = meta_model("vgg16-bn")
    assert sum(p.numel() for p in model.parameters()) == conv_parameters + linear_parameters


@pytest.mark.parametrize(("name", "projections"), [("resnet18", 3), ("resnet50", 4), ("wrn-34-10", 3)])
def test_shortcut_projections_are_weights_but_not_counted(name, projections) -> None:
    model = meta_model(name)
    every_weight_module = [m for m in model.modules() if isinstance(m, WEIGHT_LAYER_TYPES)]
    uncounted = [m for m in every_weight_module if m not in weight_layers(model)]
    assert len(uncounted) == projections
    assert all(isinstance(m, nn.Conv2d) and m.kernel_size == (1, 1) for m in uncounted)


def test_vit_counts_one_layer_per_transformer_block() -> None:
    model = meta_model("vit")
    blocks = [stage for stage in model if isinstance(stage, TransformerBlock)]
    assert len(blocks) == 6
    assert all(weight_layers(block) == [block.mlp_out] for block in blocks)
    assert stage_weight_counts(model) == [0] + [1] * 8


@pytest.mark.parametrize("name", ZOO_ARCHITECTURES)
def test_stages_are_one_weight_layer_or_one_whole_block(name) -> None:
    model = meta_model(name)
    assert isinstance(model[0], Normalize)
    for stage, count in zip(model[1:], stage_weight_counts(model)[1:]):
        assert count == 1 or isinstance(stage, RESIDUAL_BLOCKS), type(stage).__name__


@pytest.mark.parametrize("name", ZOO_ARCHITECTURES)
def test_layer_activations_cover_every_weight_layer(name) -> None:
    model = narrow_model(name).eval()
    x = torch.rand(3, 3, 32, 32)
    activations, logits = layer_activations(model, x)
    assert len(activations) == count_weight_layers(model)
    assert all(h.shape[0] == 3 and h.dim() == 2 for h in activations)
    assert torch.equal(logits, model(x))
    assert torch.equal(activations[-1], logits)


@pytest.mark.parametrize("name", ["resnet18", "resnet50", "wrn-34-10"])
def test_activations_inside_a_residual_block_are_its_conv_outputs(name) -> None:
    model = narrow_model(name).eval()
    x = torch.rand(2, 3, 32, 32)
    activations, _ = layer_activations(model, x)
    block_index = next(i for i, s in enumerate(model) if isinstance(s, RESIDUAL_BLOCKS))
    first_layer = sum(stage_weight_counts(model)[:block_index])
    block = model[block_index]
    with torch.no_grad():
        block_input = model[:block_index](x)
        first_conv = block.conv1(block_input if name != "wrn-34-10" else torch.relu(block.bn1(block_input)))
    torch.testing.assert_close(activations[first_layer], first_conv.flatten(start_dim=1))


def test_vit_activations_are_the_blocks_output_tokens() -> None:
    model = narrow_model("vit").eval()
    x = torch.rand(2, 3, 32, 32)
    activations, _ = layer_activations(model, x)
    with torch.no_grad():
        tokens = model[:3](x)
    assert tokens.shape == (2, 1 + 64, 16)
    torch.testing.assert_close(activations[1], tokens.flatten(start_dim=1))


@pytest.mark.parametrize("name", ZOO_ARCHITECTURES)
def test_every_valid_split_recomposes_to_the_whole(name) -> None:
    model = narrow_model(name).eval()
    x = torch.rand(2, 3, 32, 32)
    with torch.no_grad():
        whole = model(x)
        for a in valid_splits(model):
            split = split_network(model, a)
            assert count_weight_layers(split.f_a) == a
            torch.testing.assert_close(split.f_b(split.f_a(x)), whole)


def test_a_split_inside_a_residual_block_is_refused() -> None:
    model = meta_model("resnet18")
    with pytest.raises(BadInput, match="would cut stage"):
        split_network(model, 18 - 4)


@pytest.mark.parametrize("name", ZOO_ARCHITECTURES)
def test_tinyimagenet_shape_gives_200_logits(name) -> None:
    model = narrow_model(name, shape=(3, 64, 64), classes=200).eval()
    with torch.no_grad():
        assert model(torch.rand(2, 3, 64, 64)).shape == (2, 200)


@pytest.mark.parametrize("name", ZOO_ARCHITECTURES)
def test_a_few_training_steps_fit_a_fixed_batch(name) -> None:
    model = narrow_model(name).train()
    generator = torch.Generator().manual_seed(1)
    x = torch.rand(16, 3, 32, 32, generator=generator)
    y = torch.randint(0, 10, (16,), generator=generator)
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(15):
        optimizer.zero_grad()
        loss = nn.functional.cross_entropy(model(x), y)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)
    assert losses[-1] < 0.8 * losses[0]


@pytest.mark.parametrize(
    ("name", "kwargs", "message"),
    [
        ("resnet18", {"depth": 3}, "unknown option"),
        ("vgg16-bn", {"width": 0}, "width=0 must be an integer >= 1"),
        ("vgg16-bn", {"dropout": 1.5}, r"dropout=1.5 must be a number in \[0, 1\)"),
        ("alexnet", {"width": True}, "must be an integer"),
        ("vit", {"patch": 5}, "patch=5 must divide"),
        ("vit", {"width": 10, "heads": 3}, "heads=3 must divide width=10"),
        ("wrn-34-10", {"depth": 30}, "depth=30 must be 6n \\+ 4"),
    ],
)
def test_bad_options_are_refused_with_a_named_reason(name, kwargs, message) -> None:
    with pytest.raises(BadInput, match=message):
        meta_model(name, kwargs)


@pytest.mark.parametrize("name", ["alexnet", "vgg16-bn"])
def test_images_too_small_for_the_pooling_are_refused(name) -> None:
    with pytest.raises(BadInput, match="both sides >= 32"):
        build_model(spec(name, NARROW[name], shape=(1, 8, 8)))


def test_splits_of_the_paper_sizes() -> None:
    summaries = {s.spec.name + str(s.spec.kwargs.get("depth", "")): s for s in map(summarize, paper_specs())}
    assert summaries["resnet18"].valid_fb_layers == tuple(range(1, 18, 2))
    assert summaries["resnet18"].nearest_valid_fb(4) == (3, 5)
    assert summaries["resnet50"].valid_fb_layers == tuple(range(1, 50, 3))
    assert summaries["resnet50"].nearest_valid_fb(4) == (4,)
    assert summaries["resnet50"].nearest_valid_fb(12) == (10, 13)
    assert summaries["wrn-34-10"].valid_fb_layers == tuple(range(1, 32, 2))
    assert summaries["vgg16-bn"].valid_fb_layers == tuple(range(1, 16))
    assert summaries["vit12"].valid_fb_layers == tuple(range(1, 14))


def test_docs_table_is_the_generated_one() -> None:
    docs = Path(__file__).resolve().parents[1] / "docs" / "zoo.md"
    table = split_table_markdown([summarize(s) for s in paper_specs()])
    assert table in docs.read_text(), (
        "docs/zoo.md is stale: regenerate with python -m semirobust.empirical.model.zoo.splits"
    )
