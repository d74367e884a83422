"""Every row of docs/bad_inputs.md: the input tried, the command, and what it gets (exit
code 2 and the exact stderr line for the CLI; BadInput with its message in the API).

The checkpoint is an untrained digits MLP written once per module (safetensors + config)."""

import json
import os

import pytest
import torch
from cli_runner import run_cli

from semirobust.empirical.attacks import AttackConfig, build_attack
from semirobust.empirical.attacks.evaluation import evaluate_attack
from semirobust.empirical.attacks.threat import ThreatModel
from semirobust.empirical.data import Dataset
from semirobust.empirical.dependency import class_conditional_rho
from semirobust.empirical.model import ArchitectureSpec, build_model
from semirobust.empirical.model.checkpoint import CheckpointConfig, save_checkpoint
from semirobust.errors import BadInput
from semirobust.testing.strategies import networks

SPEC = ArchitectureSpec("mlp", (1, 8, 8), 10, (0.3,), (0.4,), {"depth": 2, "width": 8})


@pytest.fixture
def checkpoint(tmp_path):
    torch.manual_seed(0)
    return save_checkpoint(tmp_path / "ckpt", build_model(SPEC), CheckpointConfig(SPEC, "digits", seed=0))



def attack_args(checkpoint, out, *extra: str) -> list[str]:
    return ["attack", "--checkpoint", str(checkpoint), "--attack", "pgd", "--eps", "0.1",
            "--json", str(out), "--device", "cpu", *extra]


