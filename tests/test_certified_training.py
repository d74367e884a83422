"""Certified training: the schedules, the IBP initialisation, the differentiable training
bounds (equal to the certified ones in eval mode, sound in train mode, gradients to every
weight), the recipe stored with the checkpoint, and a short run that certifies."""

from __future__ import annotations

import math

import pytest
import torch
from bounds_networks import inputs, random_cnn, random_mlp, sample_threat_set
from torch import nn

from semirobust.empirical.attacks.objectives import multiclass_margin
from semirobust.empirical.attacks.threat import ThreatModel
from semirobust.empirical.bounds import certified_margin_lower
from semirobust.empirical.bounds.training_bounds import clean_pass, margin_lower_bounds
from semirobust.empirical.studies.certified_training import (
    ibp_initialise,
    schedule_at,
)
from semirobust.empirical.studies.training import TrainRecipe
from semirobust.errors import BadInput


def _recipe(**changes) -> TrainRecipe:
    base = {"adversarial": True, "method": "crown-ibp", "eps": 0.2, "warmup": 0.2, "ramp": 0.4,
            "kappa_start": 1.0, "kappa_end": 0.5, "beta_start": 1.0, "beta_end": 0.0}
    return TrainRecipe(**{**base, **changes})


def test_schedule_warms_up_then_ramps_linearly_then_holds():
    recipe = _recipe()
    warm = schedule_at(recipe, 0.1)
    assert (warm.eps, warm.kappa, warm.beta) == (0.0, 1.0, 1.0)
    middle = schedule_at(recipe, 0.4)  # half-way through the ramp
    assert middle.eps == pytest.approx(0.1) and middle.kappa == pytest.approx(0.75)
    assert middle.beta == pytest.approx(0.5)
    for progress in (0.6, 0.9, 1.0):
        end = schedule_at(recipe, progress)
        assert end.eps == pytest.approx(0.2) and end.kappa == pytest.approx(0.5)
        assert end.beta == pytest.approx(0.0)


def test_bad_schedules_are_refused():
    with pytest.raises(BadInput, match="warmup"):
        _recipe(warmup=0.7, ramp=0.5)
    with pytest.raises(BadInput, match="kappa_end"):
        _recipe(kappa_end=1.5)
    with pytest.raises(BadInput, match="optimizer"):
        _recipe(optimizer="lbfgs")


def test_ibp_initialisation_has_the_stated_spread():
    model = nn.Sequential(nn.Conv2d(3, 64, 3), nn.Flatten(), nn.Linear(400, 300))
    ibp_initialise(model, torch.Generator().manual_seed(0))
    for layer, fan_in in ((model[0], 27), (model[2], 400)):
        sigma = math.sqrt(2 * math.pi) / fan_in
        assert layer.weight.std().item() == pytest.approx(sigma, rel=0.05)
        assert layer.bias.abs().max().item() == 0.0


def test_recipe_records_the_certified_choices_and_round_trips():
    recipe = _recipe(initialisation="ibp", optimizer="adam")
    data = recipe.to_dict()
    stated = data["certified_training"]
    assert "clean batch" in stated["batch_norm"] and "Shi" in stated["initialisation"]
    assert "0.5" in stated["kappa"] and "0.2" in stated["eps_schedule"]
    assert TrainRecipe.from_dict(data) == recipe
    assert "certified_training" not in TrainRecipe(adversarial=True, method="pgd").to_dict()


@pytest.mark.parametrize("build, shape", [(random_mlp, (6,)), (random_cnn, (1, 6, 6))])
def test_training_bounds_in_eval_mode_are_the_certified_ibp_bounds(build, shape):
    model = build(2).double().eval()
    x, y = inputs(shape, 6, 2).double(), torch.arange(6) % 3
    threat = ThreatModel("linf", 0.05)
    _, layers = clean_pass(model, x)
    lower = margin_lower_bounds(layers, x, y, threat, "ibp")
    lower = lower.masked_fill(nn.functional.one_hot(y, 3).bool(), float("inf")).min(dim=1).values
    certified = certified_margin_lower(model, x, y, threat, "ibp")
    torch.testing.assert_close(lower.detach(), certified, rtol=0, atol=1e-10)


