"""Checkpoint directories: ``model.safetensors`` + ``config.json`` (DESIGN.md).

``config.json`` holds the architecture spec (name, input shape, classes, normalisation,
builder kwargs), the dataset, the training recipe, metrics and the seed. Loading never
runs code from the checkpoint: weights come from safetensors, or from ``model.pt``
through ``torch.load(weights_only=True)``; anything else is refused with a
:class:`BadInput` naming the problem.
"""

from __future__ import annotations

import json
import os
import pickle
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn

from semirobust import __version__
from semirobust.empirical.device import place_model
from semirobust.empirical.errors import BadInput
from semirobust.empirical.models import ArchitectureSpec, build_model
from semirobust.empirical.results import write_json_atomic

CONFIG_NAME = "config.json"
SAFETENSORS_NAME = "model.safetensors"
STATE_DICT_NAME = "model.pt"


@dataclass
class CheckpointConfig:
    """What ``config.json`` records besides the weights."""

    architecture: ArchitectureSpec
    dataset: str
    seed: int
    recipe: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    notes: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "semirobust_version": __version__,
            "architecture": self.architecture.to_dict(),
            "dataset": self.dataset,
            "seed": self.seed,
            "recipe": self.recipe,
            "metrics": self.metrics,
            "notes": self.notes,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "CheckpointConfig":
        return cls(
            architecture=ArchitectureSpec.from_dict(data["architecture"]),
            dataset=str(data["dataset"]),
            seed=int(data["seed"]),
            recipe=dict(data.get("recipe", {})),
            metrics=dict(data.get("metrics", {})),
            notes=dict(data.get("notes", {})),
        )


def save_checkpoint(path: str | os.PathLike, model: nn.Module, config: CheckpointConfig) -> Path:
    """Write the weights (safetensors) and ``config.json``, each atomically."""
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    fd, tmp = tempfile.mkstemp(dir=path, prefix=f".{SAFETENSORS_NAME}.", suffix=".tmp")
    os.close(fd)
    try:
        save_file(state, tmp)
        os.replace(tmp, path / SAFETENSORS_NAME)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    write_json_atomic(path / CONFIG_NAME, config.to_dict())
    return path


def load_checkpoint(path: str | os.PathLike, device: torch.device | str = "cpu") -> tuple[nn.Sequential, CheckpointConfig]:
    """Rebuild the model of checkpoint dir ``path`` in eval mode, with its config, placed on
    ``device`` by :func:`~semirobust.empirical.device.place_model` (channels-last on CUDA)."""
    path = Path(path)
    if not path.is_dir():
        raise BadInput(f"checkpoint {path}: no such directory (expected {CONFIG_NAME} + {SAFETENSORS_NAME})")
    config = _read_config(path)
    state = _read_state_dict(path)
    model = build_model(config.architecture)
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as error:
        first = str(error).strip().splitlines()[0]
        raise BadInput(
            f"checkpoint {path}: weights do not match the architecture in {CONFIG_NAME} ({first})"
        ) from None
    return place_model(model, torch.device(device)).eval(), config


def _read_config(path: Path) -> CheckpointConfig:
    config_path = path / CONFIG_NAME
    if not config_path.is_file():
        raise BadInput(f"checkpoint {path}: missing {CONFIG_NAME}")
    try:
        return CheckpointConfig.from_dict(json.loads(config_path.read_text(encoding="utf-8")))
    except json.JSONDecodeError as error:
        raise BadInput(f"checkpoint {path}: {CONFIG_NAME} is not valid JSON ({error.msg} at line {error.lineno})") from None
    except (KeyError, TypeError, ValueError) as error:
        raise BadInput(f"checkpoint {path}: {CONFIG_NAME} is malformed ({type(error).__name__}: {error})") from None


def _read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    safetensors_path, pickle_path = path / SAFETENSORS_NAME, path / STATE_DICT_NAME
    if safetensors_path.is_file():
        try:
            return load_file(str(safetensors_path))
        except (SafetensorError, OSError, ValueError) as error:
            raise BadInput(f"checkpoint {path}: {SAFETENSORS_NAME} is unreadable or truncated ({error})") from None
    if pickle_path.is_file():
        try:
            state = torch.load(pickle_path, map_location="cpu", weights_only=True)
        except (pickle.UnpicklingError, RuntimeError, EOFError, OSError) as error:
            reason = str(error).strip().splitlines()[0][:160]
            raise BadInput(
                f"checkpoint {path}: refusing {STATE_DICT_NAME}: not a plain weights-only state dict ({reason})"
            ) from None
        if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
            raise BadInput(f"checkpoint {path}: {STATE_DICT_NAME} must hold a state dict of tensors")
        return state
    raise BadInput(f"checkpoint {path}: no weights ({SAFETENSORS_NAME} or {STATE_DICT_NAME})")
