"""``semirobust check`` on a small trained network: every verdict with its evidence."""

import json

import pytest
import torch

from semirobust.empirical.cli.main import main
from semirobust.empirical.data import load_dataset
from semirobust.empirical.model import ArchitectureSpec, build_model
from semirobust.empirical.model.checkpoint import CheckpointConfig, save_checkpoint
from semirobust.empirical.studies.training import TrainRecipe, train


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    root = tmp_path_factory.mktemp("check")
    data = load_dataset("gaussian-mixture")
    spec = ArchitectureSpec("mlp", data.input_shape, data.num_classes, data.mean, data.std, {"depth": 3, "width": 16})
    torch.manual_seed(0)
    model = build_model(spec)
    recipe = TrainRecipe(epochs=3, lr=0.05, batch_size=128, adversarial=True, eps=0.02, steps=3)
    train(model, data, recipe, progress=False)
    save_checkpoint(root / "ckpt", model, CheckpointConfig(spec, "gaussian-mixture", seed=0, recipe=recipe.to_dict()))
    code = main(["check", "--checkpoint", str(root / "ckpt"), "--split", "2", "--out", str(root / "out"),
                 "--samples", "120", "--steps", "10", "--device", "cpu"])
    assert code == 0
    return root / "out"


def test_every_result_gets_a_verdict_with_evidence(report):
    data = json.loads((report / "report.json").read_text())
    assert set(data["verdicts"]) == {"T1", "L1", "T2", "LIP (certified Delta_a)", "LIP (attacked Delta_a)", "L2", "T3"}
    verdicts = data["verdicts"]
    for name in ("T1", "L1", "T2"):
        assert verdicts[name]["conclusion"] and verdicts[name]["decided_by"], name
        assert verdicts[name]["scope"] == "test set" and verdicts[name]["population"]["status"]
    # canonical readouts: A2's margin gap is exactly 0, so T2's premises certainly fail
    assert verdicts["T2"]["status"] == "premises unmet"
    a2 = [p for p in verdicts["T2"]["premises"] if p["label"].startswith("A2")]
    assert a2 and all(p["status"] == "violated" and p["decided_by"] == "certified" for p in a2)
    # T1 with canonical readouts: gamma_i and gamma_j are one measurement, so the
    # conclusion holds by identity; the premise gamma_j > 0 rests on its sandwich
    assert all(c["status"] == "holds" and c["decided_by"].startswith("identity")
               for c in verdicts["T1"]["conclusion"])
    # no "holds" anywhere rests on an attack value or an estimate
    for verdict in verdicts.values():
        if verdict["status"] == "holds":
            assert not {"attack", "estimate"} & set(verdict["decided_by"].split(" and "))
    assert data["verdicts"]["L2"]["status"] == "not applicable"
    assert data["semirobust_version"] and data["seed"] == 0


def test_certified_never_exceeds_attacked_and_the_sound_bound_is_never_violated(report):
    data = json.loads((report / "report.json").read_text())
    assert data["sandwich_violations"] == 0
    certified, attacked = data["measurements"]["gamma_whole"]
    assert certified["kind"] == "certified" and attacked["kind"] == "attack"
    assert certified["value"] <= attacked["value"]
    lip = data["verdicts"]["LIP (certified Delta_a)"]
    # the clean margin is exact on the test set, so LIP is decided by sound ends: it holds
    # or (a bug) is violated; here it must not be violated, on the mean or on any sample
    assert lip["status"] != "violated" and lip["per_sample"]["failing_samples"] == []
    assert lip["per_sample"]["samples"] == data["samples"]
    assert next(m for m in lip["measurements"] if m["name"] == "clean_margin")["kind"] == "exact"
    assert lip["population"]["status"] in {"supported", "contradicted", "inconclusive"}
    for split in data["per_split"]:
        assert split["gamma_transfer_certified"]["value"] <= attacked["value"]


def test_report_and_plots_are_written(report):
    text = (report / "report.md").read_text()
    assert "## Verdicts" in text and "T2" in text
    for name in ("bounds_across_splits", "rho_per_pair", "lipschitz_per_layer"):
        assert (report / "plots" / f"{name}.png").stat().st_size > 1000


def test_split_outside_the_network_is_one_line_and_exit_2(report, capsys):
    checkpoint = report.parent / "ckpt"
    assert main(["check", "--checkpoint", str(checkpoint), "--split", "9", "--out", str(report.parent / "x")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "outside the network" in err[0]


def test_a_model_bound_propagation_cannot_handle_gets_every_uncertified_measurement(tmp_path):
    """A ViT: no interval or Lipschitz rule for attention, so nothing is certified, the
    Lipschitz results are not applicable (with the reason), and the rest is measured."""
    data = load_dataset("digits")
    spec = ArchitectureSpec("vit", data.input_shape, data.num_classes, data.mean, data.std,
                            {"depth": 2, "width": 16, "heads": 2, "mlp_width": 32, "patch": 4})
    torch.manual_seed(0)
    save_checkpoint(tmp_path / "vit", build_model(spec), CheckpointConfig(spec, "digits", seed=0))
    out = tmp_path / "out"
    assert main(["check", "--checkpoint", str(tmp_path / "vit"), "--split", "2", "--out", str(out),
                 "--samples", "150", "--steps", "5", "--device", "cpu"]) == 0
    data = json.loads((out / "report.json").read_text())
    assert "no rule for layer type" in data["certification"] and data["lipschitz_layers"] == []
    assert [m["kind"] for m in data["measurements"]["gamma_whole"]] == ["attack"]
    for label in ("LIP (certified Delta_a)", "LIP (attacked Delta_a)"):
        assert data["verdicts"][label]["status"] == "not applicable"
        assert "Lipschitz bound" in data["verdicts"][label]["reason"]
    # nothing certified: the canonical A2 gap (an identity) still leaves T2's premises
    # certainly unmet, and no verdict holds on the attack values alone
    assert data["verdicts"]["T2"]["status"] == "premises unmet"
    for r in ("T1", "L1", "T2"):
        verdict = data["verdicts"][r]
        if verdict["status"] == "holds":
            assert not {"attack", "estimate"} & set(verdict["decided_by"].split(" and ")), r
    assert [r["pair"] for r in data["rho"]] == [[1, 2], [2, 3], [3, 4]]
    assert "Nothing here is certified" in (out / "report.md").read_text()
    assert sorted(p.name for p in (out / "plots").iterdir()) == ["bounds_across_splits.png", "rho_per_pair.png"]
