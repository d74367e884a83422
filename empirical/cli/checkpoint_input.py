"""One way for every command that takes ``--checkpoint`` to open it and its data.

:func:`open_checkpoint_and_data` loads the checkpoint (``model/checkpoint.py``: weights
checked against ``config.json``), resolves ``--device``, and loads the checkpoint's dataset
from ``--data-root`` drawn with **the checkpoint's recorded seed**: a dataset drawn at
random (``gaussian-mixture``) is then the very draw the model was trained and tested on,
whatever ``--seed`` says (``--seed`` drives attacks and estimators only). The dataset's
input shape is checked against the one the checkpoint's architecture was built for.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from semirobust.empirical.data import Dataset, load_dataset
from semirobust.empirical.model.checkpoint import CheckpointConfig, load_checkpoint
from semirobust.empirical.runtime.device import resolve_device
from semirobust.errors import BadInput


@dataclass(frozen=True)
class OpenedCheckpoint:
    """A loaded checkpoint (model in eval mode on ``device``, its config) and its dataset."""

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

    def record(self) -> dict[str, object]:
        """What a result file says about the checkpoint and its data."""
        return {
            "path": str(self.path),
            "architecture": self.config.architecture.name,
            "dataset": self.config.dataset,
            "dataset_seed": self.config.seed,
        }


def open_checkpoint_and_data(args: argparse.Namespace) -> OpenedCheckpoint:
    """Open ``args.checkpoint`` on ``args.device`` and its dataset from ``args.data_root``
    (module docstring); :class:`BadInput` when the data's input shape is not the model's."""
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
    return OpenedCheckpoint(path, model, config, dataset, device)
