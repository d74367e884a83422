"""``semirobust attack``: the JSON contract, the ladder, and bad input (exit 2, one line)."""

import json

import pytest
from attack_fixtures import trained_digits_model

from semirobust.empirical.cli.main import main
from semirobust.empirical.model.checkpoint import CheckpointConfig, save_checkpoint


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    model, spec, _ = trained_digits_model("digits-cnn", epochs=1, width=4)
    return save_checkpoint(
        tmp_path_factory.mktemp("ckpt") / "digits", model, CheckpointConfig(spec, "digits", seed=0)
    )


def attack(checkpoint, tmp_path, *extra):
    out = tmp_path / "out.json"
    code = main(
        [
            "attack",
            "--checkpoint",
            str(checkpoint),
            "--json",
            str(out),
            "--limit",
            "60",
            "--device",
            "cpu",
            *extra,
        ]
    )
    return code, (json.loads(out.read_text()) if out.exists() else None)


def test_pgd_writes_the_documented_json(checkpoint, tmp_path):
    code, result = attack(
        checkpoint, tmp_path, "--attack", "pgd", "--eps", "0.1", "--per-sample", "--seed", "3"
    )
    assert code == 0
    assert {
        "clean_accuracy",
        "robust_accuracy",
        "n",
        "attack",
        "eps",
        "norm",
        "semirobust_version",
        "arguments",
        "seed",
    } <= set(result)
    assert (result["attack"], result["eps"], result["norm"], result["n"], result["seed"]) == (
        "pgd",
        0.1,
        "linf",
        60,
        3,
    )
    robust, clean = result["robust_accuracy"], result["clean_accuracy"]
    assert {"value", "interval", "kind", "estimator", "settings"} <= set(robust)
    assert robust["kind"] == "attack" and clean["kind"] == "estimate"
    assert robust["value"] <= clean["value"]
    assert robust["settings"]["steps"] == 10 and robust["settings"]["seed"] == 3
    assert len(result["per_sample"]["adversarial_margin"]) == 60
    # PGD on the cross-entropy does not minimise the margin: no E[inf m] estimate from it
    assert result["expected_adversarial_margin"] is None
    assert "does not minimise the margin" in result["expected_adversarial_margin_note"]


@pytest.mark.parametrize(("name", "objective", "reported"), [
    ("pgd", "margin", True), ("pgd", "ce", False), ("cw", "margin", False), ("autoattack", "margin", False),
])
def test_the_expected_margin_comes_only_from_attacks_that_minimise_it(name, objective, reported):
    from semirobust.empirical.cli.commands.attack import margin_not_measured

    assert (margin_not_measured(name, objective) is None) == reported


def test_pgd_on_the_margin_reports_the_expected_margin(checkpoint, tmp_path):
    code, result = attack(checkpoint, tmp_path, "--attack", "pgd", "--eps", "0.1", "--objective", "margin")
    assert code == 0
    margin = result["expected_adversarial_margin"]
    assert margin["unit"] == "logits" and margin["kind"] == "attack"
    assert "expected_adversarial_margin_note" not in result


@pytest.mark.parametrize(
    "name, norm",
    [("fgsm", "l2"), ("ifgsm", "linf"), ("cw", "l2"), ("cw", "linf"), ("apgd-ce", "linf")],
)
def test_every_attack_runs_from_the_command_line_and_eps_zero_gives_clean_accuracy(
    checkpoint, tmp_path, name, norm
):
    code, result = attack(
        checkpoint, tmp_path, "--attack", name, "--eps", "0", "--norm", norm, "--steps", "3"
    )
    assert code == 0
    assert result["robust_accuracy"]["value"] == result["clean_accuracy"]["value"]


def test_the_ladder_reports_weaker_attacks_and_half_eps_in_order(checkpoint, tmp_path):
    code, result = attack(checkpoint, tmp_path, "--attack", "pgd", "--eps", "0.1", "--ladder")
    assert code == 0
    by_attack = result["ladder"]["by_attack"]
    assert [row["attack"] for row in by_attack] == ["fgsm", "ifgsm", "pgd"]
    assert [row["eps"] for row in result["ladder"]["by_eps"]] == [0.05, 0.1]
    values = [row["robust_accuracy"] for row in by_attack]
    rises = sum(b > a for a, b in zip(values, values[1:]))
    flagged = [f for f in result["flags"] if f["code"] == "not-monotone" and "ladder" in f["message"]]
    assert len(flagged) == rises
    assert result["stage_robust_accuracy"] == [{"stage": "pgd", "robust_accuracy": values[-1]}]


def tampered(checkpoint, tmp_path):
    copy = tmp_path / "tampered"
    copy.mkdir()
    for item in checkpoint.iterdir():
        (copy / item.name).write_bytes(item.read_bytes())
    config = json.loads((copy / "config.json").read_text())
    config["architecture"]["input_shape"] = [1, 16, 16]
    (copy / "config.json").write_text(json.dumps(config))
    return copy


@pytest.mark.parametrize(
    "case, message",
    [
        (
            lambda c, t: ["--checkpoint", "/nonexistent", "--attack", "pgd", "--eps", "0.1"],
            "no such directory",
        ),
        (
            lambda c, t: ["--checkpoint", str(tampered(c, t)), "--attack", "pgd", "--eps", "0.1"],
            "do not match the architecture",
        ),
        (
            lambda c, t: ["--checkpoint", str(c), "--attack", "pgd", "--eps", "-0.1"],
            "argument --eps: must be >= 0, got -0.1",
        ),
        (
            lambda c, t: ["--checkpoint", str(c), "--attack", "nope", "--eps", "0.1"],
            "argument --attack: 'nope'",
        ),
        (
            lambda c, t: ["--checkpoint", str(c), "--attack", "cw", "--eps", "nan"],
            "argument --eps: must be finite, got nan",
        ),
    ],
)
def test_bad_input_exits_2_with_one_line(checkpoint, tmp_path, capsys, case, message):
    """Bad values are refused at parse time (SystemExit) or below it (main returns 2)."""
    try:
        code = main(["attack", *case(checkpoint, tmp_path), "--json", str(tmp_path / "x.json")])
    except SystemExit as exited:
        code = exited.code
    err = capsys.readouterr().err
    assert code == 2
    assert len(err.strip().splitlines()) == 1 and message in err
    assert not (tmp_path / "x.json").exists()
