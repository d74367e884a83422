"""The sandwich, the transfer bound and the CLI on a briefly trained digits CNN
(BatchNorm with learned statistics, max-pooling), the kind of model the demo trains."""

from __future__ import annotations

import json

import pytest
import torch

from semirobust.empirical.attacks.threat import ThreatModel
from semirobust.empirical.bounds.lipschitz import lipschitz_upper
from semirobust.empirical.cli.main import main
from semirobust.empirical.data import load_dataset
from semirobust.empirical.measure.local_lipschitz import local_lipschitz_lower
from semirobust.empirical.measure.sandwich import gamma_sandwich
from semirobust.empirical.measure.transfer import lipschitz_transfer_bound
from semirobust.empirical.model import ArchitectureSpec, build_model
from semirobust.empirical.model.checkpoint import CheckpointConfig, save_checkpoint
from semirobust.empirical.model.stages import split_network
from semirobust.empirical.studies.training import TrainRecipe, train
from semirobust.theory.measurement import Kind


@pytest.fixture(scope="module")
def trained():
    data = load_dataset("digits")
    spec = ArchitectureSpec("digits-cnn", data.input_shape, 10, data.mean, data.std, {"width": 8})
    torch.manual_seed(0)
    model = build_model(spec)
    train(model, data, TrainRecipe(epochs=3, lr=0.05), seed=0, progress=False)
    return model.eval(), spec, data


@pytest.mark.parametrize("norm, eps", [("linf", 0.02), ("linf", 0.1), ("l2", 0.3)])
def test_certified_never_exceeds_attacked_on_a_trained_cnn(trained, norm, eps):
    model, spec, data = trained
    x, y = data.x_test[:48], data.y_test[:48]
    threat = ThreatModel(norm, eps)
    sandwich = gamma_sandwich(
        model,
        x,
        y,
        threat,
        methods=("ibp", "crown-ibp"),
        lipschitz=lipschitz_upper(model, spec.input_shape),
    )
    for method, values in sandwich.certified.items():
        assert (values <= sandwich.attacked + 1e-9).all(), method
    found = {m.name: m for m in sandwich.measurements()}
    assert found["gamma_certified"].kind == Kind.CERTIFIED
    assert found["gamma_attacked"].kind == Kind.ATTACK
    assert (
        found["gamma_certified"].value
        <= found["gamma_attacked"].value
        <= found["margin_clean"].value + 1e-6
    )
    report = json.loads(json.dumps(sandwich.to_dict(), allow_nan=False))
    assert report["violations"] == 0 and len(report["per_sample"]["certified_ibp"]) == 48


def test_full_crown_on_a_few_inputs_of_the_trained_cnn(trained):
    model, _, data = trained
    x, y = data.x_test[:3], data.y_test[:3]
    sandwich = gamma_sandwich(model, x, y, ThreatModel("linf", 0.02), methods=("ibp", "crown"))
    assert (sandwich.certified["crown"] <= sandwich.attacked + 1e-9).all()
    assert (sandwich.certified["crown"] >= sandwich.certified["ibp"]).all()


def test_transfer_bound_and_feature_sensitivity_on_a_trained_cnn(trained):
    model, _, data = trained
    x, y = data.x_test[:32], data.y_test[:32]
    threat = ThreatModel("linf", 0.02)
    transfer = lipschitz_transfer_bound(split_network(model, 4), x, y, threat)
    attacked = gamma_sandwich(model, x, y, threat).attacked
    assert (transfer.certified <= attacked + 1e-9).all()
    assert (transfer.sensitivity.certified >= transfer.sensitivity.attacked - 1e-9).all()
    assert (transfer.sensitivity.attacked > 0).all()


def test_lipschitz_upper_bound_is_above_the_local_lower_bound(trained):
    model, spec, data = trained
    upper = lipschitz_upper(model, spec.input_shape)
    lower = local_lipschitz_lower(model, data.x_test[:16], points_per_input=2)
    assert upper.certified and 0 < lower.value <= upper.product


def test_lipschitz_command_writes_per_layer_and_per_part_bounds(trained, tmp_path, capsys):
    model, spec, _ = trained
    checkpoint = save_checkpoint(tmp_path / "ckpt", model, CheckpointConfig(spec, "digits", seed=0))
    out = tmp_path / "lipschitz.json"
    code = main(
        [
            "lipschitz",
            "--checkpoint",
            str(checkpoint),
            "--json",
            str(out),
            "--samples",
            "8",
            "--device",
            "cpu",
        ]
    )
    assert code == 0
    result = json.loads(out.read_text())
    assert result["semirobust_version"] and result["seed"] == 0
    assert result["upper_at_least_local_lower"] is True
    product = 1.0
    for layer in result["layers"]:
        product *= layer["bound"]
    assert result["whole"]["value"] == pytest.approx(product)
    assert [part["a"] for part in result["splits"]] == list(range(1, 7))
    for part in result["splits"]:
        assert part["f_a"]["value"] * part["f_b"]["value"] == pytest.approx(product)
        assert part["fb_layers"] == 7 - part["a"]
    assert (
        main(
            [
                "lipschitz",
                "--checkpoint",
                str(checkpoint),
                "--json",
                str(out),
                "--fb-layers",
                "3",
                "--samples",
                "0",
            ]
        )
        == 0
    )
    single = json.loads(out.read_text())
    assert [part["a"] for part in single["splits"]] == [4] and single["local_lower"] is None


@pytest.mark.parametrize(
    "arguments, message",
    [
        (["--checkpoint", "/nonexistent/ckpt"], "no such directory"),
        (["--split", "9"], "outside the network"),
        (["--split", "0"], "argument --split: must be >= 1, got 0"),
        (["--samples", "-1"], "argument --samples/--limit: must be >= 0, got -1"),
    ],
)
def test_lipschitz_command_bad_input_is_one_line_and_exit_2(
    trained, tmp_path, capsys, arguments, message
):
    model, spec, _ = trained
    checkpoint = save_checkpoint(tmp_path / "ckpt", model, CheckpointConfig(spec, "digits", seed=0))
    argv = [
        "lipschitz",
        "--checkpoint",
        str(checkpoint),
        "--json",
        str(tmp_path / "o.json"),
        *arguments,
    ]
    try:  # refused at parse time (SystemExit) or below it (main returns 2)
        code = main(argv)
    except SystemExit as exited:
        code = exited.code
    assert code == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1
