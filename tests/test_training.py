"""Training: the frozen first part stays bit-identical; a normal run learns."""

import torch

from semirobust.empirical.attacks import PGD
from semirobust.empirical.attacks.evaluation import evaluate_attack
from semirobust.empirical.attacks.threat import ThreatModel
from semirobust.empirical.data import load_dataset
from semirobust.empirical.model import ArchitectureSpec, build_model
from semirobust.empirical.model.stages import split_stage_index
from semirobust.empirical.studies.training import TrainRecipe, train


def test_frozen_first_part_is_bit_identical_after_adversarial_finetuning():
    data = load_dataset("digits")
    spec = ArchitectureSpec("digits-cnn", data.input_shape, 10, data.mean, data.std, {"width": 4})
    torch.manual_seed(0)
    model = build_model(spec)
    # one normal epoch first so that BatchNorm statistics are not at their initial values
    train(model, data, TrainRecipe(epochs=1, lr=0.05), seed=0, progress=False)
    boundary = split_stage_index(model, 4)
    before = {k: v.clone() for k, v in model[:boundary].state_dict().items()}
    after_b_before = {k: v.clone() for k, v in model[boundary:].state_dict().items()}
    recipe = TrainRecipe(epochs=1, lr=0.05, adversarial=True, eps=0.1, steps=2)
    train(model, data, recipe, seed=1, frozen_stages=boundary, progress=False)
    after = model[:boundary].state_dict()
    assert any("running_mean" in k for k in before), "the test needs BatchNorm in f_a"
    for key, value in before.items():
        assert torch.equal(value, after[key]), f"frozen f_a changed: {key}"
    changed = [k for k, v in model[boundary:].state_dict().items() if not torch.equal(v, after_b_before[k])]
    assert changed, "f_b did not train"


def test_normal_training_beats_chance_clearly_on_digits():
    data = load_dataset("digits")
    spec = ArchitectureSpec("digits-cnn", data.input_shape, 10, data.mean, data.std, {"width": 8})
    torch.manual_seed(0)
    model = build_model(spec)
    history = train(model, data, TrainRecipe(epochs=4, lr=0.05), seed=0, progress=False)
    assert history[-1]["train_accuracy"] > 0.6
    assert history[-1]["loss"] < history[0]["loss"]


def test_training_is_deterministic_for_a_seed():
    data = load_dataset("digits")
    spec = ArchitectureSpec("mlp", data.input_shape, 10, data.mean, data.std, {"width": 16})
    states = []
    for _ in range(2):
        torch.manual_seed(3)
        model = build_model(spec)
        train(model, data, TrainRecipe(epochs=1, adversarial=True, eps=0.05, steps=2), seed=5, progress=False)
        states.append(model.state_dict())
    for key in states[0]:
        assert torch.equal(states[0][key], states[1][key])


def test_trades_training_is_more_robust_than_standard_training():
    data = load_dataset("gaussian-mixture")
    spec = ArchitectureSpec("mlp", data.input_shape, data.num_classes, data.mean, data.std, {"width": 32})
    accuracies = {}
    for name, recipe in {
        "standard": TrainRecipe(epochs=6, lr=0.05, batch_size=64),
        "trades": TrainRecipe(epochs=6, lr=0.05, batch_size=64, adversarial=True, method="trades",
                              eps=0.08, steps=5),
    }.items():
        torch.manual_seed(0)
        model = build_model(spec)
        train(model, data, recipe, seed=0, progress=False)
        attack = PGD(ThreatModel("linf", 0.08), steps=10, seed=1)
        accuracies[name] = evaluate_attack(model, data.x_test, data.y_test, attack).robust_accuracy().value
    assert accuracies["trades"] > accuracies["standard"] + 0.05, accuracies
