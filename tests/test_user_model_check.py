"""Users' own models (classes with a ``forward``, tests/user_models.py, and the README's
examples/my_model.py) checked end to end on small random weights: through the API (run_check
on the module itself: certified bounds, certified <= attacked on every sample), through the
CLI (``--model package.module:callable --weights FILE --dataset D`` for check and every other
command that takes it, and a checkpoint whose config.json names a factory), a model with
operations that have no bound rule (each named before any work), and every bad input as one
line and exit 2."""

from __future__ import annotations

import importlib
import json
import re
from pathlib import Path

import pytest
import torch
import user_models
from cli_runner import run_cli
from safetensors.torch import save_file

from semirobust.empirical.attacks import AttackSettings
from semirobust.empirical.attacks.threat import ThreatModel
from semirobust.empirical.data import load_dataset
from semirobust.empirical.model.checkpoint import CheckpointConfig, save_checkpoint
from semirobust.empirical.model.factory import FactorySpec
from semirobust.empirical.model.graph import graph_view
from semirobust.empirical.studies.check import CheckSettings, run_check

ROOT = Path(__file__).resolve().parents[1]
#: name: (factory, its keyword arguments for digits' 1x8x8 images, at small width)
DIGITS_MODELS = {
    "resnet18": ("user_models:resnet18", {"width": 4, "in_channels": 1}),
    "preact_resnet18": ("user_models:preact_resnet18", {"width": 2, "in_channels": 1}),
    "wrn_28_10": ("user_models:wrn_28_10", {"widen_factor": 1, "base": 2, "in_channels": 1}),
    "functional": ("user_models:FunctionalNet", {"width": 4}),
    "readme_example": ("examples.my_model:SmallResNet", {"width": 4}),
}
ALL_VERDICTS = {"T1", "L1", "T2", "LIP (certified Delta_a)", "LIP (attacked Delta_a)", "L2", "T3"}
FAST = ["--samples", "120", "--steps", "2", "--restarts", "1", "--device", "cpu"]


def built(name: str) -> torch.nn.Module:
    reference, kwargs = DIGITS_MODELS[name]
    module, _, factory = reference.partition(":")
    torch.manual_seed(0)
    return getattr(importlib.import_module(module), factory)(**kwargs).eval()


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits")


@pytest.mark.parametrize("name", sorted(DIGITS_MODELS))
def test_check_certifies_the_module_itself_through_the_api(name, digits):
    """Certified bounds on a model written as a class: the certified gamma, the Lipschitz
    bound, Delta_a and the transfer bound at every split, LIP judged on them; and on every
    sample the certified numbers below the attacked ones (the gamma sandwich, and LIP's
    certified transfer bound against the attack's margin)."""
    model = built(name)
    split = graph_view(model).valid_splits[1]
    settings = CheckSettings(a=split, threat=ThreatModel("linf", 0.05), n=120,
                             attack=AttackSettings(steps=2, restarts=1, seed=0))
    result = run_check(model, digits.x_test, digits.y_test, settings, device=torch.device("cpu"))
    assert result.n_layers == graph_view(model).n and set(result.verdicts) == ALL_VERDICTS
    assert [pair.j for pair in result.rho] == list(range(2, result.n_layers + 1))
    assert result.certified and result.lipschitz.certified, result.uncertifiable
    kinds = {name: [m.kind.value for m in measured] for name, measured in result.measurements.items()}
    assert kinds["gamma_whole"] == ["certified", "attack"] and kinds["L_b"] == ["certified"]
    assert kinds["Delta_a"] == ["certified", "attack"] and kinds["gamma_transfer"] == ["certified", "estimate"]
    assert [entry.a for entry in result.per_split] == graph_view(model).valid_splits
    for entry in result.per_split:
        assert entry.transfer["L_b"].kind.value == "certified", entry.a
        assert entry.transfer["Delta_a_certified"].value >= entry.transfer["Delta_a_attacked"].value, entry.a
    assert result.sandwich_violations == 0  # certified gamma <= attacked gamma on every sample
    per_sample = result.per_sample["LIP (certified Delta_a)"]
    assert per_sample.samples == 120 and per_sample.failing == ()  # and the certified transfer bound
    assert result.verdicts["LIP (certified Delta_a)"].status.value != "not applicable"


