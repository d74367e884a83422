"""The architecture registry: a name and its keyword arguments (:class:`ArchitectureSpec`)
rebuild a model (DESIGN.md, checkpoint contract).

Every builder returns an ``nn.Sequential`` whose first stage is
:class:`~semirobust.empirical.model.normalize.Normalize` (inputs live in ``[0,1]``, the threat
model's space) and whose other stages each hold one weight layer with its normalisation and
nonlinearity, or one whole residual block.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

from torch import nn

from semirobust.empirical.runtime.device import seeded_torch_rng
from semirobust.errors import BadInput


@dataclass(frozen=True)
class ArchitectureSpec:
    """What is needed to rebuild a model: the registry name and its keyword arguments."""

    name: str
    input_shape: tuple[int, ...]
    num_classes: int
    mean: tuple[float, ...]
    std: tuple[float, ...]
    kwargs: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.kwargs, dict):
            raise BadInput(
                f"architecture {self.name!r}: options (--arch-kwargs) must be a JSON object such as "
                f'{{"width": 8}}, got {self.kwargs!r}'
            )

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "input_shape": list(self.input_shape),
            "num_classes": self.num_classes,
            "mean": list(self.mean),
            "std": list(self.std),
            "kwargs": dict(self.kwargs),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "ArchitectureSpec":
        return cls(
            name=str(data["name"]),
            input_shape=tuple(int(v) for v in data["input_shape"]),
            num_classes=int(data["num_classes"]),
            mean=tuple(float(v) for v in data["mean"]),
            std=tuple(float(v) for v in data["std"]),
            kwargs=dict(data.get("kwargs", {})),
        )


Builder = Callable[[ArchitectureSpec], nn.Sequential]
_ARCHITECTURES: dict[str, Builder] = {}


def register_architecture(name: str, builder: Builder) -> None:
    """Make ``builder(spec) -> nn.Sequential`` available under ``name`` (the package's
    ``__init__`` registers the built-in ones; a user registers their own the same way)."""
    _ARCHITECTURES[name] = builder


def architecture_names() -> list[str]:
    return sorted(_ARCHITECTURES)


def build_model(spec: ArchitectureSpec) -> nn.Sequential:
    """Instantiate the registered architecture ``spec.name`` (fresh random weights)."""
    if spec.name not in _ARCHITECTURES:
        raise BadInput(
            f"unknown architecture {spec.name!r}; known: {', '.join(architecture_names())}"
        )
    return _ARCHITECTURES[spec.name](spec)


def build_seeded_model(spec: ArchitectureSpec, seed: int) -> nn.Sequential:
    """:func:`build_model` with initial weights drawn from a generator seeded with ``seed``
    (under a forked RNG state: the same weights as a global reseed with ``seed`` gives,
    without touching the caller's random state)."""
    with seeded_torch_rng(seed):
        return build_model(spec)


def builder_options(spec: ArchitectureSpec, accepted: dict[str, tuple[int | bool, int | None]]) -> dict[str, Any]:
    """``spec.kwargs`` over the defaults of ``accepted`` (name -> (default, minimum)): refuses
    unknown names, integers below their minimum and non-booleans for boolean options."""
    unknown = sorted(set(spec.kwargs) - set(accepted))
    if unknown:
        raise BadInput(
            f"architecture {spec.name!r}: unknown option(s) {', '.join(unknown)}; "
            f"accepted: {', '.join(accepted)}"
        )
    options = {name: default for name, (default, _) in accepted.items()}
    for name, value in spec.kwargs.items():
        default, minimum = accepted[name]
        if isinstance(default, bool):
            if not isinstance(value, bool):
                raise BadInput(f"architecture {spec.name!r}: option {name}={value!r} must be true or false")
        elif isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise BadInput(f"architecture {spec.name!r}: option {name}={value!r} must be an integer >= {minimum}")
        options[name] = value
    return options
