"""Checkpoint dirs: round trip, and every malformed or unsafe one refused with BadInput."""

import json
import os

import pytest
import torch

from semirobust.empirical.checkpoint import CheckpointConfig, load_checkpoint, save_checkpoint
from semirobust.empirical.errors import BadInput
from semirobust.empirical.models import ArchitectureSpec, build_model

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
    with pytest.raises(BadInput, match="do not match the architecture"):
        load_checkpoint(path)


@pytest.mark.parametrize("text", ["{not json", '{"architecture": {}}', "[]"])
def test_malformed_config(checkpoint, text):
    path, _ = checkpoint
    (path / "config.json").write_text(text)
    with pytest.raises(BadInput, match="config.json"):
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
    with pytest.raises(BadInput, match="refusing model.pt"):
        load_checkpoint(path)


def test_weights_only_state_dict_is_accepted(checkpoint):
    path, model = checkpoint
    (path / "model.safetensors").unlink()
    torch.save(model.state_dict(), path / "model.pt")
    loaded, _ = load_checkpoint(path)
    x = torch.rand(2, 1, 8, 8)
    assert torch.equal(loaded(x), model(x))
