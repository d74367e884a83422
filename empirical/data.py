"""Datasets as in-memory tensors in ``[0,1]``, and their registry.

The embedded default is scikit-learn's bundled digits (1797 images of 8x8 pixels, values
0..16 scaled to ``[0,1]``) with a fixed stratified 50/50 train/test split. A seeded
Gaussian mixture gives synthetic data of any dimension. Datasets that live on disk
(CIFAR, TinyImageNet) register here too, reading from a user-given path.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch

from semirobust.empirical.errors import BadInput

DIGITS_SPLIT_SEED = 0


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


def register_dataset(name: str) -> Callable[[Loader], Loader]:
    """Decorator: make ``loader(*, seed, root) -> Dataset`` available under ``name``."""

    def decorate(loader: Loader) -> Loader:
        _DATASETS[name] = loader
        return loader

    return decorate


def dataset_names() -> list[str]:
    return sorted(_DATASETS)


def load_dataset(name: str, *, seed: int = 0, root: str | None = None) -> Dataset:
    """Load the registered dataset ``name``; ``root`` is the on-disk path where needed."""
    if name not in _DATASETS:
        raise BadInput(f"unknown dataset {name!r}; known: {', '.join(dataset_names())}")
    return _DATASETS[name](seed=seed, root=root)


def _per_channel_stats(x: torch.Tensor) -> tuple[tuple[float, ...], tuple[float, ...]]:
    dims = [0] + list(range(2, x.dim()))
    mean = x.mean(dim=dims)
    std = x.std(dim=dims).clamp_min(1e-3)
    return tuple(mean.tolist()), tuple(std.tolist())


@register_dataset("digits")
def digits(*, seed: int = 0, root: str | None = None) -> Dataset:
    """scikit-learn's digits as ``(N, 1, 8, 8)`` in ``[0,1]``; the split ignores ``seed``.

    The train/test split is fixed (stratified, 50/50, ``random_state=0``) so that every
    run and every model is evaluated on the same test set.
    """
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    bunch = load_digits()
    x = (bunch.images / 16.0).astype(np.float32)[:, None, :, :]
    y = bunch.target.astype(np.int64)
    x_tr, x_te, y_tr, y_te = train_test_split(
        x, y, test_size=0.5, stratify=y, random_state=DIGITS_SPLIT_SEED
    )
    x_train = torch.from_numpy(x_tr)
    mean, std = _per_channel_stats(x_train)
    return Dataset(
        name="digits",
        x_train=x_train,
        y_train=torch.from_numpy(y_tr),
        x_test=torch.from_numpy(x_te),
        y_test=torch.from_numpy(y_te),
        num_classes=10,
        mean=mean,
        std=std,
    )


@register_dataset("gaussian-mixture")
def gaussian_mixture(
    *,
    seed: int = 0,
    root: str | None = None,
    n_train: int = 1000,
    n_test: int = 1000,
    dim: int = 16,
    num_classes: int = 4,
    spread: float = 0.08,
) -> Dataset:
    """``K`` isotropic Gaussian classes in ``[0,1]^d`` (means uniform in ``[0.25, 0.75]^d``,
    standard deviation ``spread``, clipped to the cube), equal class prior, seeded."""
    rng = np.random.default_rng(seed)
    means = rng.uniform(0.25, 0.75, size=(num_classes, dim))

    def sample(n: int) -> tuple[torch.Tensor, torch.Tensor]:
        y = rng.integers(0, num_classes, size=n)
        x = np.clip(means[y] + spread * rng.standard_normal((n, dim)), 0.0, 1.0)
        return torch.from_numpy(x.astype(np.float32)), torch.from_numpy(y.astype(np.int64))

    x_train, y_train = sample(n_train)
    x_test, y_test = sample(n_test)
    mean = tuple(x_train.mean(dim=0).tolist())
    std = tuple(x_train.std(dim=0).clamp_min(1e-3).tolist())
    return Dataset("gaussian-mixture", x_train, y_train, x_test, y_test, num_classes, mean, std)


import semirobust.empirical.disk_data  # noqa: E402,F401  (registers cifar10, cifar100, tinyimagenet)