# (row id, argv given CKPT and OUT, expected stderr line given CKPT)
CLI_ROWS = [
    ("nonexistent checkpoint",
     lambda c, o: attack_args(c.parent / "missing", o),
     lambda c: f"semirobust attack: error: checkpoint {c.parent / 'missing'}: no such directory "
               f"(expected config.json + model.safetensors)"),
    ("negative eps",
     lambda c, o: [*attack_args(c, o), "--eps", "-0.1"],
     lambda c: "semirobust attack: error: argument --eps: must be >= 0, got -0.1 (see --help)"),
    ("NaN eps",
     lambda c, o: ["rho", "--checkpoint", str(c), "--split", "1", "--eps", "nan", "--json", str(o)],
     lambda c: "semirobust rho: error: argument --eps: must be finite, got nan (see --help)"),
    ("unknown attack",
     lambda c, o: [*attack_args(c, o), "--attack", "nope"],
     lambda c: "semirobust attack: error: argument --attack: 'nope': expected one of apgd-ce, apgd-t, "
               "autoattack, cw, fab-t, fgsm, ifgsm, pgd, pgd-per-target, square (see --help)"),
    ("split outside the network",
     lambda c, o: ["lipschitz", "--checkpoint", str(c), "--split", "5", "--json", str(o), "--device", "cpu"],
     lambda c: "semirobust lipschitz: error: split --split 5 is outside the network: f_a must hold 1..2 "
               "of its 3 weight layers (f_b at least one)"),
    ("unknown estimator",
     lambda c, o: ["rho", "--checkpoint", str(c), "--split", "1", "--estimator", "nope", "--json", str(o)],
     lambda c: "semirobust rho: error: argument --estimator: invalid choice: 'nope' (choose from 'cka', "
               "'edge', 'edge-authors', 'gaussian', 'hsic', 'ksg', 'smoothed') (see --help)"),
    ("too few samples per class for the estimator",
     lambda c, o: ["rho", "--checkpoint", str(c), "--split", "1", "--samples", "5", "--attack", "none",
                   "--json", str(o), "--device", "cpu"],
     lambda c: "semirobust rho: error: class 4 has 1 samples; estimator 'ksg' needs at least 8 (twice the "
               "minimum, for the half-sampling interval) at dimensions (1, 1)"),
    ("unknown architecture",
     lambda c, o: ["train", "--arch", "nope", "--dataset", "digits", "--out", str(o)],
     lambda c: "semirobust train: error: unknown architecture 'nope'; known: alexnet, digits-cnn, mlp, "
               "resnet18, resnet50, vgg16-bn, vit, wrn-34-10"),
    ("unknown dataset",
     lambda c, o: ["train", "--arch", "mlp", "--dataset", "nope", "--out", str(o)],
     lambda c: "semirobust train: error: unknown dataset 'nope'; known: cifar10, cifar100, digits, "
               "gaussian-mixture, tinyimagenet"),
    ("non-JSON --arch-kwargs",
     lambda c, o: ["train", "--arch", "mlp", "--dataset", "digits", "--arch-kwargs", "{width: 3", "--out", str(o)],
     lambda c: "semirobust train: error: --arch-kwargs is not JSON: Expecting property name enclosed in "
               "double quotes"),
    ("--arch-kwargs not an object",
     lambda c, o: ["train", "--arch", "mlp", "--dataset", "digits", "--arch-kwargs", "[1]", "--out", str(o)],
     lambda c: "semirobust train: error: architecture 'mlp': options (--arch-kwargs) must be a JSON object "
               "such as {\"width\": 8}, got [1]"),
    ("unknown --arch-kwargs option",
     lambda c, o: ["train", "--arch", "mlp", "--dataset", "digits", "--arch-kwargs", '{"widht": 3}', "--out", str(o)],
     lambda c: "semirobust train: error: architecture 'mlp': unknown option(s) widht; accepted: depth, width"),
    ("negative width in --arch-kwargs",
     lambda c, o: ["train", "--arch", "mlp", "--dataset", "digits", "--arch-kwargs", '{"width": -3}', "--out", str(o)],
     lambda c: "semirobust train: error: architecture 'mlp': option width=-3 must be an integer >= 1"),
    ("both --split and --fb-layers",
     lambda c, o: ["algorithm1", "--fb-layers", "2", "--split", "1", "--out", str(o)],
     lambda c: "semirobust algorithm1: error: argument --split: not allowed with argument --fb-layers (see --help)"),
    ("malformed estimator setting",
     lambda c, o: ["rho", "--checkpoint", str(c), "--split", "1", "--setting", "k=abc", "--json", str(o)],
     lambda c: "semirobust rho: error: ksg setting k='abc': expected an integer >= 1"),
    # Output paths are checked at parse time, before the checkpoint is even opened: the
    # missing checkpoint below would be the error otherwise.
    ("--json that is a directory",
     lambda c, o: attack_args(c.parent / "missing", o.parent),
     lambda c: f"semirobust attack: error: argument --json: {c.parent} is a directory; give the path of "
               f"a file to write (see --help)"),
    ("--json below a file",
     lambda c, o: attack_args(c.parent / "missing", c / "config.json" / "out.json"),
     lambda c: f"semirobust attack: error: argument --json: {c / 'config.json' / 'out.json'}: "
               f"{c / 'config.json'} is a file, not a folder (see --help)"),
    ("--out that is an existing file",
     lambda c, o: ["check", "--checkpoint", str(c.parent / "missing"), "--split", "1", "--out", str(c / "config.json")],
     lambda c: f"semirobust check: error: argument --out: {c / 'config.json'} is an existing file; give a "
               f"folder (see --help)"),
    ("--out of train that is an existing file",
     lambda c, o: ["train", "--arch", "mlp", "--dataset", "digits", "--out", str(c / "config.json")],
     lambda c: f"semirobust train: error: argument --out: {c / 'config.json'} is an existing file; give a "
               f"folder (see --help)"),
    ("--seed too large for 64 bits",
     lambda c, o: [*attack_args(c, o), "--seed", str(2**63)],
     lambda c: "semirobust attack: error: argument --seed: must be an integer in 0..2**63-1, got "
               "9223372036854775808 (see --help)"),
    ("negative --seed",
     lambda c, o: [*attack_args(c, o), "--seed", "-1"],
     lambda c: "semirobust attack: error: argument --seed: must be an integer in 0..2**63-1, got -1 (see --help)"),
    ("--threads 0",
     lambda c, o: [*attack_args(c, o), "--threads", "0"],
     lambda c: "semirobust attack: error: argument --threads: must be >= 1, got 0 (see --help)"),
    ("interval level outside (0, 1)",
     lambda c, o: ["rho", "--checkpoint", str(c), "--split", "1", "--level", "1.5", "--json", str(o)],
     lambda c: "semirobust rho: error: argument --level: must lie strictly between 0 and 1, got 1.5 (see --help)"),
    ("negative replicates",
     lambda c, o: ["rho", "--checkpoint", str(c), "--split", "1", "--replicates", "-1", "--json", str(o)],
     lambda c: "semirobust rho: error: argument --replicates: must be >= 0, got -1 (see --help)"),
    ("gaussian estimator, too few samples per class for the layers' dimension",
     lambda c, o: ["rho", "--checkpoint", str(c), "--split", "1", "--estimator", "gaussian", "--samples", "200",
                   "--attack", "none", "--json", str(o), "--device", "cpu"],
     lambda c: "semirobust rho: error: class 0 has 19 samples; estimator 'gaussian' needs at least 32 (twice the "
               "minimum, for the half-sampling interval) at dimensions (7, 7); reduce the layers' dimension "
               "with --reduction pca (and --components K) or use more samples per class"),
]


