"""Checkpoint directories: ``model.safetensors`` + ``config.json`` (DESIGN.md).

``config.json`` holds the architecture spec (name, input shape, classes, normalisation,
builder kwargs), or instead a user's model factory ``package.module:callable`` with its
keyword arguments, input shape and classes
(:class:`~semirobust.empirical.model.factory.FactorySpec`: importing it is the user's
choice, made by opening the checkpoint), the dataset, the training recipe, metrics and the
seed. Loading never runs code from the weights: they come from safetensors, or from
``model.pt`` through ``torch.load(weights_only=True)`` (:func:`read_weights` reads a user's
weights file the same way); anything else is refused with a
:class:`BadInput` naming the problem: a file that only the full unpickler could read (it
would run code), an unreadable file, weights whose names or shapes differ from the
architecture in ``config.json`` (the first difference named), weights of another kind of
number than the architecture's (complex, integer or boolean for a float parameter: loading
would cast them silently, dropping the imaginary part), NaN or infinite weights (every
quantity measured on such a model would be meaningless), and a ``config.json`` that is not
JSON (a truncated one is named as such) or describes no buildable model (an input shape
with a size below 1, fewer than 2 classes, a normalisation std <= 0, a seed beyond 64 bits). Floating-point weights of another
precision (float16, bfloat16, float64) are cast to the architecture's, as PyTorch does.
"""

from __future__ import annotations

import json
import math
import os
import pickle
import re
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn

from semirobust import __version__
from semirobust.empirical.model.factory import FactorySpec, build_factory_model
from semirobust.empirical.model.registry import ArchitectureSpec, build_model
from semirobust.empirical.reports.writers import (
    current_umask,
    remove_stale_temporaries,
    temporary_prefix,
    write_json_atomic,
)
from semirobust.empirical.runtime.device import place_model
from semirobust.errors import BadInput

CONFIG_NAME = "config.json"
SAFETENSORS_NAME = "model.safetensors"
STATE_DICT_NAME = "model.pt"
# What torch.load raises on a truncated or corrupt file (its own parsers' errors included).
UNREADABLE_FILE_ERRORS = (
    RuntimeError, EOFError, OSError, ValueError, TypeError, IndexError, KeyError,
    OverflowError, AssertionError,
)
# How many names a message lists before "and N more".
NAMES_SHOWN = 3


@dataclass
class CheckpointConfig:
    """What ``config.json`` records besides the weights."""

    architecture: ArchitectureSpec | FactorySpec
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
    def from_dict(cls, data: dict[str, Any]) -> CheckpointConfig:
        return cls(
            architecture=(FactorySpec if "factory" in data["architecture"] else ArchitectureSpec)
            .from_dict(data["architecture"]),
            dataset=str(data["dataset"]),
            seed=int(data["seed"]),
            recipe=dict(data.get("recipe", {})),
            metrics=dict(data.get("metrics", {})),
            notes=dict(data.get("notes", {})),
        )


def save_checkpoint(path: str | os.PathLike, model: nn.Module, config: CheckpointConfig) -> Path:
    """Write the weights (safetensors) and ``config.json``, each atomically, with the user's
    umask; temporaries left by an interrupted save are removed first."""
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    remove_stale_temporaries(path / SAFETENSORS_NAME)
    fd, tmp = tempfile.mkstemp(dir=path, prefix=temporary_prefix(path / SAFETENSORS_NAME), suffix=".tmp")
    os.close(fd)
    try:
        save_file(state, tmp)
        os.chmod(tmp, 0o666 & ~current_umask())
        os.replace(tmp, path / SAFETENSORS_NAME)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    write_json_atomic(path / CONFIG_NAME, config.to_dict())
    return path


def load_checkpoint(path: str | os.PathLike, device: torch.device | str = "cpu") -> tuple[nn.Module, CheckpointConfig]:
    """Rebuild the model of checkpoint dir ``path`` in eval mode, with its config, placed on
    ``device`` by :func:`~semirobust.empirical.runtime.device.place_model` (channels-last on
    CUDA): a zoo architecture's ``nn.Sequential`` of stages, or the module a factory returns."""
    path = Path(path)
    if not path.is_dir():
        raise BadInput(f"checkpoint {path}: no such directory (expected {CONFIG_NAME} + {SAFETENSORS_NAME})")
    config = _read_config(path)
    source, state = _read_state_dict(path)
    spec = config.architecture
    model = build_factory_model(spec) if isinstance(spec, FactorySpec) else build_model(spec)
    load_weights(model, state, f"checkpoint {path}", source, f"the architecture in {CONFIG_NAME}")
    return place_model(model, torch.device(device)).eval(), config


