"""The shared option groups (semirobust.empirical.cli.options): declared once and alike in
every command, validated at parse time, ``--eps`` defaulting to the checkpoint's training
eps with its source recorded, and ``--threads`` / ``SEMIROBUST_THREADS`` applied to torch."""

import argparse
import json

import pytest
import torch

from semirobust.empirical.attacks.threat import NORMS
from semirobust.empirical.cli import options
from semirobust.empirical.cli.main import SUBCOMMANDS, build_parser, main
from semirobust.empirical.model import ArchitectureSpec, build_model
from semirobust.empirical.model.checkpoint import CheckpointConfig, save_checkpoint

SPEC = ArchitectureSpec("mlp", (1, 8, 8), 10, (0.3,), (0.4,), {"depth": 2, "width": 8})
CHECKPOINT_COMMANDS = ("attack", "rho", "lipschitz", "check", "s1")


def subparser(name: str) -> argparse.ArgumentParser:
    parser = build_parser(name)
    (choices,) = [a.choices for a in parser._actions if isinstance(a.choices, dict)]
    return choices[name]


def action(parser: argparse.ArgumentParser, flag: str) -> argparse.Action | None:
    return next((a for a in parser._actions if flag in a.option_strings), None)


@pytest.mark.parametrize("name", [s.name for s in SUBCOMMANDS])
def test_every_command_has_device_seed_and_threads_validated_alike(name):
    parser = subparser(name)
    assert action(parser, "--device").default == "auto"
    assert action(parser, "--seed").type is options.seed_value and action(parser, "--seed").default == 0
    threads = action(parser, "--threads")
    assert threads.type is options.positive_int and threads.default is None


@pytest.mark.parametrize("name", CHECKPOINT_COMMANDS)
def test_every_checkpoint_command_takes_data_root_and_the_shared_groups(name):
    parser = subparser(name)
    # --checkpoint, or a user's model: --model with --weights and --dataset in its place
    (source,) = [g for g in parser._mutually_exclusive_groups if action(parser, "--checkpoint") in g._group_actions]
    assert source.required and [a.dest for a in source._group_actions] == ["checkpoint", "model"]
    assert all(action(parser, flag) is not None for flag in ("--model-kwargs", "--weights", "--dataset"))
    assert action(parser, "--data-root") is not None
    samples = action(parser, "--samples")
    assert samples.option_strings == ["--samples", "--limit"] and samples.dest == "samples"
    if name != "attack":  # attack runs the whole network
        split = action(parser, "--split")
        assert split.type is options.positive_int and action(parser, "--fb-layers").type is options.positive_int
    output = action(parser, "--json") or action(parser, "--out")
    assert output.type in (options.output_file, options.output_folder) and output.required


@pytest.mark.parametrize("name", [s.name for s in SUBCOMMANDS])
def test_eps_norm_and_steps_are_declared_alike_wherever_they_appear(name):
    parser = subparser(name)
    eps, norm, steps = action(parser, "--eps"), action(parser, "--norm"), action(parser, "--steps")
    if eps is not None:
        # the default is resolved after parsing: the checkpoint's training eps, else 8/255
        assert eps.type is options.non_negative_float and eps.default is None
        assert tuple(norm.choices) == options.NORM_CHOICES and norm.default is None
    if steps is not None:
        assert steps.type is options.positive_int


def test_the_norm_choices_are_the_threat_models_norms():
    assert options.NORM_CHOICES == tuple(sorted(NORMS))


@pytest.mark.parametrize("validator, good, bad", [
    (options.seed_value, ["0", "3", str(2**63 - 1)], ["-1", str(2**63), "1.5", "x"]),
    (options.positive_int, ["1", "40"], ["0", "-2", "2.0", ""]),
    (options.non_negative_int, ["0", "7"], ["-1", "a"]),
    (options.positive_float, ["1e-9", "3"], ["0", "-1", "inf", "nan", "x"]),
    (options.non_negative_float, ["0", "0.1"], ["-0.1", "inf", "-inf", "nan"]),
    (options.open_unit_float, ["0.5", "0.999"], ["0", "1", "1.5", "nan"]),
])
def test_validators_accept_what_they_say_and_refuse_the_rest(validator, good, bad):
    for text in good:
        validator(text)
    for text in bad:
        with pytest.raises(argparse.ArgumentTypeError):
            validator(text)


def test_a_ball_covers_the_input_box_from_the_boxs_diameter_on():
    shape = (1, 8, 8)  # d = 64: the box's l2 diameter is 8
    assert options.covers_input_box("linf", 1.0, shape) and not options.covers_input_box("linf", 0.999, shape)
    assert options.covers_input_box("l2", 8.0, shape) and not options.covers_input_box("l2", 7.99, shape)


def resolved(eps, norm, recipe):
    args = argparse.Namespace(eps=eps, norm=norm)
    threat = options.threat_model(args, recipe, (1, 8, 8))
    return threat.eps, threat.norm, args.eps_source