def test_the_must_show_command_writes_the_report_with_every_verdict(tmp_path, capsys, monkeypatch):
    """``semirobust check --model tests.user_models:resnet18 --weights W --dataset digits``
    from the repository root: the module is found from the current directory, as python -m
    finds it."""
    torch.save(built("resnet18").state_dict(), tmp_path / "w.pt")
    monkeypatch.chdir(ROOT)
    code, err = run_cli(["check", "--model", "tests.user_models:resnet18",
                         "--model-kwargs", json.dumps(DIGITS_MODELS["resnet18"][1]),
                         "--weights", str(tmp_path / "w.pt"), "--dataset", "digits", "--split", "3",
                         "--out", str(tmp_path / "out"), *FAST], capsys)
    assert code == 0, err
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert set(report["verdicts"]) == ALL_VERDICTS
    assert report["split"] == {"a": 3, "n": 18, "fb_layers": 15}
    assert report["arguments"]["model"] == "tests.user_models:resnet18"
    assert report["arguments"]["weights"] == str(tmp_path / "w.pt")
    assert "Model `tests.user_models:resnet18`" in (tmp_path / "out" / "report.md").read_text()
    assert report["certification"] == "certified bounds and Lipschitz bounds computed"
    assert len(report["lipschitz_layers"]) == 10 and all(f["certified"] for f in report["lipschitz_layers"])
    assert report["lipschitz_layers"][1]["layer"] == "GraphModule (layer1.0.conv1, layer1.0.conv2)"
    assert [m["kind"] for m in report["measurements"]["gamma_whole"]] == ["certified", "attack"]
    assert [s["a"] for s in report["per_split"]] == [1, 3, 5, 7, 9, 11, 13, 15, 17]
    assert all(s["L_b"]["kind"] == "certified" for s in report["per_split"])
    assert report["sandwich_violations"] == 0
    lip = report["verdicts"]["LIP (certified Delta_a)"]
    assert lip["status"] != "not applicable" and lip["per_sample"]["failing_samples"] == []


def test_a_model_with_operations_without_bound_rules_names_each_before_any_work(tmp_path, capsys, monkeypatch):
    """Softmax attention: one line per operation without a bound rule (its node and op), on
    stderr before the first measurement, then everything that needs no certificate."""
    from semirobust.empirical.cli.commands import check as check_command

    torch.manual_seed(0)
    torch.save(user_models.AttentionNet().state_dict(), tmp_path / "w.pt")
    said_before_work = []

    def recording(*args, **kwargs):
        said_before_work.extend(capsys.readouterr().err.strip().splitlines())
        return run_check(*args, **kwargs)

    monkeypatch.setattr(check_command, "run_check", recording)
    code, err = run_cli(["check", "--model", "user_models:AttentionNet", "--weights", str(tmp_path / "w.pt"),
                         "--dataset", "digits", "--split", "1", "--out", str(tmp_path / "out"), *FAST], capsys)
    assert code == 0, err
    assert said_before_work == [
        "semirobust check: no certified bounds: 3 operation(s) have no bound rule; measuring what needs no certificate",
        "semirobust check: no bound rule: stage 1 matmul: call_function matmul",
        "semirobust check: no bound rule: stage 1 softmax: call_function torch.softmax",
        "semirobust check: no bound rule: stage 1 matmul_1: call_function matmul",
    ]
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert report["certification"].startswith("no certified bounds: no bound rule for 3 operation(s): stage 1 matmul")
    assert [m["kind"] for m in report["measurements"]["gamma_whole"]] == ["attack"]
    assert report["lipschitz_layers"] == [] and set(report["verdicts"]) == ALL_VERDICTS
    assert report["verdicts"]["LIP (certified Delta_a)"]["status"] == "not applicable"
    assert [r["pair"] for r in report["rho"]] == [[1, 2], [2, 3], [3, 4], [4, 5]]
    # lipschitz has nothing to measure without the rules: one line naming them all, exit 2
    code, err = run_cli(["lipschitz", "--model", "user_models:AttentionNet", "--weights", str(tmp_path / "w.pt"),
                         "--dataset", "digits", "--json", str(tmp_path / "l.json"), "--device", "cpu"], capsys)
    expected = ("semirobust lipschitz: error: the Lipschitz bound has no rule for 3 graph node(s) or layer(s): "
                "stage 1 matmul: call_function matmul; stage 1 softmax: call_function torch.softmax; "
                "stage 1 matmul_1: call_function matmul")
    assert code == 2 and err == [expected]


