"""TinyImageNet-200 from its directory layout (Stanford CS231n, 64x64 ImageNet subset).

``root`` is the extracted ``tiny-imagenet-200`` (or the folder that holds it):

```
wnids.txt                          one WordNet id per line, one per class
train/<wnid>/images/*.JPEG         training images of class <wnid>
val/images/*.JPEG                  validation images ...
val/val_annotations.txt            ... labelled by lines "<file>\t<wnid>\t<box>"
```

The labelled validation set is the test split (the ``test/`` images carry no labels).
Class ``k`` is the ``k``-th wnid in sorted order (what a folder-based loader assigns).
Images are decoded with PIL, greyscale ones converted to RGB, and become ``float32`` in
``[0,1]`` of shape ``(N, 3, 64, 64)``; the normalisation is the dataset's standard
per-channel statistics. With ``limit``, the train split takes classes in turn (image
``i`` of every class before image ``i + 1`` of any), so a limited set stays balanced;
the validation split takes the annotation file's first ``limit`` lines. ``seed`` is unused.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from semirobust.empirical.data.disk.limits import check_limit
from semirobust.empirical.data.registry import Dataset
from semirobust.errors import BadInput

NAME = "tinyimagenet"
DIRECTORY = "tiny-imagenet-200"
MEAN = (0.4802, 0.4481, 0.3975)
STD = (0.2770, 0.2691, 0.2821)
IMAGE_SUFFIX = ".JPEG"


def load_tinyimagenet(root: str | Path | None, *, limit: int | None = None) -> Dataset:
    """Read TinyImageNet's train and labelled validation images under ``root``;
    :class:`BadInput` naming the path if anything is missing or malformed."""
    check_limit(limit)
    directory = _dataset_directory(root)
    wnids = _read_wnids(directory / "wnids.txt")
    label_of = {wnid: label for label, wnid in enumerate(wnids)}
    train_files = _train_files(directory / "train", wnids, limit)
    val_files = _val_files(directory / "val", label_of, limit)
    x_train, y_train = _read_images(train_files)
    x_test, y_test = _read_images(val_files)
    if x_test.shape[1:] != x_train.shape[1:]:
        raise BadInput(
            f"{directory}: validation images are {tuple(x_test.shape[2:])}, training images "
            f"{tuple(x_train.shape[2:])}"
        )
    return Dataset(NAME, x_train, y_train, x_test, y_test, len(wnids), MEAN, STD)


def _dataset_directory(root: str | Path | None) -> Path:
    if root is None:
        raise BadInput(f"dataset {NAME!r} is read from disk: give its root, the extracted {DIRECTORY} directory")
    root = Path(root)
    if (root / DIRECTORY).is_dir():
        return root / DIRECTORY
    if not root.is_dir():
        raise BadInput(f"dataset {NAME!r}: {root} is not a directory")
    return root


def _read_wnids(path: Path) -> list[str]:
    if not path.is_file():
        raise BadInput(f"missing file {path} (one WordNet id per class)")
    wnids = [line.strip() for line in path.read_text().splitlines() if line.strip()]
    if len(wnids) < 2 or len(set(wnids)) != len(wnids):
        raise BadInput(f"{path}: expected at least two distinct WordNet ids, one per line")
    return sorted(wnids)


def _train_files(train: Path, wnids: list[str], limit: int | None) -> list[tuple[Path, int]]:
    per_class = []
    for label, wnid in enumerate(wnids):
        images = train / wnid / "images"
        files = sorted(images.glob(f"*{IMAGE_SUFFIX}")) if images.is_dir() else []
        if not files:
            raise BadInput(f"no {IMAGE_SUFFIX} images in {images} (class {wnid} of wnids.txt)")
        per_class.append([(path, label) for path in files])
    longest = max(len(files) for files in per_class)
    interleaved = [files[rank] for rank in range(longest) for files in per_class if rank < len(files)]
    return interleaved[:limit]


def _val_files(val: Path, label_of: dict[str, int], limit: int | None) -> list[tuple[Path, int]]:
    annotations = val / "val_annotations.txt"
    if not annotations.is_file():
        raise BadInput(f"missing file {annotations} (lines '<file>\\t<wnid>\\t<box>')")
    files = []
    for number, line in enumerate(annotations.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        fields = line.split("\t")
        if len(fields) < 2 or fields[1] not in label_of:
            raise BadInput(f"{annotations}, line {number}: expected '<file>\\t<wnid>' with a wnid of wnids.txt")
        files.append((val / "images" / fields[0], label_of[fields[1]]))
    if not files:
        raise BadInput(f"{annotations}: no annotated validation images")
    return files[:limit]


def _read_images(files: list[tuple[Path, int]]) -> tuple[torch.Tensor, torch.Tensor]:
    from PIL import Image, UnidentifiedImageError

    first_shape = None
    x = None
    for index, (path, _) in enumerate(files):
        try:
            with Image.open(path) as image:
                pixels = np.asarray(image.convert("RGB"), dtype=np.uint8)
        except (OSError, UnidentifiedImageError) as error:
            raise BadInput(f"cannot read image {path} ({error})") from None
        if first_shape is None:
            first_shape = pixels.shape
            x = np.empty((len(files), 3, *pixels.shape[:2]), dtype=np.uint8)
        elif pixels.shape != first_shape:
            raise BadInput(f"{path} is {pixels.shape[1]}x{pixels.shape[0]}; earlier images are {first_shape[1]}x{first_shape[0]}")
        x[index] = pixels.transpose(2, 0, 1)
    y = np.array([label for _, label in files], dtype=np.int64)
    scaled = x.astype(np.float32)
    scaled /= 255.0
    return torch.from_numpy(scaled), torch.from_numpy(y)


def tinyimagenet(*, seed: int = 0, root: str | None = None, limit: int | None = None) -> Dataset:
    """TinyImageNet-200: 100,000 train and 10,000 validation images of 200 classes."""
    return load_tinyimagenet(root, limit=limit)
