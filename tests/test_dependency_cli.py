"""``semirobust rho`` and ``semirobust calibrate`` end to end on a tiny checkpoint."""

import json

import pytest
import torch

from semirobust.empirical.cli.main import main
from semirobust.empirical.data import load_dataset
from semirobust.empirical.model import ArchitectureSpec, build_model
from semirobust.empirical.model.checkpoint import CheckpointConfig, save_checkpoint


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    data = load_dataset("gaussian-mixture", seed=0)
    spec = ArchitectureSpec("mlp", data.input_shape, data.num_classes, data.mean, data.std, {"depth": 3, "width": 8})
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("ckpt") / "mlp"
    save_checkpoint(path, build_model(spec), CheckpointConfig(spec, "gaussian-mixture", seed=0))
    return path


def test_rho_writes_one_measurement_and_baseline_per_pair(checkpoint, tmp_path, capsys):
    out = tmp_path / "rho.json"
    code = main([
        "rho", "--checkpoint", str(checkpoint), "--split", "2", "--estimator", "ksg", "--eps", "0.05",
        "--samples", "240", "--replicates", "5", "--permutations", "2", "--device", "cpu", "--json", str(out),
    ])
    assert code == 0
    result = json.loads(out.read_text())
    assert result["semirobust_version"] and result["seed"] == 0 and result["arguments"]["estimator"] == "ksg"
    assert result["split"] == {"a": 2, "n": 4, "fb_layers": 2}
    assert result["attack"]["attack"] == "pgd" and result["attack"]["eps"] == 0.05
    assert [p["j"] for p in result["pairs"]] == [3, 4]
    for pair in result["pairs"]:
        rho, independent = pair["rho"], pair["independent"]
        assert rho["kind"] == "estimate" and rho["unit"] == "bits" and rho["estimator"] == "ksg"
        assert rho["interval"][0] <= rho["value"] <= rho["interval"][1]
        assert sum(rho["settings"]["n_per_class"].values()) == 240
        assert independent["name"] == rho["name"] + "_independent"
    assert "rho_3" in capsys.readouterr().out


def test_rho_takes_settings_and_clean_inputs(checkpoint, tmp_path):
    out = tmp_path / "rho.json"
    code = main([
        "rho", "--checkpoint", str(checkpoint), "--fb-layers", "1", "--estimator", "edge", "--attack", "none",
        "--setting", "combine=mean", "--setting", "ensemble=4", "--unit", "nats", "--samples", "200",
        "--replicates", "0", "--permutations", "0", "--device", "cpu", "--json", str(out),
    ])
    assert code == 0
    (pair,) = json.loads(out.read_text())["pairs"]
    assert pair["rho"]["settings"]["combine"] == "mean" and pair["rho"]["settings"]["ensemble"] == 4
    assert pair["rho"]["unit"] == "nats" and pair["independent"] is None


def test_rho_with_the_authors_edge_and_their_defaults(checkpoint, tmp_path):
    """``--setting`` values are JSON, so the authors' own defaults can be asked for."""
    out = tmp_path / "rho.json"
    code = main([
        "rho", "--checkpoint", str(checkpoint), "--fb-layers", "1", "--estimator", "edge-authors", "--attack", "none",
        "--setting", "ensemble=10", "--setting", "normalize_epsilon=true", "--setting", "shifts=grid",
        "--samples", "200", "--replicates", "0", "--permutations", "1", "--device", "cpu", "--json", str(out),
    ])
    assert code == 0
    (pair,) = json.loads(out.read_text())["pairs"]
    settings = pair["rho"]["settings"]
    assert settings["normalize_epsilon"] is True and settings["ensemble"] == 10 and settings["shifts"] == "grid"
    assert settings["standardised"].startswith("none") and pair["rho"]["unit"] == "bits"
    assert 0.001 <= pair["independent"]["value"] and 0.001 <= pair["rho"]["value"] <= 10


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--split", "9"], "outside the network"),
        (["--split", "2", "--setting", "k=0"], "k=0"),
        (["--split", "2", "--setting", "nonsense"], "KEY=VALUE"),
        (["--split", "2", "--estimator", "cka", "--unit", "bits"], "dimensionless"),
    ],
)
def test_rho_bad_input_is_one_line_and_exit_2(checkpoint, tmp_path, capsys, extra, message):
    code = main(["rho", "--checkpoint", str(checkpoint), *extra, "--samples", "120", "--replicates", "0",
                 "--attack", "none", "--device", "cpu", "--json", str(tmp_path / "x.json")])
    err = capsys.readouterr().err
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1


def test_calibrate_writes_table_and_rows(tmp_path):
    markdown, rows = tmp_path / "t.md", tmp_path / "r.json"
    code = main(["calibrate", "--estimators", "gaussian", "--n", "300", "--repeats", "2", "--quiet",
                 "--device", "cpu", "--markdown", str(markdown), "--json", str(rows)])
    assert code == 0
    assert markdown.read_text().startswith("| family | case | d | truth (nats) | gaussian |")
    data = json.loads(rows.read_text())
    assert data["arguments"]["n"] == 300
    gaussian_rows = [r for r in data["rows"] if r["family"] == "gaussian" and r["d"] == 4 and r["case"] == "r=0.9"]
    assert abs(gaussian_rows[0]["relative_bias"]) < 0.1
