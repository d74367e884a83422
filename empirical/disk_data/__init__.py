"""Datasets read from disk in their standard formats: CIFAR-10/100 and TinyImageNet.

Importing this package registers ``cifar10``, ``cifar100`` and ``tinyimagenet`` with
:func:`semirobust.empirical.data.register_dataset` (loaders take ``root``, the dataset's
directory, and an optional ``limit`` of images per split) and marks them for the
standard crop-and-flip augmentation (:mod:`semirobust.empirical.augment`).
:mod:`~semirobust.empirical.disk_data.writers` writes small datasets in the same formats.
"""

from semirobust.empirical.disk_data import cifar, tinyimagenet  # noqa: F401 (registers)
