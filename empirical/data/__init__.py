"""Data: the dataset registry, the built-in sets, the on-disk formats and augmentation.

The registry is populated here, explicitly: ``digits`` (the embedded default) and
``gaussian-mixture`` from :mod:`~semirobust.empirical.data.builtin`; ``cifar10``,
``cifar100`` and ``tinyimagenet`` from :mod:`~semirobust.empirical.data.disk`, which train
with the standard crop-and-flip augmentation.
"""

from semirobust.empirical.data.augment import augment, register_augmentation
from semirobust.empirical.data.builtin import digits, gaussian_mixture
from semirobust.empirical.data.disk.cifar import CIFAR10, CIFAR100, cifar10, cifar100
from semirobust.empirical.data.disk.tinyimagenet import NAME as TINYIMAGENET
from semirobust.empirical.data.disk.tinyimagenet import tinyimagenet
from semirobust.empirical.data.registry import (
    Dataset,
    dataset_names,
    load_dataset,
    register_dataset,
)

register_dataset("digits", digits)
register_dataset("gaussian-mixture", gaussian_mixture)
register_dataset(CIFAR10.name, cifar10)
register_dataset(CIFAR100.name, cifar100)
register_dataset(TINYIMAGENET, tinyimagenet)
for _name in (CIFAR10.name, CIFAR100.name, TINYIMAGENET):
    register_augmentation(_name, augment)

__all__ = ["Dataset", "dataset_names", "load_dataset", "register_dataset"]
