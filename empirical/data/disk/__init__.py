"""Datasets read from disk in their standard formats: CIFAR-10/100 and TinyImageNet.

Loaders take ``root``, the dataset's directory, and an optional ``limit`` of images per
split; :mod:`semirobust.empirical.data` registers them and marks them for the standard
crop-and-flip augmentation (:mod:`semirobust.empirical.data.augment`).
:mod:`~semirobust.empirical.data.disk.writers` writes small datasets in the same formats.
"""
