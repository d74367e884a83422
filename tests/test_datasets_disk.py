"""CIFAR-10/100 and TinyImageNet read from tiny files written in their exact formats."""

from __future__ import annotations

import os
import pickle
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from semirobust.empirical.data import dataset_names, load_dataset
from semirobust.empirical.data.augment import augment, augmentation_for
from semirobust.empirical.data.disk.cifar import CIFAR10, CIFAR100, load_cifar
from semirobust.empirical.data.disk.py2_pickle import dumps_py2
from semirobust.empirical.data.disk.safe_pickle import load_numpy_pickle
from semirobust.empirical.data.disk.tinyimagenet import load_tinyimagenet
from semirobust.empirical.data.disk.writers import write_cifar, write_tinyimagenet
from semirobust.errors import BadInput


def random_images(rng: np.random.Generator, n: int, side: int = 32) -> np.ndarray:
    return rng.integers(0, 256, size=(n, 3, side, side), dtype=np.uint8)


@pytest.fixture
def cifar10_arrays():
    rng = np.random.default_rng(0)
    return {
        "x_train": random_images(rng, 30), "y_train": rng.integers(0, 10, 30),
        "x_test": random_images(rng, 10), "y_test": rng.integers(0, 10, 10),
    }


@pytest.fixture
def cifar10_dir(tmp_path: Path, cifar10_arrays) -> Path:
    return write_cifar(tmp_path, CIFAR10, **cifar10_arrays)


def test_disk_datasets_are_registered_and_augmented() -> None:
    assert {"cifar10", "cifar100", "tinyimagenet", "digits"} <= set(dataset_names())
    for name in ("cifar10", "cifar100", "tinyimagenet"):
        assert augmentation_for(name) is augment
    assert augmentation_for("digits") is None
    assert augmentation_for("gaussian-mixture") is None


def test_cifar10_round_trip_is_exact(cifar10_dir: Path, cifar10_arrays) -> None:
    assert sorted(p.name for p in cifar10_dir.iterdir()) == sorted(
        [*CIFAR10.train_files, "test_batch", "batches.meta"]
    )
    dataset = load_dataset("cifar10", root=str(cifar10_dir))
    assert dataset.x_train.dtype == torch.float32 and dataset.x_train.shape == (30, 3, 32, 32)
    torch.testing.assert_close(dataset.x_train, torch.from_numpy(cifar10_arrays["x_train"]) / 255.0)
    torch.testing.assert_close(dataset.x_test, torch.from_numpy(cifar10_arrays["x_test"]) / 255.0)
    assert dataset.y_train.tolist() == cifar10_arrays["y_train"].tolist()
    assert dataset.y_test.tolist() == cifar10_arrays["y_test"].tolist()
    assert dataset.num_classes == 10
    assert dataset.mean == (0.4914, 0.4822, 0.4465) and dataset.std == (0.2470, 0.2435, 0.2616)


def test_cifar_channels_are_the_red_green_blue_planes_of_each_row(tmp_path: Path) -> None:
    x = np.zeros((1, 3, 32, 32), dtype=np.uint8)
    x[0, 0, 0, 1] = 255  # red, row 0, column 1: byte 1 of the row
    x[0, 2, 31, 31] = 51  # blue, last pixel: the row's last byte
    directory = write_cifar(tmp_path, CIFAR10, x_train=x, y_train=np.array([3]), x_test=x, y_test=np.array([3]))
    row = load_numpy_pickle(directory / "test_batch")[b"data"][0]
    assert row[1] == 255 and row[-1] == 51 and row.sum() == 306
    dataset = load_cifar(CIFAR10, directory)
    assert dataset.x_test[0, 0, 0, 1] == 1.0 and dataset.x_test[0, 2, 31, 31] == pytest.approx(0.2)


def test_written_batches_are_python2_pickles_that_the_standard_reader_reads(cifar10_dir: Path) -> None:
    blob = (cifar10_dir / "data_batch_1").read_bytes()
    assert blob.startswith(b"\x80\x02}")
    assert b"cnumpy.core.multiarray\n_reconstruct\n" in blob and b"_codecs" not in blob
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # numpy 2 aliases numpy.core
        with (cifar10_dir / "data_batch_1").open("rb") as file:
            standard = pickle.load(file, encoding="bytes")
    ours = load_numpy_pickle(cifar10_dir / "data_batch_1")
    assert standard.keys() == ours.keys() == {b"batch_label", b"labels", b"data", b"filenames"}
    assert np.array_equal(standard[b"data"], ours[b"data"]) and standard[b"labels"] == ours[b"labels"]


@pytest.mark.parametrize("protocol", [2, 4, 5])
def test_batches_pickled_by_python3_load_too(tmp_path: Path, cifar10_dir: Path, protocol: int) -> None:
    batch = load_numpy_pickle(cifar10_dir / "data_batch_2")
    (cifar10_dir / "data_batch_2").write_bytes(pickle.dumps(batch, protocol=protocol))
    again = load_numpy_pickle(cifar10_dir / "data_batch_2")
    assert np.array_equal(again[b"data"], batch[b"data"]) and again[b"labels"] == batch[b"labels"]


