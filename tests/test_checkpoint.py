"""Checkpoint dirs: round trip, and every malformed or unsafe one refused with BadInput."""

import json
import os

import pytest
import torch
from safetensors.torch import save_file

from semirobust.empirical.model import ArchitectureSpec, build_model
from semirobust.empirical.model.checkpoint import CheckpointConfig, load_checkpoint, save_checkpoint
from semirobust.errors import BadInput

SPEC = ArchitectureSpec("digits-cnn", (1, 8, 8), 10, (0.3,), (0.4,), {"width": 4})


@pytest.fixture
def checkpoint(tmp_path):
    torch.manual_seed(0)
    model = build_model(SPEC).eval()
    path = save_checkpoint(tmp_path / "ckpt", model, CheckpointConfig(SPEC, "digits", seed=0, metrics={"x": 1}))
    return path, model


def test_round_trip_gives_the_same_function_and_config(checkpoint):
    path, model = checkpoint
    loaded, config = load_checkpoint(path)
    x = torch.rand(4, 1, 8, 8)
    assert torch.equal(loaded(x), model(x))
    assert config.architecture == SPEC and config.metrics == {"x": 1}
    for key, value in model.state_dict().items():
        assert torch.equal(value, loaded.state_dict()[key])


def test_missing_directory(tmp_path):
    with pytest.raises(BadInput, match="no such directory"):
        load_checkpoint(tmp_path / "nonexistent")


def test_tampered_config_that_no_longer_matches_the_weights(checkpoint):
    path, _ = checkpoint
    config = json.loads((path / "config.json").read_text())
    config["architecture"]["kwargs"]["width"] = 8
    (path / "config.json").write_text(json.dumps(config))
    with pytest.raises(BadInput) as error:
        load_checkpoint(path)
    # width 4 -> 8: the first conv's 4 filters become 8, and every layer after it changes
    assert str(error.value) == (
        f"checkpoint {path}: weights do not match the architecture in config.json: tensor "
        "1.0.weight has shape (4, 1, 3, 3) in model.safetensors, the architecture expects "
        "(8, 1, 3, 3) (the first of 25 tensors whose shape differs)"
    )


def test_weights_with_missing_and_extra_tensors_are_named(checkpoint):
    path, model = checkpoint
    state = dict(model.state_dict())
    del state["7.0.bias"]
    state["8.0.weight"] = torch.zeros(2, 2)
    save_file(state, path / "model.safetensors")
    with pytest.raises(BadInput) as error:
        load_checkpoint(path)
    assert str(error.value).endswith(
        "do not match the architecture in config.json: model.safetensors lacks 1 tensor the "
        "architecture has (7.0.bias) and holds 1 tensor the architecture does not have (8.0.weight)"
    )


def test_a_long_list_of_missing_tensors_stays_one_short_line(checkpoint):
    path, model = checkpoint
    save_file({"0.mean": model.state_dict()["0.mean"]}, path / "model.safetensors")
    with pytest.raises(BadInput) as error:
        load_checkpoint(path)
    total = len(model.state_dict()) - 1
    assert str(error.value).endswith(
        f"model.safetensors lacks {total} tensors the architecture has (0.std, 1.0.weight, "
        f"1.1.weight, and {total - 3} more)"
    )


@pytest.mark.parametrize("text", ["{not json", '{"architecture": {}}', "[]"])
def test_malformed_config(checkpoint, text):
    path, _ = checkpoint
    (path / "config.json").write_text(text)
    with pytest.raises(BadInput, match="config.json"):
        load_checkpoint(path)


@pytest.mark.parametrize("cut", [0.25, 0.5, 0.9])
def test_truncated_config_is_named_as_such(checkpoint, cut):
    path, _ = checkpoint
    text = (path / "config.json").read_text()
    (path / "config.json").write_text(text[: int(len(text) * cut)])
    with pytest.raises(BadInput, match=r"config.json is not valid JSON \(.*\); the file ends early \(truncated\?\)$"):
        load_checkpoint(path)


def test_a_config_that_is_not_json_is_not_called_truncated(checkpoint):
    path, _ = checkpoint
    (path / "config.json").write_text('{"architecture": nope}')
    with pytest.raises(BadInput) as raised:
        load_checkpoint(path)
    assert "not valid JSON" in str(raised.value) and "truncated" not in str(raised.value)