@pytest.mark.parametrize("row, argv, line", CLI_ROWS, ids=[row[0] for row in CLI_ROWS])
def test_cli_bad_input_is_one_line_and_exit_2(row, argv, line, checkpoint, tmp_path, capsys):
    out = tmp_path / "out.json"
    code, err = run_cli(argv(checkpoint, out), capsys)
    assert (code, err) == (2, [line(checkpoint)])
    assert not out.exists()


@pytest.mark.skipif(torch.cuda.is_available(), reason="a GPU is present")
def test_cuda_asked_for_without_a_gpu(checkpoint, tmp_path, capsys):
    code, err = run_cli(attack_args(checkpoint, tmp_path / "o.json", "--device", "cuda"), capsys)
    assert (code, err) == (2, ["semirobust attack: error: --device cuda was asked for but no CUDA device is available"])


def test_the_suggested_reduction_makes_the_gaussian_estimator_work(checkpoint, tmp_path, capsys):
    out = tmp_path / "rho.json"
    code, err = run_cli(["rho", "--checkpoint", str(checkpoint), "--split", "1", "--estimator", "gaussian",
                         "--samples", "200", "--attack", "none", "--reduction", "pca", "--components", "2",
                         "--permutations", "0", "--json", str(out), "--device", "cpu"], capsys)
    assert code == 0, err
    pairs = json.loads(out.read_text())["pairs"]
    assert [pair["j"] for pair in pairs] == [2, 3]
    assert all(pair["rho"]["estimator"] == "gaussian" for pair in pairs)


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_json_in_a_read_only_folder(checkpoint, tmp_path, capsys):
    folder = tmp_path / "read-only"
    folder.mkdir()
    folder.chmod(0o555)
    try:
        code, err = run_cli(attack_args(checkpoint, folder / "out.json"), capsys)
    finally:
        folder.chmod(0o755)
    line = f"semirobust attack: error: argument --json: {folder / 'out.json'}: folder {folder} is not writable (see --help)"
    assert (code, err) == (2, [line])


def test_negative_input_shape_in_config(checkpoint, tmp_path, capsys):
    config = json.loads((checkpoint / "config.json").read_text())
    config["architecture"]["input_shape"] = [1, -8, 8]
    (checkpoint / "config.json").write_text(json.dumps(config))
    code, err = run_cli(attack_args(checkpoint, tmp_path / "o.json"), capsys)
    line = (f"semirobust attack: error: checkpoint {checkpoint}: config.json is malformed: "
            f"architecture.input_shape [1, -8, 8] must be a list of integers >= 1")
    assert (code, err) == (2, [line])


