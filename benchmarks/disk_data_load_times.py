"""Seconds to read full-size CIFAR-10 and a TinyImageNet-format sample from disk.

Usage: ``OMP_NUM_THREADS=1 python benchmarks/disk_data_load_times.py [--tiny-per-class 10]``.
Writes random images in the exact on-disk formats into a temporary directory (CIFAR-10:
50,000 + 10,000 images; TinyImageNet: 200 classes x ``--tiny-per-class`` training images
and 10 validation images per class, 64x64 JPEG), then times the registered loaders.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from semirobust.empirical.data import load_dataset
from semirobust.empirical.data.disk.cifar import CIFAR10
from semirobust.empirical.data.disk.writers import write_cifar, write_tinyimagenet


def timed_load(name: str, root: Path) -> tuple[float, int, int]:
    start = time.perf_counter()
    dataset = load_dataset(name, root=str(root))
    return time.perf_counter() - start, len(dataset.x_train), len(dataset.x_test)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tiny-per-class", type=int, default=10)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as scratch:
        cifar = write_cifar(
            Path(scratch), CIFAR10,
            x_train=rng.integers(0, 256, (50_000, 3, 32, 32), dtype=np.uint8), y_train=rng.integers(0, 10, 50_000),
            x_test=rng.integers(0, 256, (10_000, 3, 32, 32), dtype=np.uint8), y_test=rng.integers(0, 10, 10_000),
        )
        seconds, n_train, n_test = timed_load("cifar10", cifar)
        print(f"cifar10: {n_train} + {n_test} images in {seconds:.2f} s")
        wnids = [f"n{index:08d}" for index in range(200)]
        y_train = np.repeat(np.arange(200), args.tiny_per_class)
        y_val = np.repeat(np.arange(200), 10)
        tiny = write_tinyimagenet(
            Path(scratch), wnids,
            x_train=rng.integers(0, 256, (len(y_train), 3, 64, 64), dtype=np.uint8), y_train=y_train,
            x_val=rng.integers(0, 256, (len(y_val), 3, 64, 64), dtype=np.uint8), y_val=y_val,
        )
        seconds, n_train, n_test = timed_load("tinyimagenet", tiny)
        print(f"tinyimagenet: {n_train} + {n_test} images in {seconds:.2f} s "
              f"({1e3 * seconds / (n_train + n_test):.2f} ms per image)")


if __name__ == "__main__":
    main()