def load_weights(model: nn.Module, state: Mapping[str, torch.Tensor], where: str, source: str,
                 architecture: str) -> None:
    """Load ``state`` (read from ``source``) into ``model`` (described as ``architecture``),
    or :class:`BadInput` starting with ``where`` naming the first difference in names, shapes
    or kinds of number, or the first tensor that is not finite."""
    mismatch = _mismatch(model.state_dict(), state, source)
    if mismatch:
        raise BadInput(f"{where}: weights do not match {architecture}: {mismatch}")
    non_finite = _non_finite(state, source)
    if non_finite:
        raise BadInput(f"{where}: {non_finite}; every measurement on this model would be meaningless")
    model.load_state_dict(state, strict=True)


def _mismatch(
    expected: Mapping[str, torch.Tensor], found: Mapping[str, torch.Tensor], source: str
) -> str:
    """How the tensors ``found`` in file ``source`` differ from the architecture's
    ``expected`` ones, in words: names missing or extra, else the first shape that
    differs, else the first kind of number that differs; empty when they match."""
    missing = [name for name in expected if name not in found]
    extra = [name for name in found if name not in expected]
    if missing or extra:
        parts = ([f"lacks {_tensors(missing, 'the architecture has')}"] if missing else []) + (
            [f"holds {_tensors(extra, 'the architecture does not have')}"] if extra else [])
        return f"{source} " + " and ".join(parts)
    reshaped = [name for name in expected if found[name].shape != expected[name].shape]
    if reshaped:
        name = reshaped[0]
        count = f" (the first of {len(reshaped)} tensors whose shape differs)" if reshaped[1:] else ""
        return (f"tensor {name} has shape {_shape(found[name])} in {source}, the architecture "
                f"expects {_shape(expected[name])}{count}")
    retyped = [name for name in expected if _kind(found[name].dtype) != _kind(expected[name].dtype)]
    if retyped:
        name = retyped[0]
        count = f" (the first of {len(retyped)} such tensors)" if retyped[1:] else ""
        return (f"tensor {name} holds {_kind(found[name].dtype)} numbers ({found[name].dtype}) in "
                f"{source}, the architecture expects {_kind(expected[name].dtype)} "
                f"({expected[name].dtype}){count}")
    return ""


def _non_finite(found: Mapping[str, torch.Tensor], source: str) -> str:
    """The first floating-point tensor with NaN or infinite values, in words; empty if none."""
    for name, tensor in found.items():
        if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
            bad = int((~torch.isfinite(tensor)).sum())
            return f"tensor {name} in {source} holds {bad} NaN or infinite values (of {tensor.numel()})"
    return ""


def _kind(dtype: torch.dtype) -> str:
    """The kind of number a dtype holds: floating-point, complex, boolean or integer."""
    if dtype.is_floating_point:
        return "floating-point"
    if dtype.is_complex:
        return "complex"
    return "boolean" if dtype == torch.bool else "integer"


def _tensors(names: list[str], which: str) -> str:
    """``2 tensors WHICH (a, b)``; past :data:`NAMES_SHOWN` names, ``and N more``."""
    shown = ", ".join(names[:NAMES_SHOWN])
    more = f", and {len(names) - NAMES_SHOWN} more" if len(names) > NAMES_SHOWN else ""
    return f"{len(names)} tensor{'s' if len(names) > 1 else ''} {which} ({shown}{more})"


def _shape(tensor: torch.Tensor) -> str:
    return f"({', '.join(str(size) for size in tensor.shape)})"


