"""The built-in datasets: the embedded default and a synthetic one.

The embedded default is scikit-learn's bundled digits (1797 images of 8x8 pixels, values
0..16 scaled to ``[0,1]``) with a fixed stratified 50/50 train/test split. A seeded
Gaussian mixture gives synthetic data of any dimension.
"""

from __future__ import annotations

import numpy as np
import torch

from semirobust.empirical.data.registry import Dataset

DIGITS_SPLIT_SEED = 0


def _per_channel_stats(x: torch.Tensor) -> tuple[tuple[float, ...], tuple[float, ...]]:
    dims = [0] + list(range(2, x.dim()))
    mean = x.mean(dim=dims)
    std = x.std(dim=dims).clamp_min(1e-3)
    return tuple(mean.tolist()), tuple(std.tolist())


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
