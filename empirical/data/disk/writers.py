"""Writing image datasets in the standard on-disk formats the loaders read.

Used by the tests (tiny generated datasets in the exact formats) and for turning arrays
into a CIFAR- or TinyImageNet-format directory. Images are ``uint8`` arrays of shape
``(N, 3, H, W)`` (CIFAR: ``H = W = 32``), labels integer arrays of length ``N``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from semirobust.empirical.data.disk.cifar import IMAGE_SHAPE, ROW_LENGTH, CifarFormat
from semirobust.empirical.data.disk.py2_pickle import dumps_py2
from semirobust.empirical.data.disk.tinyimagenet import DIRECTORY as TINYIMAGENET_DIRECTORY
from semirobust.errors import BadInput


def write_cifar(
    parent: Path,
    cifar: CifarFormat,
    *,
    x_train: np.ndarray,
    y_train: np.ndarray,
    x_test: np.ndarray,
    y_test: np.ndarray,
) -> Path:
    """Write ``parent / cifar.directory`` as the python-version CIFAR files (Python 2
    pickles); the train split is spread over ``cifar.train_files``. Returns the directory."""
    _check_images(x_train, y_train, IMAGE_SHAPE, cifar.num_classes)
    _check_images(x_test, y_test, IMAGE_SHAPE, cifar.num_classes)
    directory = Path(parent) / cifar.directory
    directory.mkdir(parents=True, exist_ok=True)
    chunks = np.array_split(np.arange(len(x_train)), len(cifar.train_files))
    for number, (file_name, rows) in enumerate(zip(cifar.train_files, chunks), start=1):
        batch = _batch(cifar, f"training batch {number} of {len(chunks)}", x_train[rows], y_train[rows])
        (directory / file_name).write_bytes(dumps_py2(batch))
    (directory / cifar.test_files[0]).write_bytes(dumps_py2(_batch(cifar, "testing batch 1 of 1", x_test, y_test)))
    names = [f"class_{k}".encode() for k in range(cifar.num_classes)]
    meta = {cifar.label_names_key: names, b"num_cases_per_batch": len(chunks[0]), b"num_vis": 3072}
    (directory / cifar.meta_file).write_bytes(dumps_py2(meta))
    return directory


def _batch(cifar: CifarFormat, label: str, x: np.ndarray, y: np.ndarray) -> dict:
    return {
        b"batch_label": label.encode(),
        cifar.label_key: [int(v) for v in y],
        b"data": np.ascontiguousarray(x, dtype=np.uint8).reshape(len(x), ROW_LENGTH),
        b"filenames": [f"image_{i:05d}.png".encode() for i in range(len(x))],
    }


def write_tinyimagenet(
    parent: Path,
    wnids: list[str],
    *,
    x_train: np.ndarray,
    y_train: np.ndarray,
    x_val: np.ndarray,
    y_val: np.ndarray,
) -> Path:
    """Write ``parent / "tiny-imagenet-200"`` with ``wnids.txt``, JPEG training images under
    ``train/<wnid>/images`` and validation images with ``val/val_annotations.txt``; label
    ``k`` is ``sorted(wnids)[k]``. Returns the directory."""
    from PIL import Image

    image_shape = (3, *x_train.shape[2:])
    _check_images(x_train, y_train, image_shape, len(wnids))
    _check_images(x_val, y_val, image_shape, len(wnids))
    classes = sorted(wnids)
    directory = Path(parent) / TINYIMAGENET_DIRECTORY
    (directory / "val" / "images").mkdir(parents=True, exist_ok=True)
    (directory / "wnids.txt").write_text("".join(f"{wnid}\n" for wnid in wnids))
    for index, (image, label) in enumerate(zip(x_train, y_train)):
        images = directory / "train" / classes[label] / "images"
        images.mkdir(parents=True, exist_ok=True)
        Image.fromarray(image.transpose(1, 2, 0)).save(images / f"{classes[label]}_{index}.JPEG", quality=95)
    lines = []
    for index, (image, label) in enumerate(zip(x_val, y_val)):
        file_name = f"val_{index}.JPEG"
        Image.fromarray(image.transpose(1, 2, 0)).save(directory / "val" / "images" / file_name, quality=95)
        height, width = image.shape[1:]
        lines.append(f"{file_name}\t{classes[label]}\t0\t0\t{width - 1}\t{height - 1}\n")
    (directory / "val" / "val_annotations.txt").write_text("".join(lines))
    return directory


def _check_images(x: np.ndarray, y: np.ndarray, shape: tuple[int, ...], num_classes: int) -> None:
    if x.dtype != np.uint8 or x.shape[1:] != tuple(shape) or len(y) != len(x):
        raise BadInput(
            f"images must be uint8 of shape (N, {', '.join(map(str, shape))}) with N labels; "
            f"got {x.dtype} {x.shape} and {len(y)} labels"
        )
    if len(y) and (np.min(y) < 0 or np.max(y) >= num_classes):
        raise BadInput(f"labels must lie in 0..{num_classes - 1}")
