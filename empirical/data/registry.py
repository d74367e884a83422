"""The dataset registry: datasets as in-memory tensors in ``[0,1]`` (:class:`Dataset`), by name."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch

from semirobust.errors import BadInput


@dataclass(frozen=True)
class Dataset:
    """Train and test tensors, images in ``[0,1]`` as ``(N, C, H, W)`` or features ``(N, d)``."""

    name: str
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    num_classes: int
    mean: tuple[float, ...]
    std: tuple[float, ...]

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self.x_train.shape[1:])

    def __post_init__(self) -> None:
        for label, x in (("train", self.x_train), ("test", self.x_test)):
            if x.shape[0] == 0:
                raise BadInput(f"dataset {self.name!r}: the {label} split holds no images")
            if not torch.isfinite(x).all():
                raise BadInput(f"dataset {self.name!r}: {label} inputs contain NaN or inf")
            if x.min() < 0 or x.max() > 1:
                raise BadInput(f"dataset {self.name!r}: {label} inputs must lie in [0,1]")
        for label, y in (("train", self.y_train), ("test", self.y_test)):
            if y.min() < 0 or y.max() >= self.num_classes:
                raise BadInput(
                    f"dataset {self.name!r}: {label} labels must lie in 0..{self.num_classes - 1}"
                )


Loader = Callable[..., Dataset]
_DATASETS: dict[str, Loader] = {}


def register_dataset(name: str, loader: Loader) -> None:
    """Make ``loader(*, seed, root) -> Dataset`` available under ``name`` (the package's
    ``__init__`` registers the built-in ones; a user registers their own the same way)."""
    _DATASETS[name] = loader


def dataset_names() -> list[str]:
    return sorted(_DATASETS)


def load_dataset(name: str, *, seed: int = 0, root: str | None = None) -> Dataset:
    """Load the registered dataset ``name``; ``root`` is the on-disk path where needed."""
    if name not in _DATASETS:
        raise BadInput(f"unknown dataset {name!r}; known: {', '.join(dataset_names())}")
    return _DATASETS[name](seed=seed, root=root)