class RunsCode:
    def __reduce__(self):
        return (os.getcwd, ())


def test_a_pickle_that_would_run_code_is_refused(cifar10_dir: Path) -> None:
    (cifar10_dir / "data_batch_3").write_bytes(pickle.dumps({b"data": RunsCode()}, protocol=2))
    with pytest.raises(BadInput, match=r"data_batch_3: refusing to load posix\.getcwd"):
        load_dataset("cifar10", root=str(cifar10_dir))


class HugeArray:
    """Pickles as a request for a 9 TiB array, by either of numpy's constructors."""

    def __init__(self, constructor: str) -> None:
        self.constructor = constructor

    def __reduce__(self):
        shape = (9 * 2**40,)
        if self.constructor == "ndarray":
            return (np.ndarray, (shape, np.dtype(np.uint8)))
        return (np.array(0).__reduce__()[0], (np.ndarray, shape, b"B"))


@pytest.mark.parametrize("constructor", ["ndarray", "_reconstruct"])
def test_a_pickle_asking_for_more_memory_than_its_file_holds_is_refused_before_allocation(
    cifar10_dir: Path, constructor: str
) -> None:
    (cifar10_dir / "data_batch_2").write_bytes(
        pickle.dumps({b"data": HugeArray(constructor), b"labels": [0]}, protocol=2)
    )
    with pytest.raises(BadInput, match=r"data_batch_2: an array of shape \(9895604649984,\) .* the file is corrupt"):
        load_dataset("cifar10", root=str(cifar10_dir))


def test_a_split_without_images_is_refused(tmp_path: Path) -> None:
    rng = np.random.default_rng(2)
    directory = write_cifar(
        tmp_path, CIFAR10, x_train=random_images(rng, 0), y_train=np.zeros(0, np.int64),
        x_test=random_images(rng, 2), y_test=np.array([1, 2]),
    )
    with pytest.raises(BadInput, match="'cifar10': the train split holds no images"):
        load_dataset("cifar10", root=str(directory))


def test_limit_takes_the_first_images_across_batches(cifar10_dir: Path, cifar10_arrays) -> None:
    dataset = load_cifar(CIFAR10, cifar10_dir, limit=13)
    assert len(dataset.x_train) == 13 and len(dataset.x_test) == 10
    assert dataset.y_train.tolist() == cifar10_arrays["y_train"][:13].tolist()
    with pytest.raises(BadInput, match="limit=0"):
        load_cifar(CIFAR10, cifar10_dir, limit=0)


def test_root_may_be_the_folder_holding_the_batches(cifar10_dir: Path) -> None:
    assert len(load_cifar(CIFAR10, cifar10_dir.parent).x_train) == 30


def test_cifar100_reads_fine_labels(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    y_train = np.array([0, 99, 42, 7, 50, 1])
    directory = write_cifar(
        tmp_path, CIFAR100, x_train=random_images(rng, 6), y_train=y_train,
        x_test=random_images(rng, 2), y_test=np.array([99, 3]),
    )
    assert sorted(p.name for p in directory.iterdir()) == ["meta", "test", "train"]
    dataset = load_dataset("cifar100", root=str(directory))
    assert dataset.num_classes == 100 and dataset.y_train.tolist() == y_train.tolist()
    assert dataset.mean == (0.5071, 0.4865, 0.4409)


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda d: (d / "data_batch_4").unlink(), r"missing file .*data_batch_4"),
        (lambda d: (d / "batches.meta").unlink(), r"missing file .*batches\.meta"),
        (lambda d: (d / "test_batch").write_bytes((d / "test_batch").read_bytes()[:500]), r"test_batch is not a readable pickle"),
        (lambda d: (d / "test_batch").write_bytes(dumps_py2([1, 2])), r"test_batch: expected a pickled dict"),
        (lambda d: (d / "data_batch_1").write_bytes(dumps_py2({b"data": np.zeros((2, 3072), np.uint8), b"labels": [0, 10]})), r"data_batch_1: labels must be integers in 0\.\.9"),
        (lambda d: (d / "data_batch_1").write_bytes(dumps_py2({b"data": np.zeros((2, 1024), np.uint8), b"labels": [0, 1]})), r"data_batch_1: b'data' must be a uint8 array of shape \(N, 3072\)"),
        (lambda d: (d / "data_batch_1").write_bytes(dumps_py2({b"data": np.zeros((2, 3072), np.uint8), b"labels": [0]})), r"b'labels' must be a list of 2 labels"),
        (lambda d: (d / "batches.meta").write_bytes(dumps_py2({b"label_names": [b"a"]})), r"batches\.meta: expected 10 class names"),
    ],
)
def test_missing_or_malformed_files_name_the_path(cifar10_dir: Path, damage, message) -> None:
    damage(cifar10_dir)
    with pytest.raises(BadInput, match=message):
        load_dataset("cifar10", root=str(cifar10_dir))