def test_every_other_command_takes_a_user_model(tmp_path, capsys):
    """lipschitz (certified per-stage factors and parts at every split, above the local lower
    bound), rho, attack and s1 on the torchvision-style ResNet-18, from --model --weights."""
    torch.save(built("resnet18").state_dict(), tmp_path / "w.pt")
    model = ["--model", "user_models:resnet18", "--model-kwargs", json.dumps(DIGITS_MODELS["resnet18"][1]),
             "--weights", str(tmp_path / "w.pt"), "--dataset", "digits", "--device", "cpu"]
    commands = {
        "lipschitz": ["--samples", "8"],
        "rho": ["--split", "3", "--samples", "120", "--steps", "2"],
        "attack": ["--attack", "pgd", "--eps", "0.03", "--samples", "50"],
        "s1": ["--split", "3", "--eps", "0.03", "--steps", "2"],
    }
    for command, options in commands.items():
        code, err = run_cli([command, *model, *options, "--json", str(tmp_path / f"{command}.json")], capsys)
        assert code == 0, (command, err)
    lipschitz = json.loads((tmp_path / "lipschitz.json").read_text())
    assert lipschitz["weight_layers"] == 18 and [s["a"] for s in lipschitz["splits"]] == [1, 3, 5, 7, 9, 11, 13, 15, 17]
    assert lipschitz["whole"]["kind"] == "certified" and lipschitz["upper_at_least_local_lower"] is True
    for part in lipschitz["splits"]:
        assert part["f_a"]["kind"] == part["f_b"]["kind"] == "certified", part["a"]
    rho = json.loads((tmp_path / "rho.json").read_text())
    assert rho["split"] == {"a": 3, "fb_layers": 15, "n": 18} and len(rho["pairs"]) == 15
    attack = json.loads((tmp_path / "attack.json").read_text())
    assert attack["checkpoint"]["architecture"] == "user_models:resnet18"
    s1 = json.loads((tmp_path / "s1.json").read_text())
    assert s1["split"] == {"a": 3, "fb_layers": 15, "n": 18} and s1["checkpoint"] == str(tmp_path / "w.pt")


def test_a_checkpoint_whose_config_names_a_factory_opens_as_its_stages(tmp_path, capsys):
    model = built("functional")
    spec = FactorySpec("user_models:FunctionalNet", (1, 8, 8), 10, DIGITS_MODELS["functional"][1])
    save_checkpoint(tmp_path / "ckpt", model, CheckpointConfig(spec, "digits", seed=0))
    assert json.loads((tmp_path / "ckpt" / "config.json").read_text())["architecture"]["factory"] == spec.factory
    code, err = run_cli(["attack", "--checkpoint", str(tmp_path / "ckpt"), "--attack", "fgsm", "--eps", "0.01",
                         "--samples", "50", "--json", str(tmp_path / "attack.json"), "--device", "cpu"], capsys)
    assert code == 0, err
    result = json.loads((tmp_path / "attack.json").read_text())
    with torch.no_grad():
        expected = (model(load_dataset("digits").x_test[:50]).argmax(1) == load_dataset("digits").y_test[:50])
    assert result["clean_accuracy"]["value"] == pytest.approx(float(expected.float().mean()))


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    """Weights files of resnet18 at width 4: right, with a renamed key, of another width, for
    three-channel images, for five classes; and of the data-dependent model."""
    root = tmp_path_factory.mktemp("weights")
    state = built("resnet18").state_dict()
    torch.save(state, root / "right.pt")
    renamed = dict(state)
    renamed["head.weight"] = renamed.pop("fc.weight")
    save_file({k: v.contiguous() for k, v in renamed.items()}, str(root / "renamed.safetensors"))
    torch.save(user_models.resnet18(width=8, in_channels=1).state_dict(), root / "wider.pt")
    torch.save(user_models.resnet18(width=4).state_dict(), root / "rgb.pt")
    torch.save(user_models.resnet18(num_classes=5, width=4, in_channels=1).state_dict(), root / "five.pt")
    torch.save(user_models.BranchesOnValues().state_dict(), root / "branches.pt")
    return root


