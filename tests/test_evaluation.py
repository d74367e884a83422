"""Evaluation: per-sample results, the worst case over an ensemble, reliability flags,
subnetwork margins and feature sensitivity, and bad input."""

from dataclasses import dataclass

import numpy as np
import pytest
import torch
from attack_fixtures import random_network
from torch import nn

from semirobust.empirical.attacks import (
    PGD,
    Attack,
    AttackReliabilityWarning,
    WorstCase,
    margins_of,
)
from semirobust.empirical.attacks.diagnostics import black_box_beats_white_box, not_monotone
from semirobust.empirical.attacks.evaluation import (
    evaluate_attack,
    evaluate_subnetwork,
)
from semirobust.empirical.attacks.objectives import negative_margin, readout_margin
from semirobust.empirical.attacks.threat import ThreatModel
from semirobust.empirical.measure.transfer import attacked_feature_sensitivity
from semirobust.errors import BadInput

THREAT = ThreatModel("linf", 0.1)


@dataclass
class Replace(Attack):
    """Test double: moves every input to a fixed offset and records what it was given."""

    offset: float = 0.0
    label: str = "replace"
    seen: list = None

    @property
    def name(self) -> str:  # type: ignore[override]
        return self.label

    def perturb(self, model, x, y):
        self.seen.append(x.clone())
        return x + self.offset


def data(n=30, d=6, classes=3, seed=0):
    generator = torch.Generator().manual_seed(seed)
    x = 0.2 + 0.6 * torch.rand(n, d, generator=generator)
    return x, torch.randint(0, classes, (n,), generator=generator)


def test_worst_case_keeps_the_lowest_margin_per_input_and_attacks_only_unbroken_inputs():
    model = random_network((6,), 3, 1, conv=False)
    x, y = data()
    first = Replace(THREAT, offset=0.1, label="first", seen=[])
    second = Replace(THREAT, offset=-0.1, label="second", seen=[])
    outcome = WorstCase(THREAT, stages=(first, second)).run(model, x, y)
    clean, up, down = (margins_of(model, x + o, y) for o in (0.0, 0.1, -0.1))
    after_first = torch.where(
        clean > 0, torch.minimum(clean, up), clean
    )  # misclassified inputs are not attacked
    assert len(first.seen[0]) == int((clean > 0).sum())
    assert len(second.seen[0]) == int((after_first > 0).sum())
    expected = torch.where(after_first > 0, torch.minimum(after_first, down), after_first)
    assert torch.allclose(outcome.margin, expected)
    assert torch.allclose(margins_of(model, outcome.x_adv, y), outcome.margin)
    assert list(outcome.stage_margins) == ["first", "second"]


def test_per_sample_results_and_stage_accuracies():
    model = random_network((6,), 3, 2, conv=False)
    x, y = data()
    ensemble = WorstCase(
        THREAT, stages=(PGD(THREAT, steps=3), Replace(THREAT, offset=0.1, seen=[]))
    )
    evaluation = evaluate_attack(model, x, y, ensemble, batch_size=7)
    per_sample = evaluation.per_sample()
    assert len(per_sample["adversarial_margin"]) == evaluation.n == 30
    assert per_sample["success"] == [
        c > 0 and a <= 0
        for c, a in zip(per_sample["clean_margin"], per_sample["adversarial_margin"])
    ]
    stages = list(evaluation.stage_robust_accuracy().values())
    assert stages[0] >= stages[1] == evaluation.robust_accuracy().value


def test_evaluation_restores_train_mode():
    model = random_network((6,), 3, 2, conv=False).train()
    x, y = data()
    evaluate_attack(model, x, y, PGD(THREAT, steps=2))
    assert model.training and all(p.grad is None for p in model.parameters())


class Softmax(nn.Module):
    def forward(self, z):
        return z.softmax(dim=1)


class Noisy(nn.Module):
    def forward(self, z):
        return z + 0.1 * torch.randn_like(z)


class Step(nn.Module):
    def forward(self, z):
        return torch.round(z * 4) / 4