@pytest.mark.parametrize("name", ["cifar10", "cifar100", "tinyimagenet"])
def test_a_disk_dataset_needs_a_root(tmp_path: Path, name: str) -> None:
    with pytest.raises(BadInput, match="give its root"):
        load_dataset(name)
    with pytest.raises(BadInput, match="is not a directory"):
        load_dataset(name, root=str(tmp_path / "nowhere"))


# TinyImageNet: JPEG is lossy, so images are flat colours (exact up to rounding).
WNIDS = ["n09999999", "n01443537", "n05555555"]  # wnids.txt order; labels follow sorted order


def flat_images(labels: np.ndarray, side: int = 64) -> np.ndarray:
    colours = np.array([[200, 20, 20], [20, 200, 20], [20, 20, 200]], dtype=np.uint8)
    return np.broadcast_to(colours[labels][:, :, None, None], (len(labels), 3, side, side)).copy()


@pytest.fixture
def tiny_dir(tmp_path: Path) -> Path:
    y_train = np.array([0, 0, 0, 1, 1, 1, 2, 2, 2])
    y_val = np.array([2, 0, 1, 1])
    return write_tinyimagenet(
        tmp_path, WNIDS, x_train=flat_images(y_train), y_train=y_train,
        x_val=flat_images(y_val), y_val=y_val,
    )


def test_tinyimagenet_layout_round_trip(tiny_dir: Path) -> None:
    assert (tiny_dir / "train" / "n01443537" / "images").is_dir()
    assert (tiny_dir / "val" / "val_annotations.txt").read_text().startswith("val_0.JPEG\tn09999999\t")
    dataset = load_dataset("tinyimagenet", root=str(tiny_dir))
    assert dataset.num_classes == 3 and dataset.x_train.shape == (9, 3, 64, 64)
    assert dataset.y_test.tolist() == [2, 0, 1, 1]
    torch.testing.assert_close(dataset.x_test, torch.from_numpy(flat_images(np.array([2, 0, 1, 1]))) / 255.0, atol=3 / 255, rtol=0)
    assert sorted(dataset.y_train.tolist()) == [0, 0, 0, 1, 1, 1, 2, 2, 2]
    for x, y in zip(dataset.x_train, dataset.y_train):
        torch.testing.assert_close(x, torch.from_numpy(flat_images(np.array([int(y)]))[0]) / 255.0, atol=3 / 255, rtol=0)
    assert dataset.mean == (0.4802, 0.4481, 0.3975)


def test_tinyimagenet_limit_takes_classes_in_turn(tiny_dir: Path) -> None:
    dataset = load_tinyimagenet(tiny_dir.parent, limit=4)
    assert dataset.y_train.tolist() == [0, 1, 2, 0]
    assert dataset.y_test.tolist() == [2, 0, 1, 1]


def test_tinyimagenet_greyscale_images_become_rgb(tiny_dir: Path) -> None:
    from PIL import Image

    path = next((tiny_dir / "train" / "n01443537" / "images").iterdir())
    Image.new("L", (64, 64), color=128).save(path)
    dataset = load_tinyimagenet(tiny_dir)
    grey = dataset.x_train[dataset.y_train == 0]
    assert any(torch.allclose(x, torch.full_like(x, 128 / 255), atol=2 / 255) for x in grey)


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda d: (d / "wnids.txt").unlink(), r"missing file .*wnids\.txt"),
        (lambda d: (d / "val" / "val_annotations.txt").unlink(), r"missing file .*val_annotations\.txt"),
        (lambda d: (d / "val" / "val_annotations.txt").write_text("val_0.JPEG\tn00000000\t0\t0\t1\t1\n"), r"val_annotations\.txt, line 1: expected"),
        (lambda d: (d / "val" / "images" / "val_1.JPEG").write_bytes(b"not a jpeg"), r"cannot read image .*val_1\.JPEG"),
        (lambda d: (d / "val" / "images" / "val_3.JPEG").unlink(), r"cannot read image .*val_3\.JPEG"),
        (lambda d: [p.unlink() for p in (d / "train" / "n05555555" / "images").iterdir()], r"no \.JPEG images in .*n05555555"),
    ],
)
def test_tinyimagenet_missing_or_malformed_files_name_the_path(tiny_dir: Path, damage, message) -> None:
    damage(tiny_dir)
    with pytest.raises(BadInput, match=message):
        load_tinyimagenet(tiny_dir)


def test_tinyimagenet_images_of_another_size_are_refused(tiny_dir: Path) -> None:
    from PIL import Image

    Image.new("RGB", (32, 32)).save(tiny_dir / "val" / "images" / "val_2.JPEG")
    with pytest.raises(BadInput, match=r"val_2\.JPEG is 32x32; earlier images are 64x64"):
        load_tinyimagenet(tiny_dir)
