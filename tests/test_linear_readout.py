"""Algorithm S1's linear readout: exact recovery, attackability, the CLI, bad input."""

from __future__ import annotations

import json

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from torch import nn

from semirobust.empirical.attacks import PGD, AttackSettings
from semirobust.empirical.attacks.evaluation import evaluate_attack, predict_logits
from semirobust.empirical.attacks.objectives import multiclass_margin, negative_margin
from semirobust.empirical.attacks.threat import ThreatModel
from semirobust.empirical.cli.main import main
from semirobust.empirical.data import load_dataset
from semirobust.empirical.measure.linear_readout import (
    LeastSquaresSettings,
    block_readouts,
    fit_linear_readout,
    fit_quality,
    readout_features,
    solve_least_squares,
)
from semirobust.empirical.model import ArchitectureSpec, Normalize, build_model
from semirobust.empirical.model.checkpoint import CheckpointConfig, save_checkpoint
from semirobust.empirical.model.stages import split_network
from semirobust.empirical.studies.s1 import ROBUST_NETWORK, S1Config, run_s1
from semirobust.empirical.studies.training import TrainRecipe, train
from semirobust.errors import BadInput
from semirobust.theory.measurement import Measurement

D_IN, K = 6, 3


def first_part(seed: int = 0) -> nn.Sequential:
    """``f_a``: two ReLU layers (8 and 5 units) on 6-d inputs in ``[0,1]``, each unit's
    threshold at the median of its pre-activation, so every unit is active on about half
    of the inputs and every batch's features ``[h_1, h_2, 1]`` have full column rank."""
    torch.manual_seed(seed)
    f_a = nn.Sequential(
        Normalize([0.0] * D_IN, [1.0] * D_IN),
        nn.Sequential(nn.Linear(D_IN, 8), nn.ReLU()),
        nn.Sequential(nn.Linear(8, 5), nn.ReLU()),
    )
    h = inputs(1000, seed=seed + 100)
    with torch.no_grad():
        for stage in f_a[1:]:
            linear = stage[0]
            linear.bias -= (h @ linear.weight.T + linear.bias).median(dim=0).values
            h = stage(h)
    return f_a


class LinearInLayers(nn.Module):
    """Logits ``[h_1, h_2] W + b``: an exactly linear function of the first part's layers."""

    def __init__(self, f_a: nn.Sequential, weight: torch.Tensor, bias: torch.Tensor) -> None:
        super().__init__()
        self.f_a, self.weight, self.bias = f_a, weight, bias

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return readout_features(self.f_a, x, (1, 2)) @ self.weight + self.bias


def inputs(n: int, seed: int = 1) -> torch.Tensor:
    return torch.rand(n, D_IN, generator=torch.Generator().manual_seed(seed))


def test_least_squares_recovers_an_exactly_linear_target():
    f_a = first_part()
    assert int(torch.linalg.matrix_rank(readout_features(f_a, inputs(100), (1, 2)).detach())) == 13
    generator = torch.Generator().manual_seed(2)
    weight, bias = torch.randn(13, K, generator=generator), torch.randn(K, generator=generator)
    target = LinearInLayers(f_a, weight, bias)
    x_fit, x_test = inputs(300), inputs(200, seed=3)
    readout = fit_linear_readout(
        f_a, target, x_fit, (1, 2), LeastSquaresSettings(batch_size=100), name="exact"
    )
    truth = predict_logits(target, x_test)
    assert torch.allclose(predict_logits(readout, x_test), truth, atol=1e-4)
    quality = fit_quality(readout, target, x_test, name="exact")
    assert quality.r2.value == pytest.approx(1.0, abs=1e-6)
    assert quality.agreement.value == 1.0
    y = truth.argmax(dim=1)
    attack = PGD(ThreatModel("linf", 0.05), objective=negative_margin, steps=5)
    ours, theirs = (evaluate_attack(m, x_test, y, attack) for m in (readout, target))
    assert bool(ours.clean_correct.all()) and bool(theirs.clean_correct.all())
    assert torch.allclose(ours.adversarial_margin, theirs.adversarial_margin, atol=1e-3)


def test_the_last_hidden_layer_reads_out_the_network_exactly():
    """A network's logits are a linear function of ``h_{n-1}`` (its last layer has no ReLU)."""
    spec = ArchitectureSpec(
        "mlp", (D_IN,), K, (0.5,) * D_IN, (0.25,) * D_IN, {"depth": 2, "width": 7}
    )
    torch.manual_seed(0)
    model = build_model(spec).eval()
    split = split_network(model, 2)
    readout = fit_linear_readout(split.f_a, model, inputs(200), (2,), name="last hidden")
    last = model[-1][0]
    assert torch.allclose(readout.weight, last.weight.T, atol=1e-4)
    assert torch.allclose(readout.bias, last.bias, atol=1e-4)