@pytest.mark.parametrize(
    "head, code",
    [(Softmax(), "softmax-output"), (Noisy(), "randomised-model"), (Step(), "zero-gradient")],
)
def test_reliability_flags_are_raised_and_travel_into_the_measurements(head, code):
    torch.manual_seed(0)
    model = (
        nn.Sequential(nn.Linear(6, 3), head)
        if not isinstance(head, Step)
        else nn.Sequential(head, nn.Linear(6, 3))
    )
    x, y = data()
    with pytest.warns(AttackReliabilityWarning, match=code):
        evaluation = evaluate_attack(model, x, y, PGD(THREAT, steps=2))
    assert code in [flag.code for flag in evaluation.flags]
    for measurement in (evaluation.robust_accuracy(), evaluation.expected_adversarial_margin()):
        assert code in [flag["code"] for flag in measurement.settings["flags"]]


def test_a_clean_linear_model_raises_no_flag():
    torch.manual_seed(0)
    x, y = data()
    evaluation = evaluate_attack(nn.Linear(6, 3), x, y, PGD(THREAT, steps=2))
    assert evaluation.flags == ()


def test_square_and_monotonicity_checks():
    assert (
        black_box_beats_white_box({"apgd-ce": 0.5, "apgd-t": 0.4, "fab-t": 0.4, "square": 0.39})[
            0
        ].code
        == "black-box-beats-white-box"
    )
    assert (
        black_box_beats_white_box({"apgd-ce": 0.5, "apgd-t": 0.4, "fab-t": 0.4, "square": 0.399})
        == []
    )
    assert black_box_beats_white_box({"pgd": 0.5}) == []
    flags = not_monotone(
        [("fgsm", 0.5), ("ifgsm", 0.4), ("pgd", 0.45), ("autoattack", 0.3)], "the ladder"
    )
    assert [flag.message.split(": ")[1] for flag in flags] == ["ifgsm 0.4000 -> pgd 0.4500"]


def test_readout_margin_on_the_subnetwork_is_the_margin_of_the_composition():
    torch.manual_seed(0)
    f_a, readout = nn.Sequential(nn.Linear(6, 5), nn.ReLU()), nn.Linear(5, 3)
    x, y = data()
    assert torch.allclose(readout_margin(readout)(f_a(x), y), negative_margin(readout(f_a(x)), y))
    on_f_a = PGD(THREAT, objective=readout_margin(readout), steps=3, seed=1)(f_a, x, y)
    on_composition = PGD(THREAT, objective=negative_margin, steps=3, seed=1)(
        nn.Sequential(f_a, readout), x, y
    )
    assert torch.allclose(on_f_a, on_composition)
    gamma = evaluate_subnetwork(
        f_a, readout, x, y, PGD(THREAT, objective=negative_margin, steps=3)
    ).expected_adversarial_margin()
    assert gamma.value <= negative_margin(readout(f_a(x)), y).neg().mean().item()


def test_feature_sensitivity_of_a_linear_map_is_eps_times_its_spectral_norm():
    torch.manual_seed(0)
    f_a = nn.Linear(6, 4, bias=True).double()
    x, _ = data()
    x = (0.4 + 0.2 * (x - 0.2) / 0.6).double()  # the l2 ball of radius eps stays inside [0, 1]
    eps = 0.05
    displacement = attacked_feature_sensitivity(f_a, x, ThreatModel("l2", eps), steps=30, step_size=eps, seed=0)
    exact = eps * torch.linalg.matrix_norm(f_a.weight.detach(), ord=2).item()
    assert torch.allclose(displacement, torch.full_like(displacement, exact), rtol=1e-4)


def test_bad_input_is_refused_with_a_clear_message():
    model = random_network((6,), 3, 0, conv=False)
    x, y = data()
    with pytest.raises(BadInput, match="cannot run on inputs of shape \\(5,\\)"):
        evaluate_attack(model, x[:, :5], y, PGD(THREAT))
    with pytest.raises(BadInput, match="label 3 is out of range for a model with 3 classes"):
        evaluate_attack(model, x, torch.full_like(y, 3), PGD(THREAT))
    with pytest.raises(BadInput, match="\\[0,1\\]"):
        evaluate_attack(model, x + 1, y, PGD(THREAT))
    with pytest.raises(BadInput, match="differ in number"):
        evaluate_attack(model, x, y[:-1], PGD(THREAT))
    with pytest.raises(BadInput, match="no inputs"):
        evaluate_attack(model, x[:0], y[:0], PGD(THREAT))


def test_one_value_gets_no_zero_width_mean_interval():
    from semirobust.empirical.measure.statistics import mean_interval

    with pytest.raises(BadInput, match="needs at least 2 values, got 1"):
        mean_interval(np.array([-0.1227]))
    low, high = mean_interval(np.array([1.0, 3.0]))
    assert low < 2.0 < high