def _read_config(path: Path) -> CheckpointConfig:
    config_path = path / CONFIG_NAME
    if not config_path.is_file():
        raise BadInput(f"checkpoint {path}: missing {CONFIG_NAME}")
    try:
        text = config_path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise BadInput(f"checkpoint {path}: {CONFIG_NAME} is unreadable ({type(error).__name__})") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        # the text ran out: at the error, or inside a string (only the end of the text
        # leaves a string unterminated)
        ends_early = error.pos >= len(text.rstrip()) or error.msg.startswith("Unterminated string")
        hint = "; the file ends early (truncated?)" if ends_early else ""
        raise BadInput(
            f"checkpoint {path}: {CONFIG_NAME} is not valid JSON ({error.msg} at line {error.lineno}){hint}"
        ) from None
    try:
        config = CheckpointConfig.from_dict(data)
    except (KeyError, TypeError, ValueError) as error:
        raise BadInput(f"checkpoint {path}: {CONFIG_NAME} is malformed ({type(error).__name__}: {error})") from None
    problem = _config_problem(config)
    if problem:
        raise BadInput(f"checkpoint {path}: {CONFIG_NAME} is malformed: {problem}")
    return config


def _config_problem(config: CheckpointConfig) -> str:
    """What in a parsed config no model or dataset could be built from, in words (checked
    before anything is allocated); empty when nothing is wrong."""
    spec = config.architecture
    if not spec.input_shape or any(size < 1 for size in spec.input_shape):
        return f"architecture.input_shape {list(spec.input_shape)} must be a list of integers >= 1"
    if spec.num_classes < 2:
        return f"architecture.num_classes {spec.num_classes} must be >= 2"
    # a factory's model normalises its inputs itself (the input contract): no mean or std
    if isinstance(spec, ArchitectureSpec) and (
            not all(math.isfinite(v) for v in (*spec.mean, *spec.std)) or any(v <= 0 for v in spec.std)):
        return f"architecture.std {list(spec.std)} must be finite and > 0 (mean {list(spec.mean)} finite)"
    if not -(2**63) <= config.seed < 2**63:
        return f"seed {config.seed} does not fit a signed 64-bit integer"
    return ""


def _read_state_dict(path: Path) -> tuple[str, dict[str, torch.Tensor]]:
    """The weights file's name and its tensors by name."""
    for name in (SAFETENSORS_NAME, STATE_DICT_NAME):
        if (path / name).is_file():
            return name, read_weights(path / name, f"checkpoint {path}", name)
    raise BadInput(f"checkpoint {path}: no weights ({SAFETENSORS_NAME} or {STATE_DICT_NAME})")


def read_weights(file: Path, where: str, name: str) -> dict[str, torch.Tensor]:
    """The tensors of weights file ``file`` (called ``name`` in messages, which start with
    ``where``) by name: safetensors when its name ends in ``.safetensors``, else a state dict
    through ``torch.load(weights_only=True)``, which never unpickles code."""
    if file.suffix == ".safetensors":
        try:
            return load_file(str(file))
        except (SafetensorError, OSError, ValueError) as error:
            raise BadInput(f"{where}: {name} is unreadable or truncated ({error})") from None
    try:
        state = torch.load(file, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        raise BadInput(_refusal(where, name, str(error))) from None
    except UNREADABLE_FILE_ERRORS as error:
        raise BadInput(
            f"{where}: {name} is unreadable or truncated, not a file "
            f"torch.save wrote ({type(error).__name__}: {_first_sentence(str(error))})"
        ) from None
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise BadInput(f"{where}: {name} must hold a state dict of tensors")
    return state


def _refusal(where: str, name: str, torch_message: str) -> str:
    """Why weights file ``name`` is refused when ``torch.load(weights_only=True)`` raised
    ``torch_message``, and what is accepted instead; names the Python object the file asks
    for when torch's message does."""
    named = re.search(r"GLOBAL (\S+)", torch_message)
    asks_for = f" (it asks for {named[1]})" if named else ""
    accepted = (f"{SAFETENSORS_NAME}, or a {STATE_DICT_NAME}" if name == STATE_DICT_NAME
                else "a .safetensors file, or a file")
    return (
        f"{where}: refusing {name} because loading it would need unpickling "
        f"arbitrary Python objects{asks_for}, which can run code; accepted weights: "
        f"{accepted} that torch.load(..., weights_only=True) loads (a state dict of tensors)"
    )


def _first_sentence(text: str) -> str:
    """The first sentence of ``text`` on one line (torch's messages run to paragraphs)."""
    return " ".join(text.split()).split(". ")[0].rstrip(".")