def test_blocks_add_up_to_the_combined_readout():
    f_a = first_part()
    target = LinearInLayers(f_a, torch.randn(13, K), torch.randn(K))
    readout = fit_linear_readout(f_a, target, inputs(100), (1, 2), name="combined")
    blocks = block_readouts(readout)
    x = inputs(50, seed=9)
    assert [b.layers for b in blocks] == [(1,), (2,)]
    parts = [predict_logits(b, x) for b in blocks]
    combined = predict_logits(readout, x)
    assert torch.allclose(sum(parts), combined, atol=1e-5)
    y = torch.randint(0, K, (50,), generator=torch.Generator().manual_seed(10))
    # the margin is concave and positively homogeneous, so m(sum z_i) >= sum m(z_i) (L2, C4)
    block_margins = sum(multiclass_margin(z, y) for z in parts)
    assert bool((multiclass_margin(combined, y) >= block_margins - 1e-5).all())


@given(ridge=st.floats(0.0, 10.0), extra=st.floats(0.1, 10.0))
def test_ridge_shrinks_the_weights(ridge, extra):
    generator = torch.Generator().manual_seed(4)
    h, y = torch.randn(30, 12, generator=generator), torch.randn(30, K, generator=generator)

    def norm(r: float) -> float:
        return float(solve_least_squares(h, y, LeastSquaresSettings(ridge=r))[:-1].norm())

    assert norm(ridge + extra) <= norm(ridge) + 1e-9


def test_underdetermined_batch_gets_the_minimum_norm_interpolant():
    generator = torch.Generator().manual_seed(5)
    h = torch.randn(10, 40, generator=generator, dtype=torch.float64)
    y = torch.randn(10, K, generator=generator, dtype=torch.float64)
    lam = solve_least_squares(h, y, LeastSquaresSettings())
    design = torch.cat([h, torch.ones(10, 1, dtype=h.dtype)], dim=1)
    assert torch.allclose(design @ lam, y, atol=1e-8)
    centred = h - h.mean(dim=0)
    assert torch.allclose(lam[:-1], torch.linalg.pinv(centred) @ (y - y.mean(dim=0)), atol=1e-8)


def test_overdetermined_batch_gets_the_least_squares_solution_and_ridge_its_closed_form():
    generator = torch.Generator().manual_seed(11)
    h = torch.randn(50, 6, generator=generator, dtype=torch.float64)
    y = torch.randn(50, K, generator=generator, dtype=torch.float64)
    design = torch.cat([h, torch.ones(50, 1, dtype=h.dtype)], dim=1)
    plain = solve_least_squares(h, y, LeastSquaresSettings())
    assert torch.allclose(plain, torch.linalg.lstsq(design, y).solution, atol=1e-8)
    ridge = 3.0
    centred, y_centred = h - h.mean(dim=0), y - y.mean(dim=0)
    weight = torch.linalg.solve(
        centred.T @ centred + ridge * torch.eye(6, dtype=h.dtype), centred.T @ y_centred
    )
    assert torch.allclose(
        solve_least_squares(h, y, LeastSquaresSettings(ridge=ridge))[:-1], weight, atol=1e-8
    )


def test_pgd_lowers_the_readouts_margin_inside_the_ball():
    f_a = first_part()
    target = LinearInLayers(
        f_a, torch.randn(13, K, generator=torch.Generator().manual_seed(6)), torch.zeros(K)
    )
    readout = fit_linear_readout(f_a, target, inputs(200), (1, 2), name="attacked")
    x = inputs(64, seed=7)
    y = predict_logits(readout, x).argmax(dim=1)
    threat = ThreatModel("linf", 0.1)
    x_adv = PGD(threat, objective=negative_margin, steps=20)(readout, x, y)
    assert bool(threat.contains(x_adv, x).all())
    with torch.no_grad():
        clean, attacked = (multiclass_margin(readout(v), y) for v in (x, x_adv))
    assert float((attacked < clean).float().mean()) >= 0.9
    assert float(attacked.mean()) < 0.5 * float(clean.mean())
    x_grad = x.clone().requires_grad_(True)
    readout(x_grad).sum().backward()
    assert float(x_grad.grad.abs().sum()) > 0


def test_readout_layers_outside_f_a_are_refused():
    f_a = first_part()
    with pytest.raises(BadInput, match=r"1\.\.2"):
        fit_linear_readout(f_a, f_a, inputs(10), (3,), name="bad")