@pytest.mark.parametrize("method", ["ibp", "crown-ibp"])
def test_training_bounds_in_train_mode_hold_for_the_batch_statistics_network(method):
    """In train mode the bounds are of the network whose BatchNorms normalise with this
    batch's clean statistics: below its margins at sampled points, exact at eps 0, and
    differentiable with respect to every weight."""
    model = random_cnn(4).double().train()
    x, y = inputs((1, 6, 6), 8, 4).double(), torch.arange(8) % 3
    threat = ThreatModel("linf", 0.05)
    logits, layers = clean_pass(model, x)
    lower = margin_lower_bounds(layers, x, y, threat, method, beta=0.5)
    fixed = nn.Sequential(*layers)
    with torch.no_grad():
        torch.testing.assert_close(fixed(x), logits, rtol=0, atol=1e-10)
        for point in sample_threat_set(x, threat, 32, 4):
            z = fixed(point)
            terms = z.gather(1, y.view(-1, 1)) - z
            assert (lower <= terms + 1e-10).all()
    at_zero = margin_lower_bounds(layers, x, y, ThreatModel("linf", 0.0), method)
    clean_terms = logits.gather(1, y.view(-1, 1)) - logits
    torch.testing.assert_close(at_zero, clean_terms, rtol=0, atol=1e-9)
    lower.sum().backward()
    for name, parameter in model.named_parameters():
        assert parameter.grad is not None and parameter.grad.abs().sum() > 0, name


def test_a_training_dropout_is_the_identity_for_the_bounds():
    """The clean pass drops (train mode); the bounds are of the network without dropout,
    so they hold at its sampled points and are exact for it at eps 0."""
    model = random_mlp(3).double().train()
    x, y = inputs((6,), 8, 3).double(), torch.arange(8) % 3
    _, layers = clean_pass(model, x)
    assert not any(isinstance(layer, nn.Dropout) for layer in layers)
    undropped = nn.Sequential(*layers)
    threat = ThreatModel("linf", 0.05)
    lower = margin_lower_bounds(layers, x, y, threat, "ibp")
    with torch.no_grad():
        for point in sample_threat_set(x, threat, 16, 3):
            z = undropped(point)
            assert (lower <= z.gather(1, y.view(-1, 1)) - z + 1e-10).all()
        z = undropped(x)
        at_zero = margin_lower_bounds(layers, x, y, ThreatModel("linf", 0.0), "ibp")
        torch.testing.assert_close(at_zero, z.gather(1, y.view(-1, 1)) - z, rtol=0, atol=1e-9)


def test_clean_pass_margins_match_the_model():
    model = random_mlp(1).double().eval()
    x, y = inputs((6,), 4, 1).double(), torch.arange(4) % 3
    logits, _ = clean_pass(model, x)
    torch.testing.assert_close(multiclass_margin(logits, y), multiclass_margin(model(x), y))


def test_train_command_with_a_certified_method_stores_its_recipe(tmp_path):
    """``semirobust train --method ibp --warmup 0.25`` (4 epochs of a small MLP on digits):
    the stored recipe is adversarial, IBP-initialised, with the schedules stated, and the model's IBP
    certified accuracy at eps 0.02 is above chance (10 classes)."""
    import json

    from semirobust.empirical.cli.main import main
    from semirobust.empirical.data import load_dataset
    from semirobust.empirical.model.checkpoint import load_checkpoint

    out = tmp_path / "ckpt"
    code = main(["train", "--arch", "mlp", "--arch-kwargs", '{"depth": 1, "width": 32}',
                 "--dataset", "digits", "--method", "ibp", "--eps", "0.02", "--epochs", "4",
                 "--lr", "0.003", "--optimizer", "adam", "--warmup", "0.25", "--out", str(out),
                 "--device", "cpu"])
    assert code == 0
    recipe = json.loads((out / "config.json").read_text())["recipe"]
    assert recipe["adversarial"] and recipe["method"] == "ibp"
    assert recipe["initialisation"] == "ibp" and recipe["milestones"] == [0.8, 0.9]
    assert "certified_training" in recipe and recipe["warmup"] == 0.25 and recipe["ramp"] == 0.5
    assert "0.25" in recipe["certified_training"]["eps_schedule"]
    model, _ = load_checkpoint(out)
    data = load_dataset("digits", seed=0)
    bound = certified_margin_lower(model, data.x_test[:200], data.y_test[:200],
                                   ThreatModel("linf", 0.02), "ibp")
    assert float((bound > 0).double().mean()) > 0.3
