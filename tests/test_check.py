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


def test_every_figure_is_also_a_vector_pdf(report):
    """Each PNG has a PDF beside it, drawn with vector paths (no embedded raster image)."""
    pngs = sorted((report / "plots").glob("*.png"))
    assert len(pngs) == 3
    for png in pngs:
        pdf = png.with_suffix(".pdf").read_bytes()
        assert pdf.startswith(b"%PDF-") and b"/Subtype /Image" not in pdf, png.name
        assert len(pdf) > 1000
    assert not list((report / "plots").glob(".*")), "a temporary plot file was left behind"


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
    assert sorted(p.name for p in (out / "plots").iterdir()) == [
        "bounds_across_splits.pdf", "bounds_across_splits.png", "rho_per_pair.pdf", "rho_per_pair.png"]


def test_run_check_returns_typed_measurements_and_verdicts():
    """The study's result holds Measurements and Verdicts (dictionaries only at the JSON
    boundary); L2 and T3 carry theory's not-applicable status with a reason, and T2's level
    at every split is a measurement with its kind, estimator and interval."""
    from semirobust.empirical.attacks import AttackSettings
    from semirobust.empirical.attacks.threat import ThreatModel
    from semirobust.empirical.studies.check import CheckSettings, run_check
    from semirobust.theory.measurement import Kind, Measurement
    from semirobust.theory.verdict import Status, Verdict

    data = load_dataset("gaussian-mixture")
    spec = ArchitectureSpec("mlp", data.input_shape, data.num_classes, data.mean, data.std, {"depth": 2, "width": 8})
    model = build_model(spec)
    settings = CheckSettings(a=2, threat=ThreatModel("linf", 0.02), n=60, attack=AttackSettings(steps=2, restarts=1))
    result = run_check(model, data.x_test, data.y_test, settings, device=torch.device("cpu"))
    assert all(isinstance(v, Verdict) for v in result.verdicts.values())
    for name in ("L2", "T3"):
        assert result.verdicts[name].status is Status.NOT_APPLICABLE and result.verdicts[name].reason
    for entry in result.per_split:
        level = entry.t2_level
        assert isinstance(level, Measurement) and level.kind is Kind.ESTIMATE
        assert level.interval[0] <= level.value <= level.interval[1] and level.estimator
        assert level.unit == "logits + bits (C6)"
    assert all(isinstance(m, Measurement) for ms in result.measurements.values() for m in ms)


def test_steps_restarts_and_seed_reach_every_attacked_number(report, tmp_path):
    """``check --steps 5 --restarts 1 --seed 3``: recorded once for the run, and in each
    measurement an attack produced (robust accuracy, the sandwich's attacked margin and its
    copies, the attacked Delta_a and the transfer estimate at every split, T2's level, rho
    on the attacked inputs), with the attacks' own records agreeing."""
    out = tmp_path / "out"
    assert main(["check", "--checkpoint", str(report.parent / "ckpt"), "--split", "2", "--out", str(out),
                 "--samples", "120", "--steps", "5", "--restarts", "1", "--seed", "3", "--device", "cpu"]) == 0
    data = json.loads((out / "report.json").read_text())
    wanted = {"steps": 5, "restarts": 1, "seed": 3}
    assert data["attack_settings"] == wanted and data["settings"]["attack"] == wanted
    attacked = [data["robust_accuracy"]]
    attacked += [m for ms in data["measurements"].values() for m in ms
                 if m["kind"] == "attack" or m["name"].startswith("rho_") or m["name"] == "gamma_transfer_estimate"]
    for split in data["per_split"]:
        attacked += [split["T2_bound"], split["Delta_a_attacked"], split["gamma_transfer_estimate"]]
    attacked += [r for rho in data["rho"] for r in (rho, rho["independent"])]
    assert len(attacked) > 20
    for m in attacked:
        assert m["settings"]["attack_settings"] == wanted, m["name"]
    own = data["robust_accuracy"]["settings"]
    assert (own["steps"], own["restarts"], own["seed"]) == (5, 1, 3)
    sandwich = data["measurements"]["gamma_whole"][1]["settings"]["attack"]
    assert (sandwich["steps"], sandwich["restarts"], sandwich["seed"]) == (5, 1, 3)
    assert sandwich["objective"].startswith("targeted_margin")  # margin PGD once per target class
    delta = data["per_split"][0]["Delta_a_attacked"]["settings"]
    assert (delta["pgd_steps"], delta["pgd_restarts"], delta["seed"]) == (5, 1, 3)
    assert data["rho"][0]["settings"]["attack"]["steps"] == 5
    # nothing certified carries attack settings it does not depend on
    assert "attack_settings" not in data["measurements"]["gamma_whole"][0]["settings"]


def test_report_json_records_the_environment(report):
    """torch and numpy versions and torch's thread count, beside the version, arguments and seed."""
    import numpy

    data = json.loads((report / "report.json").read_text())
    assert data["torch_version"] == torch.__version__ and data["numpy_version"] == numpy.__version__
    assert data["torch_threads"] == torch.get_num_threads() and data["torch_threads"] >= 1
    assert data["command"] == "check" and data["arguments"]["samples"] == 120
