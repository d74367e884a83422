"""Package discovery for the layout DESIGN.md asks for: the top-level folders ``theory/`` and
``empirical/`` are the subpackages ``semirobust.theory`` and ``semirobust.empirical``. Every
folder with an ``__init__.py`` under a root is found, so a new subpackage needs no listing."""

from setuptools import find_packages, setup

PACKAGE_ROOTS = {"semirobust": "semirobust", "semirobust.theory": "theory", "semirobust.empirical": "empirical"}

setup(
    package_dir=PACKAGE_ROOTS,
    packages=[
        name
        for root, folder in PACKAGE_ROOTS.items()
        for name in (root, *(f"{root}.{sub}" for sub in find_packages(folder)))
    ],
)
