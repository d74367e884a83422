"""CIFAR-10 and CIFAR-100 from their "python version" directories (Krizhevsky 2009).

``root`` is the extracted ``cifar-10-batches-py`` (``data_batch_1`` .. ``data_batch_5``,
``test_batch``, ``batches.meta``) or ``cifar-100-python`` (``train``, ``test``, ``meta``),
or the folder that holds it. Each batch is a pickled dict with ``b"data"``, a ``uint8``
array of shape ``(N, 3072)`` (each row the red, green and blue 32x32 planes in row-major
order) and the labels (``b"labels"``; CIFAR-100 ``b"fine_labels"``). The pickles are read
with :func:`~semirobust.empirical.data.disk.safe_pickle.load_numpy_pickle`, which runs no
code from the file. Images become ``float32`` in ``[0,1]`` of shape ``(N, 3, 32, 32)``;
the normalisation is each dataset's standard per-channel mean and standard deviation of
its training images. Train and test splits are the files' own, so ``seed`` is unused.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from semirobust.empirical.data.disk.limits import check_limit
from semirobust.empirical.data.disk.safe_pickle import load_numpy_pickle
from semirobust.empirical.data.registry import Dataset
from semirobust.errors import BadInput

IMAGE_SHAPE = (3, 32, 32)
ROW_LENGTH = 3 * 32 * 32


@dataclass(frozen=True)
class CifarFormat:
    """Where one CIFAR variant keeps its files and labels, and its standard statistics."""

    name: str
    directory: str
    train_files: tuple[str, ...]
    test_files: tuple[str, ...]
    meta_file: str
    label_key: bytes
    label_names_key: bytes
    num_classes: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]


CIFAR10 = CifarFormat(
    name="cifar10",
    directory="cifar-10-batches-py",
    train_files=tuple(f"data_batch_{i}" for i in range(1, 6)),
    test_files=("test_batch",),
    meta_file="batches.meta",
    label_key=b"labels",
    label_names_key=b"label_names",
    num_classes=10,
    mean=(0.4914, 0.4822, 0.4465),
    std=(0.2470, 0.2435, 0.2616),
)

CIFAR100 = CifarFormat(
    name="cifar100",
    directory="cifar-100-python",
    train_files=("train",),
    test_files=("test",),
    meta_file="meta",
    label_key=b"fine_labels",
    label_names_key=b"fine_label_names",
    num_classes=100,
    mean=(0.5071, 0.4865, 0.4409),
    std=(0.2673, 0.2564, 0.2762),
)


def load_cifar(cifar: CifarFormat, root: str | Path | None, *, limit: int | None = None) -> Dataset:
    """Read ``cifar``'s train and test batches under ``root``, the first ``limit`` images
    of each split if given; :class:`BadInput` naming the path if anything is missing or
    malformed."""
    check_limit(limit)
    directory = _batches_directory(cifar, root)
    names = _read_dict(directory / cifar.meta_file).get(cifar.label_names_key)
    if not isinstance(names, list) or len(names) != cifar.num_classes:
        raise BadInput(
            f"{directory / cifar.meta_file}: expected {cifar.num_classes} class names under "
            f"{cifar.label_names_key!r}"
        )
    x_train, y_train = _read_split(cifar, directory, cifar.train_files, limit)
    x_test, y_test = _read_split(cifar, directory, cifar.test_files, limit)
    return Dataset(
        name=cifar.name,
        x_train=x_train,
        y_train=y_train,
        x_test=x_test,
        y_test=y_test,
        num_classes=cifar.num_classes,
        mean=cifar.mean,
        std=cifar.std,
    )


def _batches_directory(cifar: CifarFormat, root: str | Path | None) -> Path:
    if root is None:
        raise BadInput(
            f"dataset {cifar.name!r} is read from disk: give its root, the extracted "
            f"{cifar.directory} directory"
        )
    root = Path(root)
    if (root / cifar.directory).is_dir():
        return root / cifar.directory
    if not root.is_dir():
        raise BadInput(f"dataset {cifar.name!r}: {root} is not a directory")
    return root


def _read_dict(path: Path) -> dict:
    content = load_numpy_pickle(path)
    if not isinstance(content, dict):
        raise BadInput(f"{path}: expected a pickled dict, found {type(content).__name__}")
    return content


def _read_split(
    cifar: CifarFormat, directory: Path, files: tuple[str, ...], limit: int | None
) -> tuple[torch.Tensor, torch.Tensor]:
    images, labels, count = [], [], 0
    for file_name in files:
        if limit is not None and count >= limit:
            break
        path = directory / file_name
        data, batch_labels = _read_batch(cifar, path)
        keep = len(data) if limit is None else min(len(data), limit - count)
        images.append(data[:keep])
        labels.append(batch_labels[:keep])
        count += keep
    x = np.concatenate(images).reshape(-1, *IMAGE_SHAPE).astype(np.float32)
    x /= 255.0
    return torch.from_numpy(x), torch.from_numpy(np.concatenate(labels))


def _read_batch(cifar: CifarFormat, path: Path) -> tuple[np.ndarray, np.ndarray]:
    batch = _read_dict(path)
    data, labels = batch.get(b"data"), batch.get(cifar.label_key)
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != ROW_LENGTH:
        raise BadInput(f"{path}: b'data' must be a uint8 array of shape (N, {ROW_LENGTH})")
    if not isinstance(labels, list) or len(labels) != len(data):
        raise BadInput(f"{path}: {cifar.label_key!r} must be a list of {len(data)} labels")
    integers = all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in labels)
    labels_array = np.array(labels if integers else [], dtype=np.int64)
    if not integers or labels_array.min(initial=0) < 0 or labels_array.max(initial=0) >= cifar.num_classes:
        raise BadInput(f"{path}: labels must be integers in 0..{cifar.num_classes - 1}")
    return data, labels_array


def cifar10(*, seed: int = 0, root: str | None = None, limit: int | None = None) -> Dataset:
    """CIFAR-10: 50,000 train and 10,000 test images of 10 classes (``seed`` unused)."""
    return load_cifar(CIFAR10, root, limit=limit)


def cifar100(*, seed: int = 0, root: str | None = None, limit: int | None = None) -> Dataset:
    """CIFAR-100: 50,000 train and 10,000 test images of 100 fine classes (``seed`` unused)."""
    return load_cifar(CIFAR100, root, limit=limit)