@pytest.mark.parametrize("field, value, message", [
    ("input_shape", [1, -8, 8], r"architecture.input_shape \[1, -8, 8\] must be a list of integers >= 1"),
    ("input_shape", [], r"architecture.input_shape \[\] must be a list of integers >= 1"),
    ("num_classes", 1, r"architecture.num_classes 1 must be >= 2"),
    ("std", [0.0], r"architecture.std \[0.0\] must be finite and > 0"),
])
def test_a_config_describing_no_buildable_model_is_refused_before_building(checkpoint, field, value, message):
    path, _ = checkpoint
    config = json.loads((path / "config.json").read_text())
    config["architecture"][field] = value
    (path / "config.json").write_text(json.dumps(config))
    with pytest.raises(BadInput, match=rf"config.json is malformed: {message}"):
        load_checkpoint(path)


def test_a_seed_beyond_64_bits_in_config_is_refused(checkpoint):
    path, _ = checkpoint
    config = json.loads((path / "config.json").read_text())
    config["seed"] = 2**64
    (path / "config.json").write_text(json.dumps(config))
    with pytest.raises(BadInput, match=rf"seed {2**64} does not fit a signed 64-bit integer"):
        load_checkpoint(path)


def test_truncated_safetensors(checkpoint):
    path, _ = checkpoint
    weights = path / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    with pytest.raises(BadInput, match="unreadable or truncated"):
        load_checkpoint(path)


class RunsCode:
    def __reduce__(self):
        return (os.system, ("echo pwned > /dev/null",))


def test_pickle_that_would_run_code_is_refused(checkpoint):
    path, _ = checkpoint
    (path / "model.safetensors").unlink()
    torch.save({"weight": RunsCode()}, path / "model.pt")
    with pytest.raises(BadInput) as error:
        load_checkpoint(path)
    assert str(error.value) == (
        f"checkpoint {path}: refusing model.pt because loading it would need unpickling "
        "arbitrary Python objects (it asks for posix.system), which can run code; accepted "
        "weights: model.safetensors, or a model.pt that torch.load(..., weights_only=True) "
        "loads (a state dict of tensors)"
    )


@pytest.mark.parametrize("damage", ["truncate", "garbage"])
def test_unreadable_state_dict_is_named_as_such(checkpoint, damage):
    path, model = checkpoint
    (path / "model.safetensors").unlink()
    torch.save(model.state_dict(), path / "model.pt")
    data = (path / "model.pt").read_bytes()
    (path / "model.pt").write_bytes(data[: len(data) // 2] if damage == "truncate" else b"hello world")
    with pytest.raises(BadInput) as error:
        load_checkpoint(path)
    message = str(error.value)
    assert message.startswith(f"checkpoint {path}: model.pt is unreadable or truncated, not a file "
                              "torch.save wrote (")
    assert "\n" not in message and "weights_only" not in message


def test_weights_only_state_dict_is_accepted(checkpoint):
    path, model = checkpoint
    (path / "model.safetensors").unlink()
    torch.save(model.state_dict(), path / "model.pt")
    loaded, _ = load_checkpoint(path)
    x = torch.rand(2, 1, 8, 8)
    assert torch.equal(loaded(x), model(x))


@pytest.mark.parametrize("dtype", [torch.complex64, torch.int32, torch.bool])
def test_weights_of_another_kind_of_number_are_refused_not_cast(checkpoint, dtype):
    path, model = checkpoint
    state = dict(model.state_dict())
    state["1.0.weight"] = state["1.0.weight"].to(dtype)
    save_file(state, path / "model.safetensors")
    with pytest.raises(BadInput) as error:
        load_checkpoint(path)
    assert str(error.value).endswith(
        f"tensor 1.0.weight holds {'complex' if dtype.is_complex else 'boolean' if dtype == torch.bool else 'integer'} "
        f"numbers ({dtype}) in model.safetensors, the architecture expects floating-point (torch.float32)"
    )


def test_weights_of_another_precision_load_cast_to_the_architectures(checkpoint):
    path, model = checkpoint
    state = {name: (value.double() if value.is_floating_point() else value) for name, value in model.state_dict().items()}
    save_file(state, path / "model.safetensors")
    loaded, _ = load_checkpoint(path)
    x = torch.rand(4, 1, 8, 8)
    assert loaded.state_dict()["1.0.weight"].dtype == torch.float32
    assert torch.equal(loaded(x), model(x))


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_non_finite_weights_are_refused(checkpoint, bad):
    path, model = checkpoint
    state = dict(model.state_dict())
    weight = state["1.0.weight"].clone()
    weight.view(-1)[[0, 5]] = bad
    state["1.0.weight"] = weight
    save_file(state, path / "model.safetensors")
    with pytest.raises(BadInput) as error:
        load_checkpoint(path)
    assert str(error.value) == (
        f"checkpoint {path}: tensor 1.0.weight in model.safetensors holds 2 NaN or infinite values "
        "(of 36); every measurement on this model would be meaningless"
    )
