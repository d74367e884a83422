"""Models: architectures (the registry, the project's own and the zoo), networks as ordered
stages split into ``f_a`` and ``f_b`` (THEORY.md section 1), and checkpoint directories.

The registry is populated here, explicitly: ``digits-cnn`` and ``mlp`` from
:mod:`~semirobust.empirical.model.builtin`, the paper's architectures from
:mod:`~semirobust.empirical.model.zoo`.
"""

from semirobust.empirical.model.builtin import digits_cnn, mlp
from semirobust.empirical.model.normalize import Normalize
from semirobust.empirical.model.scale import Scale
from semirobust.empirical.model.registry import (
    ArchitectureSpec,
    architecture_names,
    build_model,
    build_seeded_model,
    register_architecture,
)
from semirobust.empirical.model.zoo import ZOO_BUILDERS

register_architecture("digits-cnn", digits_cnn)
register_architecture("mlp", mlp)
for _name, _builder in ZOO_BUILDERS.items():
    register_architecture(_name, _builder)

__all__ = [
    "ArchitectureSpec",
    "Normalize",
    "Scale",
    "architecture_names",
    "build_model",
    "build_seeded_model",
    "register_architecture",
]