RESNET = ["--model", "user_models:resnet18", "--model-kwargs", json.dumps(DIGITS_MODELS["resnet18"][1])]
BAD_INPUTS = {
    # name: (the options in place of --checkpoint, the message's telling part)
    "cannot be traced": (["--model", "user_models:BranchesOnValues", "--weights", "branches.pt"],
                         r"model BranchesOnValues cannot be traced by torch\.fx: .* at .*user_models\.py:\d+: "
                         + r"if x\.sum\(\) > 0:"),
    "wrong key": ([*RESNET, "--weights", "renamed.safetensors"],
                  r"weights do not match the model user_models:resnet18 builds: renamed\.safetensors lacks "
                  + r"1 tensor the architecture has \(fc\.weight\) and holds 1 tensor the architecture does not "
                  + r"have \(head\.weight\)"),
    "shape mismatch": ([*RESNET, "--weights", "wider.pt"], r"tensor conv1\.weight has shape \(8, 1, 7, 7\) in wider\.pt"),
    "module not importable": (["--model", "no_such_module:net", "--weights", "right.pt"],
                              r"no module named 'no_such_module' \(modules are found from the current directory"),
    "callable missing": (["--model", "user_models:resnet99", "--weights", "right.pt"],
                         r"module user_models has no attribute 'resnet99'"),
    "not package.module:callable": (["--model", "user_models.resnet18", "--weights", "right.pt"],
                                    r"expected package\.module:callable"),
    "kwargs not JSON": (["--model", "user_models:resnet18", "--model-kwargs", "{width: 4}", "--weights", "right.pt"],
                        r"--model-kwargs is not JSON"),
    "kwargs the factory does not take": (["--model", "user_models:resnet18", "--model-kwargs", '{"widht": 4}',
                                          "--weights", "right.pt"], r"unexpected keyword argument 'widht'"),
    "input contract: input shape": (["--model", "user_models:resnet18", "--model-kwargs", '{"width": 4}',
                                     "--weights", "rgb.pt"],
                                    r"on the first batch of digits \(inputs of shape \(1, 8, 8\)\): RuntimeError"),
    "input contract: classes": (["--model", "user_models:resnet18", "--weights", "five.pt", "--model-kwargs",
                                 '{"num_classes": 5, "width": 4, "in_channels": 1}'],
                                r"the model returns \(16, 5\), expected logits of shape \(16, 10\) for 10 classes"),
    "weights missing": ([*RESNET, "--weights", "absent.pt"], r"--weights .*absent\.pt: no such file"),
    "no weights": ([*RESNET], r"--model needs --weights \(the weights file"),
}


@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
def test_bad_user_model_input_is_one_line_and_exit_2(case, weights, tmp_path, capsys):
    options, message = BAD_INPUTS[case]
    options = [str(weights / o) if o.endswith((".pt", ".safetensors")) else o for o in options]
    code, err = run_cli(["check", *options, "--dataset", "digits", "--split", "1", "--out", str(tmp_path / "out"), *FAST], capsys)
    assert code == 2 and len(err) == 1, err
    assert re.search(message, err[0]), err[0]
    assert not (tmp_path / "out" / "report.json").exists()


def test_weights_and_dataset_go_only_with_model(weights, tmp_path, capsys):
    code, err = run_cli(["check", "--checkpoint", str(tmp_path), "--weights", str(weights / "right.pt"),
                         "--dataset", "digits", "--split", "1", "--out", str(tmp_path / "out")], capsys)
    assert code == 2 and err == ["semirobust check: error: --weights, --dataset go with --model; "
                                 + "a --checkpoint names its own weights and dataset"]
    code, err = run_cli(["check", "--checkpoint", str(tmp_path), "--model", "user_models:resnet18",
                         "--split", "1", "--out", str(tmp_path / "out")], capsys)
    assert code == 2 and "not allowed with argument" in err[-1]


class Overflowing(torch.nn.Module):
    """Finite weights, infinite logits (float32 overflows past 3.4e38)."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = torch.nn.Linear(64, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.flatten(x, 1)) * 1e39


class CountsItsCalls(torch.nn.Module):
    """A forward whose result depends on Python state: tracing bakes in the count it saw."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = torch.nn.Linear(64, 10)
        self.calls = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        return self.fc(torch.flatten(x, 1)) * self.calls


def test_a_model_whose_logits_are_not_finite_or_not_its_graphs_breaks_the_contract(digits):
    from semirobust.empirical.model.factory import check_input_contract
    from semirobust.empirical.model.graph_stages import as_stages
    from semirobust.errors import BadInput

    model = Overflowing().eval()
    spec = FactorySpec("tests:Overflowing", (1, 8, 8), 10)
    with pytest.raises(BadInput, match=r"on the first batch of digits: the model's outputs are not all finite"):
        check_input_contract(model, as_stages(model), digits.x_test[:16], spec, "digits")
    model = CountsItsCalls().eval()
    with pytest.raises(BadInput, match=r"its traced graph does not reproduce its forward \(largest difference"):
        check_input_contract(model, as_stages(model), digits.x_test[:16], spec, "digits")
    check_input_contract(built("functional"), as_stages(built("functional")), digits.x_test[:16],
                         FactorySpec("user_models:FunctionalNet", (1, 8, 8), 10), "digits")
