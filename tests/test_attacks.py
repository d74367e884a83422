"""Attacks: containment (property tests), closed-form infima on affine models, eps = 0,
monotonicity in eps, seeds, and no side effects on the model or the global RNG."""

import math

import pytest
import torch
from attack_fixtures import (
    BinaryAffine,
    exact_l2_infimum_interior,
    exact_linf_infimum,
    random_network,
    signed,
)
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from semirobust.empirical.attacks import (
    PGD,
    AttackConfig,
    AutoAttackStage,
    CarliniWagnerL2,
    attack_names,
    autoattack,
    build_attack,
    margins_of,
)
from semirobust.empirical.attacks.evaluation import evaluate_attack
from semirobust.empirical.attacks.objectives import negative_margin
from semirobust.empirical.attacks.projection import feasible_set
from semirobust.empirical.attacks.threat import ThreatModel
from semirobust.errors import BadInput

FAST_GRADIENT_ATTACKS = ("fgsm", "ifgsm", "pgd", "cw")
SHAPES = st.sampled_from([(5,), (12,), (1, 4, 4), (2, 3, 3)])


def fast_attack(name: str, threat: ThreatModel, seed: int = 0):
    """The named attack with few iterations (C&W: 2 rounds of search)."""
    if name == "cw" and threat.norm == "l2":
        return CarliniWagnerL2(threat, seed=seed, steps=6, search_steps=2, lr=0.05)
    return build_attack(name, AttackConfig(threat, steps=4, restarts=2, seed=seed))


@given(
    shape=SHAPES,
    classes=st.integers(2, 5),
    batch=st.integers(1, 6),
    norm=st.sampled_from(["linf", "l2"]),
    eps=st.floats(0.0, 1.5, allow_nan=False),
    seed=st.integers(0, 10_000),
    conv=st.booleans(),
    name=st.sampled_from(FAST_GRADIENT_ATTACKS),
)
def test_every_attack_stays_in_the_ball_and_the_box(
    shape, classes, batch, norm, eps, seed, conv, name
):
    model = random_network(shape, classes, seed, conv=conv)
    generator = torch.Generator().manual_seed(seed)
    x = torch.rand((batch, *shape), generator=generator)
    x[0].view(-1)[0] = 0.0  # pixels on the box boundary too
    y = torch.randint(0, classes, (batch,), generator=generator)
    threat = ThreatModel(norm, eps)
    x_adv = fast_attack(name, threat, seed)(model, x, y)
    assert x_adv.shape == x.shape and x_adv.dtype == x.dtype
    assert threat.contains(x_adv, x, tol=1e-5).all()


@pytest.mark.parametrize("norm", ["linf", "l2"])
def test_autoattack_stays_in_the_ball_and_the_box(norm):
    model = random_network((1, 4, 4), 10, 3, conv=True)
    x = torch.rand(6, 1, 4, 4, generator=torch.Generator().manual_seed(0))
    y = model(x).argmax(dim=1)  # all correctly classified, so every stage runs
    threat = ThreatModel(norm, 0.3 if norm == "linf" else 1.0)
    x_adv = autoattack(threat, seed=1)(model, x, y)
    assert threat.contains(x_adv, x, tol=1e-5).all()


@pytest.mark.parametrize(
    "name", sorted(set(attack_names()) - {"autoattack", "apgd-t", "fab-t", "square"})
)
@pytest.mark.parametrize("norm", ["linf", "l2"])
def test_eps_zero_returns_the_inputs_and_the_clean_accuracy(name, norm):
    model = random_network((1, 4, 4), 3, 0, conv=True)
    x = torch.rand(20, 1, 4, 4, generator=torch.Generator().manual_seed(1))
    y = torch.randint(0, 3, (20,), generator=torch.Generator().manual_seed(2))
    attack = build_attack(name, AttackConfig(ThreatModel(norm, 0.0), steps=3))
    evaluation = evaluate_attack(model, x, y, attack, keep_adversarial=True)
    assert torch.equal(evaluation.x_adv, x)
    assert evaluation.robust_accuracy().value == evaluation.clean_accuracy().value