def test_study_judges_l2_with_blocks_and_per_layer_readouts():
    spec = ArchitectureSpec(
        "mlp", (D_IN,), K, (0.5,) * D_IN, (0.25,) * D_IN, {"depth": 3, "width": 8}
    )
    torch.manual_seed(0)
    model = build_model(spec).eval()
    x = inputs(120)
    y = torch.randint(0, K, (120,), generator=torch.Generator().manual_seed(8))
    study = run_s1(model, 2, x[:60], x[60:], y[60:], S1Config(ThreatModel("linf", 0.02), AttackSettings(steps=3, restarts=1)))
    assert [r.readout["readout_layers"] for r in study.blocks] == [[1], [2]]
    for check in (study.l2_blocks, study.l2_per_layer):
        assert list(check.reads) == ["gamma_1", "gamma_2", "gamma_3"]
        assert check.verdict.layers == {"n": 3}
        assert check.reads["gamma_3"] == study.combined.readout["readout"]
    assert study.reference.readout == {"readout": ROBUST_NETWORK}
    assert study.reference.fit is None and study.combined.fit is not None


@pytest.fixture(scope="module")
def digits_checkpoint(tmp_path_factory):
    dataset = load_dataset("digits")
    spec = ArchitectureSpec(
        "digits-cnn",
        dataset.input_shape,
        dataset.num_classes,
        dataset.mean,
        dataset.std,
        {"width": 4},
    )
    torch.manual_seed(0)
    model = build_model(spec)
    recipe = TrainRecipe(epochs=2, batch_size=64, lr=0.05)
    train(model, dataset, recipe, seed=0, progress=False)
    path = tmp_path_factory.mktemp("ckpt") / "digits"
    save_checkpoint(path, model, CheckpointConfig(spec, "digits", 0, recipe.to_dict()))
    return path


MEASUREMENT_KEYS = {"name", "value", "interval", "kind", "estimator", "unit", "settings"}


def test_cli_writes_every_number_as_a_measurement(digits_checkpoint, tmp_path, capsys):
    out = tmp_path / "s1.json"
    code = main(
        [
            "s1",
            "--checkpoint",
            str(digits_checkpoint),
            "--fb-layers",
            "3",
            "--eps",
            "0.05",
            "--steps",
            "2",
            "--limit",
            "120",
            "--device",
            "cpu",
            "--json",
            str(out),
        ]
    )
    assert code == 0
    result = json.loads(out.read_text())
    assert result["split"] == {"a": 4, "n": 7, "fb_layers": 3}
    assert result["inputs"] == {"fit": 60, "held_out": 60}
    readouts = [result["reference"], result["combined"], *result["per_layer"], *result["blocks"]]
    assert len(readouts) == 2 + 4 + 4
    for readout in readouts:
        numbers = {k: v for k, v in readout.items() if not k.startswith("readout")}
        assert set(numbers) >= {"clean_accuracy", "robust_accuracy", "gamma"}
        for value in numbers.values():
            assert set(value) == MEASUREMENT_KEYS
            Measurement.from_dict(value)
        assert numbers["gamma"]["settings"]["readout"] == readout["readout"]
    assert "readout_frobenius_norm" in result["combined"]["gamma"]["settings"]
    for check in result["L2"].values():
        assert check["verdict"]["result"] == "L2"
        # gammas from attacks and sandwiches: never "holds" or "violated" on an attack value alone
        assert bool(check["verdict"]["decided_by"]) is (check["verdict"]["status"] != "inconclusive")
        if check["verdict"]["status"] in {"holds", "violated"}:
            assert "estimate" not in check["verdict"]["decided_by"]
    printed = capsys.readouterr().out
    assert "S1 combined h_1..h_4" in printed and "L2 with" in printed


def test_cli_split_outside_the_network_exits_2_with_one_line(digits_checkpoint, tmp_path, capsys):
    code = main(
        [
            "s1",
            "--checkpoint",
            str(digits_checkpoint),
            "--split",
            "9",
            "--eps",
            "0.05",
            "--json",
            str(tmp_path / "x.json"),
        ]
    )
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1 and "--split 9" in err
    assert not (tmp_path / "x.json").exists()


def test_cli_fit_fraction_must_leave_both_parts(digits_checkpoint, tmp_path, capsys):
    code = main(
        [
            "s1",
            "--checkpoint",
            str(digits_checkpoint),
            "--split",
            "4",
            "--eps",
            "0.05",
            "--limit",
            "3",
            "--fit-fraction",
            "0.1",
            "--json",
            str(tmp_path / "x.json"),
        ]
    )
    assert code == 2
    assert "--fit-fraction" in capsys.readouterr().err
