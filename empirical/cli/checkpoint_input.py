"""One way for every command that takes ``--checkpoint`` to open it and its data.

:func:`open_checkpoint_and_data` loads the checkpoint (``model/checkpoint.py``: weights
checked against ``config.json``), resolves ``--device``, and loads the checkpoint's dataset
from ``--data-root`` drawn with **the checkpoint's recorded seed**: a dataset drawn at
random (``gaussian-mixture``) is then the very draw the model was trained and tested on,
whatever ``--seed`` says (``--seed`` drives attacks and estimators only). The dataset's
input shape is checked against the one the checkpoint's architecture was built for.

In place of ``--checkpoint``, a user's own model: ``--model package.module:callable
[--model-kwargs JSON] --weights FILE --dataset D`` (``model/factory.py``): the factory is
imported (from the current directory first, as ``python -m`` does), called with the
keyword arguments, given the weights (checked as a checkpoint's are) and traced into
stages (``model/graph_stages.py``); its dataset is drawn with seed
:data:`USER_MODEL_DATA_SEED`. A checkpoint whose ``config.json`` names a factory is opened
the same way. Either kind of model is then checked against the input contract on the
first batch (:func:`~semirobust.empirical.model.factory.check_input_contract`) before any
work starts.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from semirobust.empirical.data import Dataset, load_dataset
from semirobust.empirical.model.checkpoint import (
    CheckpointConfig,
    load_checkpoint,
    load_weights,
    read_weights,
)
from semirobust.empirical.model.factory import (
    FactorySpec,
    build_factory_model,
    check_input_contract,
)
from semirobust.empirical.model.graph_stages import as_stages
from semirobust.empirical.runtime.device import place_model, resolve_device
from semirobust.errors import BadInput

#: The seed a dataset drawn at random is drawn with for ``--model`` (no checkpoint records one).
USER_MODEL_DATA_SEED = 0
#: How many test inputs the input contract is checked on.
FIRST_BATCH = 16
#: The options that go with ``--model`` (a checkpoint names its own weights and dataset).
USER_MODEL_OPTIONS = (("--model-kwargs", "model_kwargs"), ("--weights", "weights"), ("--dataset", "dataset"))


@dataclass(frozen=True)
class OpenedCheckpoint:
    """A loaded checkpoint (model in eval mode on ``device``, its config) and its dataset.
    ``path`` is the checkpoint's folder, or the ``--weights`` file of a user's model; a
    user's model (``--model``, or a factory named in ``config.json``) is its stages."""

    path: Path
    model: nn.Sequential
    config: CheckpointConfig
    dataset: Dataset
    device: torch.device

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self.config.architecture.input_shape)

    def test_inputs(self, limit: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """The first ``limit`` test inputs and labels (all with None)."""
        return self.dataset.x_test[:limit], self.dataset.y_test[:limit]

    @property
    def description(self) -> str:
        """What was opened, in words (a report's first line)."""
        spec = self.config.architecture
        if not isinstance(spec, FactorySpec) or self.path.is_dir():
            return f"Checkpoint `{self.path}`"
        options = f" with keyword arguments `{json.dumps(spec.kwargs)}`" if spec.kwargs else ""
        return f"Model `{spec.factory}`{options}, weights `{self.path}`, dataset {self.config.dataset}"

    def record(self) -> dict[str, object]:
        """What a result file says about the checkpoint and its data."""
        return {
            "path": str(self.path),
            "architecture": self.config.architecture.name,
            "dataset": self.config.dataset,
            "dataset_seed": self.config.seed,
        }


def open_checkpoint_and_data(args: argparse.Namespace) -> OpenedCheckpoint:
    """Open ``args.checkpoint`` (or the user's model ``args.model``) on ``args.device`` and
    its dataset from ``args.data_root`` (module docstring); :class:`BadInput` when the data's
    input shape is not the model's, or the model breaks the input contract."""
    if getattr(args, "model", None) is not None:
        return _open_user_model(args)
    given = [flag for flag, name in USER_MODEL_OPTIONS if getattr(args, name, None) is not None]
    if given:
        raise BadInput(f"{', '.join(given)} go{'es' if len(given) == 1 else ''} with --model; "
                       "a --checkpoint names its own weights and dataset")
    device = resolve_device(args.device)
    path = Path(args.checkpoint)
    model, config = load_checkpoint(path, device)
    dataset = load_dataset(config.dataset, seed=config.seed, root=args.data_root)
    expected = tuple(config.architecture.input_shape)
    if tuple(dataset.input_shape) != expected:
        source = f" (from --data-root {args.data_root})" if args.data_root else ""
        raise BadInput(
            f"dataset {config.dataset!r}{source} has inputs of shape {tuple(dataset.input_shape)}, "
            f"but the checkpoint's model expects {expected}"
        )
    if isinstance(config.architecture, FactorySpec):
        model = _staged(model, config.architecture, dataset, device)
    return OpenedCheckpoint(path, model, config, dataset, device)


def _open_user_model(args: argparse.Namespace) -> OpenedCheckpoint:
    """``--model --model-kwargs --weights --dataset``: the factory's model with the weights,
    as stages, and the dataset (module docstring)."""
    missing = [flag for flag, name in USER_MODEL_OPTIONS[1:] if getattr(args, name, None) is None]
    if missing:
        raise BadInput(f"--model needs {' and '.join(missing)} (the weights file and the dataset to check on)")
    kwargs = _model_kwargs(args.model_kwargs)
    weights = Path(args.weights)
    if not weights.is_file():
        raise BadInput(f"--weights {weights}: no such file")
    device = resolve_device(args.device)
    dataset = load_dataset(args.dataset, seed=USER_MODEL_DATA_SEED, root=args.data_root)
    spec = FactorySpec(args.model, tuple(dataset.input_shape), dataset.num_classes, kwargs)
    model = build_factory_model(spec)
    state = read_weights(weights, "--weights", str(weights))
    load_weights(model, state, f"--weights {weights}", weights.name, f"the model {args.model} builds")
    model = place_model(model, device).eval()
    config = CheckpointConfig(architecture=spec, dataset=args.dataset, seed=USER_MODEL_DATA_SEED,
                              notes={"weights": str(weights)})
    return OpenedCheckpoint(weights, _staged(model, spec, dataset, device), config, dataset, device)


def _model_kwargs(text: str | None) -> dict:
    """``--model-kwargs`` as a dict (none given: no keyword arguments)."""
    if text is None:
        return {}
    try:
        kwargs = json.loads(text)
    except json.JSONDecodeError as error:
        raise BadInput(f"--model-kwargs is not JSON: {error.msg} (at character {error.pos}); "
                       'give an object such as \'{"width": 8}\'') from None
    if not isinstance(kwargs, dict):
        raise BadInput(f"--model-kwargs must be a JSON object such as '{{\"width\": 8}}', got {text}")
    return kwargs


def _staged(model: nn.Module, spec: FactorySpec, dataset: Dataset, device: torch.device) -> nn.Sequential:
    """The user's model as stages (traced: :class:`BadInput` naming the line that cannot be),
    checked against the input contract on the first test batch."""
    stages = as_stages(model)
    check_input_contract(model, stages, dataset.x_test[:FIRST_BATCH].to(device), spec, dataset.name)
    return stages