def test_autoattack_at_eps_zero_returns_the_clean_accuracy():
    model = random_network((1, 4, 4), 4, 0, conv=True)
    x = torch.rand(10, 1, 4, 4, generator=torch.Generator().manual_seed(1))
    y = torch.randint(0, 4, (10,), generator=torch.Generator().manual_seed(2))
    evaluation = evaluate_attack(model, x, y, autoattack(ThreatModel("linf", 0.0)))
    assert evaluation.robust_accuracy().value == evaluation.clean_accuracy().value


def affine_problem(d: int, n: int, seed: int, inside: float):
    """A random binary affine model and ``n`` points in ``[inside, 1 - inside]^d``."""
    generator = torch.Generator().manual_seed(seed)
    w = torch.randn(d, generator=generator, dtype=torch.float64)
    x = inside + (1 - 2 * inside) * torch.rand(n, d, generator=generator, dtype=torch.float64)
    b = float(-(x @ w).mean())
    y = torch.randint(0, 2, (n,), generator=generator)
    return BinaryAffine(w, b), x, y


@pytest.mark.parametrize("seed", range(3))
def test_pgd_reaches_the_linf_infimum_inside_the_box(seed):
    eps = 0.05
    model, x, y = affine_problem(10, 40, seed, inside=eps)
    x_adv = PGD(ThreatModel("linf", eps), objective=negative_margin, steps=10, seed=seed)(
        model, x, y
    )
    exact = signed(y) * (x @ model.w + model.b) - eps * model.w.abs().sum()
    assert torch.allclose(exact, exact_linf_infimum(model, x, y, eps))
    assert (margins_of(model, x_adv, y).double() - exact.detach()).abs().max() < 1e-4


@pytest.mark.parametrize("seed", range(3))
def test_pgd_reaches_the_coordinatewise_linf_infimum_at_the_box_boundary(seed):
    eps = 0.2
    model, x, y = affine_problem(10, 40, seed, inside=0.0)
    x[:, :3] = x[:, :3].round()  # some coordinates exactly on the faces of the box
    x_adv = PGD(ThreatModel("linf", eps), objective=negative_margin, steps=10, seed=seed)(
        model, x, y
    )
    exact = exact_linf_infimum(model, x, y, eps)
    assert (margins_of(model, x_adv, y).double() - exact).abs().max() < 1e-4


@pytest.mark.parametrize("seed", range(3))
def test_pgd_reaches_the_l2_infimum_inside_the_box(seed):
    eps = 0.1
    model, x, y = affine_problem(10, 40, seed, inside=eps)
    x_adv = PGD(
        ThreatModel("l2", eps), objective=negative_margin, steps=20, step_size=eps, seed=seed
    )(model, x, y)
    exact = exact_l2_infimum_interior(model, x, y, eps)
    assert (margins_of(model, x_adv, y).double() - exact).abs().max() < 1e-4


def test_cw_l2_finds_the_distance_to_an_affine_decision_boundary():
    model, x, y = affine_problem(6, 30, 7, inside=0.3)
    with torch.no_grad():
        distance = (signed(y) * (x @ model.w + model.b)).clamp(min=0) / model.w.norm()
    keep = (distance > 0) & (distance < 0.15)  # correctly classified, boundary point inside the box
    x, y, distance = x[keep].float(), y[keep], distance[keep].float()
    model = BinaryAffine(model.w.detach().float(), float(model.b))
    attack = CarliniWagnerL2(ThreatModel("l2", 1.0), steps=200, search_steps=8, lr=0.01)
    x_min = attack.minimal_perturbation(model, x, y)
    found = (x_min - x).flatten(start_dim=1).norm(dim=1)
    assert (margins_of(model, x_min, y) < 0).all()
    assert (found >= distance - 1e-5).all()
    assert (found <= distance * 1.05 + 2e-3).all()


@given(
    seed=st.integers(0, 10_000),
    norm=st.sampled_from(["linf", "l2"]),
    name=st.sampled_from(["fgsm", "ifgsm", "pgd"]),
    epss=st.lists(st.floats(0.0, 0.4), min_size=2, max_size=4),
)
@settings(max_examples=15)
def test_robust_accuracy_is_non_increasing_in_eps(seed, norm, name, epss):
    model, x, y = affine_problem(8, 60, seed, inside=0.0)
    accuracies = []
    for eps in sorted(epss):
        attack = build_attack(
            name,
            AttackConfig(ThreatModel(norm, eps), steps=20, objective=negative_margin, seed=seed),
        )
        accuracies.append(
            evaluate_attack(model, x, y, attack, diagnose=False).robust_accuracy().value
        )
    assert all(a >= b for a, b in zip(accuracies, accuracies[1:])), accuracies