def test_truncated_config(checkpoint, tmp_path, capsys):
    text = (checkpoint / "config.json").read_text()
    (checkpoint / "config.json").write_text(text[: len(text) // 2])
    code, err = run_cli(attack_args(checkpoint, tmp_path / "o.json"), capsys)
    assert code == 2 and len(err) == 1
    assert err[0].startswith(f"semirobust attack: error: checkpoint {checkpoint}: config.json is not valid JSON (")
    assert err[0].endswith("; the file ends early (truncated?)")


def test_one_input_gets_no_zero_width_interval(checkpoint, tmp_path, capsys):
    code, err = run_cli(attack_args(checkpoint, tmp_path / "o.json", "--objective", "margin", "--limit", "1"), capsys)
    line = ("semirobust attack: error: a Student-t interval of a mean needs at least 2 values, got 1: "
            "evaluate at least 2 inputs (--samples N >= 2)")
    assert (code, err) == (2, [line])


def test_check_at_split_1_reports_t1_not_applicable(checkpoint, tmp_path, capsys):
    code, err = run_cli(["check", "--checkpoint", str(checkpoint), "--split", "1", "--samples", "200",
                         "--steps", "1", "--device", "cpu", "--out", str(tmp_path / "check")], capsys)
    assert (code, err) == (0, [])
    t1 = json.loads((tmp_path / "check" / "report.json").read_text())["verdicts"]["T1"]
    assert t1["status"] == "not applicable" and "no instance" in " ".join(t1["notes"])


def test_tampered_config(checkpoint, tmp_path, capsys):
    config = json.loads((checkpoint / "config.json").read_text())
    config["architecture"]["kwargs"]["width"] = 16
    (checkpoint / "config.json").write_text(json.dumps(config))
    code, err = run_cli(attack_args(checkpoint, tmp_path / "o.json"), capsys)
    line = (f"semirobust attack: error: checkpoint {checkpoint}: weights do not match the "
            f"architecture in config.json: tensor 1.1.weight has shape (8, 64) in model.safetensors, "
            f"the architecture expects (16, 64) (the first of 5 tensors whose shape differs)")
    assert (code, err) == (2, [line])


def test_config_that_is_not_json(checkpoint, tmp_path, capsys):
    (checkpoint / "config.json").write_text("{not json")
    code, err = run_cli(attack_args(checkpoint, tmp_path / "o.json"), capsys)
    line = (f"semirobust attack: error: checkpoint {checkpoint}: config.json is not valid "
            f"JSON (Expecting property name enclosed in double quotes at line 1)")
    assert (code, err) == (2, [line])


def test_truncated_safetensors(checkpoint, tmp_path, capsys):
    weights = checkpoint / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    code, err = run_cli(attack_args(checkpoint, tmp_path / "o.json"), capsys)
    line = (f"semirobust attack: error: checkpoint {checkpoint}: model.safetensors is unreadable "
            f"or truncated (Error while deserializing header: incomplete metadata, file not fully covered)")
    assert (code, err) == (2, [line])


class RunsCode:
    """Unpickling this calls ``os.system``: a checkpoint that would run code on load."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_code_running_pickle_is_refused_and_never_runs(checkpoint, tmp_path, capsys):
    marker = tmp_path / "code-ran"
    (checkpoint / "model.safetensors").unlink()
    torch.save({"0.weight": RunsCode(marker)}, checkpoint / "model.pt")
    code, err = run_cli(attack_args(checkpoint, tmp_path / "o.json"), capsys)
    line = (f"semirobust attack: error: checkpoint {checkpoint}: refusing model.pt because loading "
            f"it would need unpickling arbitrary Python objects (it asks for posix.system), which "
            f"can run code; accepted weights: model.safetensors, or a model.pt that "
            f"torch.load(..., weights_only=True) loads (a state dict of tensors)")
    assert (code, err) == (2, [line])
    assert not marker.exists(), "the pickle's code ran"


def test_model_pt_that_is_not_a_torch_file(checkpoint, tmp_path, capsys):
    (checkpoint / "model.safetensors").unlink()
    (checkpoint / "model.pt").write_bytes(b"hello world")
    code, err = run_cli(attack_args(checkpoint, tmp_path / "o.json"), capsys)
    line = (f"semirobust attack: error: checkpoint {checkpoint}: model.pt is unreadable or "
            f"truncated, not a file torch.save wrote (KeyError: 101)")
    assert (code, err) == (2, [line])


# ---- the Python API: BadInput naming the problem -------------------------------------------

def pgd():
    return build_attack("pgd", AttackConfig(ThreatModel("linf", 0.1), steps=2))


API_ROWS = [
    ("NaN inputs to an attack",
     lambda m: evaluate_attack(m, torch.full((4, 1, 8, 8), float("nan")), torch.zeros(4, dtype=torch.long), pgd()),
     "inputs contain NaN or inf"),
    ("wrong input shape",
     lambda m: evaluate_attack(m, torch.rand(4, 1, 7, 7), torch.zeros(4, dtype=torch.long), pgd()),
     "the model cannot run on inputs of shape (1, 7, 7)"),
    ("labels out of range",
     lambda m: evaluate_attack(m, torch.rand(4, 1, 8, 8), torch.full((4,), 10), pgd()),
     "label 10 is out of range for a model with 10 classes (0..9)"),
    ("inputs outside [0,1]",
     lambda m: evaluate_attack(m, 2 * torch.ones(4, 1, 8, 8), torch.zeros(4, dtype=torch.long), pgd()),
     "inputs must lie in [0,1] (the threat model's space)"),
    ("NaN activations to an estimator",
     lambda m: class_conditional_rho(torch.tensor([[float("nan")]] + [[0.0]] * 19), torch.rand(20, 1),
                                     torch.zeros(20, dtype=torch.long), "ksg"),
     "h_prev: 1 of 20 samples hold NaN or infinite activations (first at row 0)"),
    ("NaN in a dataset",
     lambda m: Dataset("mine", torch.full((2, 3), float("nan")), torch.zeros(2, dtype=torch.long),
                       torch.rand(2, 3), torch.zeros(2, dtype=torch.long), 2, (0.5,), (0.2,)),
     "dataset 'mine': train inputs contain NaN or inf"),
]


@pytest.mark.parametrize("row, call, message", API_ROWS, ids=[row[0] for row in API_ROWS])
def test_api_bad_input_raises_bad_input_naming_it(row, call, message):
    model = build_model(SPEC).eval()
    with pytest.raises(BadInput) as raised:
        call(model)
    assert str(raised.value).startswith(message)


def test_gamma_sandwich_checks_shapes_and_labels_like_the_attacks():
    pytest.importorskip("semirobust.empirical.bounds")
    from semirobust.empirical.measure.sandwich import gamma_sandwich

    model, threat = build_model(SPEC).eval(), ThreatModel("linf", 0.1)
    with pytest.raises(BadInput, match=r"^the model cannot run on inputs of shape \(1, 7, 7\)"):
        gamma_sandwich(model, torch.rand(4, 1, 7, 7), torch.zeros(4, dtype=torch.long), threat)
    with pytest.raises(BadInput, match=r"^label 10 is out of range"):
        gamma_sandwich(model, torch.rand(4, 1, 8, 8), torch.full((4,), 10), threat)
    with pytest.raises(BadInput, match="no inputs"):
        gamma_sandwich(model, torch.rand(0, 1, 8, 8), torch.zeros(0, dtype=torch.long), threat)


def test_a_nan_measurement_is_refused():
    from semirobust.theory import Kind, Measurement

    with pytest.raises(ValueError, match="measurement 'gamma' is NaN"):
        Measurement("gamma", float("nan"), (0.0, 1.0), Kind.ATTACK, "pgd", "logits")


def test_wilson_interval_contains_its_proportion_at_the_ends():
    """Regression: all of n correct gave the interval [.., 0.9999999999999999] around 1.0,
    the Measurement refused it and 'semirobust attack' exited 1."""
    from semirobust.empirical.measure.statistics import wilson_interval

    for n in range(1, 300):
        for k in (0, n):
            low, high = wilson_interval(k, n)
            assert low <= k / n <= high


def test_networks_strategy_refuses_a_plain_value():
    from hypothesis.errors import InvalidArgument

    with pytest.raises(InvalidArgument, match=r"width=st\.just\(4\)"):
        networks(width=4)


def test_training_that_diverges_stops_with_one_line_and_writes_no_checkpoint(tmp_path, capsys):
    out = tmp_path / "diverged"
    code, err = run_cli(["train", "--arch", "mlp", "--dataset", "digits", "--lr", "1e6", "--epochs", "3",
                         "--out", str(out), "--device", "cpu"], capsys)
    assert code == 2 and len(err) == 1
    assert err[0].startswith("semirobust train: error: training diverged: the loss is ")
    assert err[0].endswith("(learning rate 1000000.0); lower --lr")
    assert not out.exists() or list(out.iterdir()) == []
