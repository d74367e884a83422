"""Typed keyword arguments of the zoo's architectures, read from an ``ArchitectureSpec``.

Each family declares its options as a frozen dataclass whose defaults are the paper's
sizes; :func:`config_from_spec` turns ``spec.kwargs`` (plain JSON values from a
checkpoint's ``config.json`` or the command line) into that dataclass, refusing unknown
names and values of the wrong type or sign with :class:`BadInput`.
"""

from __future__ import annotations

import dataclasses
from typing import TypeVar

from semirobust.empirical.model.registry import ArchitectureSpec
from semirobust.errors import BadInput

Config = TypeVar("Config")


def config_from_spec(config_type: type[Config], spec: ArchitectureSpec) -> Config:
    """``config_type(**spec.kwargs)``, validated: every field is a positive int or a float in [0, 1)."""
    fields = {field.name: field for field in dataclasses.fields(config_type)}
    unknown = sorted(set(spec.kwargs) - set(fields))
    if unknown:
        raise BadInput(
            f"architecture {spec.name!r}: unknown option(s) {', '.join(unknown)}; "
            f"accepted: {', '.join(fields)}"
        )
    values = {}
    for name, value in spec.kwargs.items():
        default = fields[name].default
        if isinstance(default, int):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise BadInput(
                    f"architecture {spec.name!r}: option {name}={value!r} must be an integer >= 1"
                )
        elif isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < 1:
            raise BadInput(
                f"architecture {spec.name!r}: option {name}={value!r} must be a number in [0, 1)"
            )
        values[name] = value
    return config_type(**values)


def image_shape(spec: ArchitectureSpec, *, min_side: int) -> tuple[int, int, int]:
    """``(channels, height, width)`` of ``spec``, refusing non-images and sides below ``min_side``."""
    shape = tuple(spec.input_shape)
    if len(shape) != 3 or min(shape[1:]) < min_side:
        raise BadInput(
            f"architecture {spec.name!r} needs images (channels, height, width) with both sides "
            f">= {min_side}; got input shape {shape}"
        )
    return shape  # type: ignore[return-value]


def scaled(channels: int, width: int, reference: int) -> int:
    """``channels * width / reference`` rounded, at least 1: a family's channel count at ``width``."""
    return max(1, round(channels * width / reference))