def test_same_seed_same_result_and_the_seed_matters():
    model = random_network((12,), 3, 0, conv=False)
    x = torch.rand(16, 12, generator=torch.Generator().manual_seed(0))
    y = torch.randint(0, 3, (16,), generator=torch.Generator().manual_seed(1))
    threat = ThreatModel("linf", 0.1)
    first = PGD(threat, steps=2, seed=5)(model, x, y)
    assert torch.equal(first, PGD(threat, steps=2, seed=5)(model, x, y))
    assert not torch.equal(first, PGD(threat, steps=2, seed=6)(model, x, y))


@pytest.mark.parametrize("name", ["pgd", "cw", "apgd-ce", "square"])
def test_attacks_restore_the_mode_leak_no_gradient_and_keep_the_global_rng(name):
    model = nn.Sequential(
        nn.Flatten(), nn.Linear(16, 8), nn.Dropout(0.0), nn.ReLU(), nn.Linear(8, 4)
    )
    model[1].weight.requires_grad_(False)  # a frozen layer stays frozen
    model.train()
    x = torch.rand(5, 1, 4, 4, generator=torch.Generator().manual_seed(0))
    y = torch.randint(0, 4, (5,), generator=torch.Generator().manual_seed(1))
    norm = "l2" if name == "cw" else "linf"
    eps = 1.0 if name == "square" else 0.2  # Square stops early once every input is broken
    torch.manual_seed(123)
    state = torch.random.get_rng_state()
    build_attack(name, AttackConfig(ThreatModel(norm, eps), steps=3))(model, x, y)
    assert torch.equal(torch.random.get_rng_state(), state)
    assert model.training
    assert all(p.grad is None for p in model.parameters())
    assert [p.requires_grad for p in model.parameters()] == [False, True, True, True]


def test_bad_attack_parameters_are_refused():
    threat = ThreatModel("linf", 0.1)
    with pytest.raises(BadInput, match="unknown attack 'nope'"):
        build_attack("nope", AttackConfig(threat))
    with pytest.raises(BadInput, match="steps >= 1"):
        PGD(threat, steps=0)
    with pytest.raises(BadInput, match="--norm l2"):
        CarliniWagnerL2(threat)
    with pytest.raises(BadInput, match="--eps -0.1"):
        ThreatModel("linf", -0.1)
    with pytest.raises(BadInput, match="--eps nan"):
        ThreatModel("linf", math.nan)


@given(seed=st.integers(0, 10_000), eps=st.floats(0.0, 1.0), norm=st.sampled_from(["linf", "l2"]))
def test_the_fast_projection_equals_the_threat_models(seed, eps, norm):
    generator = torch.Generator().manual_seed(seed)
    x = torch.rand(4, 1, 3, 3, generator=generator)
    z = x + 2 * torch.randn(4, 1, 3, 3, generator=generator)
    threat = ThreatModel(norm, eps)
    assert torch.allclose(feasible_set(threat, x).project(z), threat.project(z, x), atol=1e-7)


def test_amp_is_a_no_op_on_the_cpu():
    model = random_network((12,), 3, 0, conv=False)
    x = torch.rand(8, 12, generator=torch.Generator().manual_seed(0))
    y = torch.randint(0, 3, (8,), generator=torch.Generator().manual_seed(1))
    threat = ThreatModel("linf", 0.1)
    assert torch.equal(PGD(threat, steps=3, amp=True)(model, x, y), PGD(threat, steps=3)(model, x, y))


def test_autoattack_stages_adapt_to_few_classes():
    model = random_network((1, 4, 4), 3, 2, conv=True)
    x = torch.rand(4, 1, 4, 4, generator=torch.Generator().manual_seed(0))
    y = model(x).argmax(dim=1)
    threat = ThreatModel("linf", 0.3)
    assert torch.equal(AutoAttackStage(threat, stage="apgd-t")(model, x, y), x)  # needs 4 classes: skipped
    x_adv = AutoAttackStage(threat, stage="fab-t")(model, x, y)  # 2 target classes instead of 9
    assert threat.contains(x_adv, x, tol=1e-5).all()
    limitations = autoattack(threat).limitations(3)
    assert len(limitations) == 1 and limitations[0].startswith("apgd-t needs at least 4 classes")