def test_eps_defaults_to_the_checkpoints_training_threat_model_and_says_so():
    adversarial = {"eps": 0.1, "norm": "l2", "adversarial": True}
    assert resolved(None, None, adversarial) == (0.1, "l2", "checkpoint (adversarial training)")
    assert resolved(None, "linf", {"eps": 0.2, "adversarial": False}) == (
        0.2, "linf", "checkpoint (the recipe of a normally trained model)")
    assert resolved(None, None, {}) == (
        options.DEFAULT_EPS, "linf", "default 8/255 (the checkpoint records no training eps)")
    assert resolved(None, None, None) == (options.DEFAULT_EPS, "linf", "default 8/255")
    assert resolved(0.05, None, adversarial) == (0.05, "l2", "--eps")


def test_an_eps_covering_the_input_box_is_warned_about_once(capsys):
    resolved(0.5, "linf", None)
    assert capsys.readouterr().err == ""
    resolved(10.0, "linf", None)
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith("warning: --eps 10 (linf) covers the whole input box [0,1]^d (d = 64)")


@pytest.fixture
def trained_at_eps_0_1(tmp_path):
    torch.manual_seed(0)
    recipe = {"eps": 0.1, "norm": "linf", "adversarial": True}
    return save_checkpoint(tmp_path / "ckpt", build_model(SPEC), CheckpointConfig(SPEC, "digits", seed=0, recipe=recipe))


@pytest.fixture
def one_thread_after():
    yield
    torch.set_num_threads(1)


def attack(checkpoint, out, *extra):
    return main(["attack", "--checkpoint", str(checkpoint), "--attack", "pgd", "--steps", "1", "--samples", "8",
                 "--device", "cpu", "--json", str(out), *extra])


def test_attack_takes_the_checkpoints_eps_and_records_where_it_came_from(trained_at_eps_0_1, tmp_path):
    out = tmp_path / "a.json"
    assert attack(trained_at_eps_0_1, out) == 0
    result = json.loads(out.read_text())
    assert result["eps"] == 0.1 and result["eps_source"] == "checkpoint (adversarial training)"
    assert result["robust_accuracy"]["settings"]["eps"] == 0.1
    assert attack(trained_at_eps_0_1, out, "--eps", "0.05") == 0
    result = json.loads(out.read_text())
    assert (result["eps"], result["eps_source"]) == (0.05, "--eps")


def test_threads_default_to_one_and_are_recorded(trained_at_eps_0_1, tmp_path, monkeypatch, one_thread_after):
    monkeypatch.delenv(options.THREADS_VARIABLE, raising=False)
    torch.set_num_threads(2)
    out = tmp_path / "a.json"
    assert attack(trained_at_eps_0_1, out) == 0
    arguments = json.loads(out.read_text())["arguments"]
    assert (arguments["threads"], arguments["threads_source"]) == (1, "default")
    assert torch.get_num_threads() == 1


def test_threads_from_the_option_and_from_the_environment(trained_at_eps_0_1, tmp_path, monkeypatch,
                                                           one_thread_after):
    out = tmp_path / "a.json"
    monkeypatch.setenv(options.THREADS_VARIABLE, "2")
    assert attack(trained_at_eps_0_1, out) == 0
    arguments = json.loads(out.read_text())["arguments"]
    assert (arguments["threads"], arguments["threads_source"]) == (2, options.THREADS_VARIABLE)
    assert torch.get_num_threads() == 2
    assert attack(trained_at_eps_0_1, out, "--threads", "1") == 0  # the option wins
    arguments = json.loads(out.read_text())["arguments"]
    assert (arguments["threads"], arguments["threads_source"]) == (1, "--threads")
    assert torch.get_num_threads() == 1


@pytest.mark.parametrize("value", ["0", "two", "-1"])
def test_a_bad_threads_variable_is_one_line_and_exit_2(value, trained_at_eps_0_1, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv(options.THREADS_VARIABLE, value)
    out = tmp_path / "a.json"
    assert attack(trained_at_eps_0_1, out) == 2
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith(f"semirobust attack: error: {options.THREADS_VARIABLE}={value!r}: must be")
    assert not out.exists()


def test_output_paths_are_checked_before_anything_is_opened(tmp_path):
    existing_file = tmp_path / "file"
    existing_file.write_text("x")
    with pytest.raises(argparse.ArgumentTypeError, match="is a directory"):
        options.output_file(str(tmp_path))
    with pytest.raises(argparse.ArgumentTypeError, match="is a file, not a folder"):
        options.output_file(str(existing_file / "deeper" / "out.json"))
    with pytest.raises(argparse.ArgumentTypeError, match="is an existing file"):
        options.output_folder(str(existing_file))
    assert options.output_file(str(tmp_path / "new" / "deeper" / "out.json")).endswith("out.json")
    assert options.output_folder(str(tmp_path / "new" / "run")) == str(tmp_path / "new" / "run")
    assert options.output_file("relative.json") == "relative.json"
    assert not (tmp_path / "new").exists()  # checking creates nothing
