"""``check`` through probe and Lipschitz-normalised readouts (caveat C1,
semirobust.empirical.studies.check_readouts): T2's premises can hold, every gamma and A2
gap names its readout, and the normalised margin is the margin divided by the readout's
certified Lipschitz constant."""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn

from semirobust.empirical.attacks import AttackSettings
from semirobust.empirical.attacks.threat import ThreatModel
from semirobust.empirical.bounds.lipschitz import lipschitz_upper
from semirobust.empirical.cli.main import main
from semirobust.empirical.data import load_dataset
from semirobust.empirical.measure.exact_1d import margin
from semirobust.empirical.model import ArchitectureSpec, build_model
from semirobust.empirical.model.checkpoint import CheckpointConfig, save_checkpoint
from semirobust.empirical.model.stages import split_network
from semirobust.empirical.studies.canonical_readouts import CANONICAL_READOUT
from semirobust.empirical.studies.check import CheckSettings, run_check
from semirobust.empirical.studies.check_readouts import (
    FitData,
    ReadoutSettings,
    measure_through_readouts,
)
from semirobust.errors import BadInput
from semirobust.theory.measurement import Kind
from semirobust.theory.verdict import Status

THREAT = ThreatModel("linf", 0.02)
CPU = torch.device("cpu")


def _stage(weight, bias, relu=True) -> nn.Sequential:
    layer = nn.Linear(2, 2)
    with torch.no_grad():
        layer.weight.copy_(torch.tensor(weight))
        layer.bias.copy_(torch.tensor(bias))
    return nn.Sequential(layer, *([nn.ReLU()] if relu else []))


def growing() -> nn.Sequential:
    """Three layers whose activations grow: ``h_1 = x``, ``h_2 = 8 x``, logits
    ``8 (-(s), s) + (64, -64)`` with ``s`` the sum of ``h_2``: class 1 when
    ``x_1 + x_2 > 1``. Every Lipschitz constant of a rest is a power of 2 (128, 16)."""
    return nn.Sequential(_stage([[1.0, 0.0], [0.0, 1.0]], [0.0, 0.0]),
                         _stage([[8.0, 0.0], [0.0, 8.0]], [0.0, 0.0]),
                         _stage([[-8.0, -8.0], [8.0, 8.0]], [64.0, -64.0], relu=False))


def clusters(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Two classes around (0.3, 0.3) and (0.7, 0.7)."""
    generator = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % 2
    x = (0.3 + 0.4 * y.float()).view(-1, 1) + 0.05 * torch.randn(n, 2, generator=generator)
    return x.clamp(0, 1), y


def settings(readout: ReadoutSettings, methods=("ibp", "crown-ibp")) -> CheckSettings:
    return CheckSettings(a=1, threat=THREAT, n=60, bound_methods=methods,
                         attack=AttackSettings(steps=5, restarts=1), readout=readout)


@pytest.fixture(scope="module")
def probed():
    x, y = clusters(60, 0)
    fit = FitData(*clusters(200, 1), "200 inputs drawn apart from the measured ones")
    readout = ReadoutSettings("probe", method="logistic", fitted_on="adversarial", norm_bound=1.0)
    return run_check(growing(), x, y, settings(readout), device=CPU, fit=fit)


def test_probe_readouts_make_t2s_premises_certainly_hold(probed):
    """Logistic probes with ``||W||_2 <= 1`` on growing activations: layer j's margin
    exceeds layer j-1's by more than 1 + U_j = 2, so A2 holds at j = 2 (G_1 against G_2,
    the gap at a+1) and j = 3, decided by the attacked gap (an attack value of an
    infimum establishes a <= claim) and gamma_a > 0 by its certified lower bound. The
    conclusion adds rho estimates, so it can only be supported, never hold."""
    t2 = probed.verdicts["T2"]
    premises = {p.label: p for p in t2.premises}
    assert set(premises) == {"f_a semirobust", "A2 [j = 2]", "A2 [j = 3]",
                             "C9 U > -1 [j = 2]", "C9 U > -1 [j = 3]"}
    for label, premise in premises.items():
        assert premise.status is Status.HOLDS, label
        assert "estimate" not in premise.decided_by, label
    assert "certified" in premises["f_a semirobust"].decided_by
    (conclusion,) = t2.conclusion
    assert conclusion.status is Status.SUPPORTED and conclusion.decided_by == "estimate"
    assert t2.status not in (Status.HOLDS, Status.VIOLATED, Status.PREMISES_UNMET)
    for j in (2, 3):
        certified, attacked = probed.measurements[f"margin_gap_{j}"]
        assert certified.kind is Kind.CERTIFIED and attacked.kind is Kind.ATTACK
        assert certified.value <= attacked.value <= -2.0


def test_every_gamma_and_gap_names_its_readout_constraint_and_fit_data(probed):
    for j, record in zip((1, 2, 3), probed.readouts):
        assert record["layer"] == j and record["readout_kind"] == "probe"
        assert record["constraint"] == "||W||_2 <= 1" and record["weight_norm"] <= 1.0
        assert record["fitted_on"] == "adversarial" and record["fit_attack"]["attack"] == "pgd"
        assert record["fit_data"].startswith("200 inputs drawn apart")
        for m in probed.measurements[f"gamma_{j}"]:
            assert m.settings["readout"] == record["readout"]
            assert m.settings["constraint"] == "||W||_2 <= 1" and m.settings["fit_data"]
            assert m.settings["norm"] == "linf"  # the threat model's, not overwritten
    for j in (2, 3):
        for m in probed.measurements[f"margin_gap_{j}"]:
            assert m.settings["previous_readout"] == probed.readouts[j - 2]["readout"]
            assert m.settings["current_readout"] == probed.readouts[j - 1]["readout"]
            assert m.settings["current_readout_settings"]["fit_data"]
    assert [m.settings["readout"] for m in probed.measurements["gamma_a"]] == \
        [probed.readouts[0]["readout"]] * 2
    assert probed.measurements["gamma_b"][0].settings["readout"] == probed.readouts[-1]["readout"]
    assert probed.to_dict()["settings"]["readout"] == {
        "readout": "probe", "probe_method": "logistic", "probe_fitted_on": "adversarial",
        "probe_constraint": "||W||_2 <= 1"}


def test_lipschitz_normalised_margin_is_the_margin_over_the_certified_constant():
    """G_j = F^(j+1,n) / L_j: the recorded L_j is the certified product bound of the rest,
    and (L_j = 128, 16, 1 are powers of 2, so the division is exact in floating point)
    every margin, every certified bound and every attacked value through G_j is the whole
    network's divided by L_j, exactly."""
    model, (x, y) = growing(), clusters(60, 0)
    s = settings(ReadoutSettings("lipschitz-normalised"), methods=("ibp",))
    evidence = measure_through_readouts(model, x, y, s, fit=None, device=CPU)
    result = run_check(model, x, y, s, device=CPU)
    whole = result.measurements["gamma_whole"]
    h = {1: model[:1](x), 2: model[:2](x), 3: model(x)}
    for j, constant in ((1, 128.0), (2, 16.0), (3, 1.0)):
        readout = evidence.readouts[j]
        rest = split_network(model, j).f_b if j < 3 else nn.Sequential()
        assert readout.settings["lipschitz_constant"] == lipschitz_upper(rest, (2,)).product == constant
        with torch.no_grad():
            normalised = margin(readout.module.double()(h[j].double()), y)
            plain = margin(rest.double()(h[j].double()), y)
        assert torch.equal(normalised, plain / constant)
        for through, of_whole in zip(result.measurements[f"gamma_{j}"], whole, strict=True):
            assert through.kind is of_whole.kind
            assert through.value == of_whole.value / constant


def test_the_canonical_readout_changes_nothing_and_needs_no_fit_data():
    model, (x, y) = growing(), clusters(40, 0)
    result = run_check(model, x, y, settings(ReadoutSettings()), device=CPU)
    assert result.readouts == ()
    whole = [(m.value, m.kind, m.settings["readout"]) for m in result.measurements["gamma_whole"]]
    for name in ("gamma_1", "gamma_2", "gamma_3", "gamma_a", "gamma_b"):
        assert [(m.value, m.kind, m.settings["readout"]) for m in result.measurements[name]] == whole
    assert whole[0][2] == CANONICAL_READOUT
    assert result.measurements["margin_gap_2"][0].value == 0.0  # the canonical identity


def test_bad_readout_settings_are_named():
    with pytest.raises(BadInput, match="--readout"):
        ReadoutSettings("free")
    with pytest.raises(BadInput, match="--probe-fit"):
        ReadoutSettings("probe", fitted_on="noisy")
    with pytest.raises(BadInput, match="--probe-norm"):
        ReadoutSettings("probe", norm_bound=0.0)
    x, y = clusters(20, 0)
    with pytest.raises(BadInput, match="needs fit data"):
        run_check(growing(), x, y, settings(ReadoutSettings("probe")), device=CPU)


def test_the_cli_report_names_the_readout(tmp_path):
    data = load_dataset("gaussian-mixture")
    spec = ArchitectureSpec("mlp", data.input_shape, data.num_classes, data.mean, data.std,
                            {"depth": 2, "width": 8})
    torch.manual_seed(0)
    save_checkpoint(tmp_path / "ckpt", build_model(spec), CheckpointConfig(spec, "gaussian-mixture", seed=0))
    out = tmp_path / "out"
    assert main(["check", "--checkpoint", str(tmp_path / "ckpt"), "--split", "1", "--out", str(out),
                 "--samples", "60", "--steps", "3", "--restarts", "1", "--device", "cpu",
                 "--readout", "probe", "--probe-norm", "0.5", "--probe-samples", "100"]) == 0
    report = (out / "report.md").read_text()
    assert "## Readouts" in report and "Readouts (probe, caveat C1)" in report
    assert "probe[layer 1]: least-squares on clean activations, ||W||_2 <= 0.5" in report
    assert "the first 100 training inputs of gaussian-mixture (seed 0)" in report
    saved = json.loads((out / "report.json").read_text())
    assert [r["layer"] for r in saved["readouts"]] == [1, 2, 3]
    assert saved["settings"]["readout"]["probe_constraint"] == "||W||_2 <= 0.5"
    for name in ("gamma_a", "gamma_b", "margin_gap_2", "margin_gap_3"):
        assert all("probe[layer" in m["settings"]["readout"] for m in saved["measurements"][name]), name
    t2 = saved["verdicts"]["T2"]
    assert any(r["name"] == "margin_gap_2" for r in t2["measurements"])


def test_a_bad_probe_norm_on_the_command_line_is_exit_2(tmp_path, capsys):
    with pytest.raises(SystemExit) as exited:
        main(["check", "--checkpoint", str(tmp_path), "--split", "1", "--out", str(tmp_path / "o"),
              "--readout", "probe", "--probe-norm", "0"])
    assert exited.value.code == 2
