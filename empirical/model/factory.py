"""A user's own model: a factory ``package.module:callable`` and its keyword arguments.

The factory is the user's code, imported only because the user named it (``--model``, or
the ``factory`` of a checkpoint's ``config.json``). Its module is resolved as ``python -m``
resolves one: from the current directory first, then ``sys.path`` (``PYTHONPATH``
included). Its weights come separately and never run code
(:mod:`~semirobust.empirical.model.checkpoint`).

The model must follow the input contract: it takes inputs in ``[0, 1]`` (the threat
model's space) and holds its own input normalisation. :func:`check_input_contract` checks
what can be checked on the first batch; that the model normalises inside cannot be.
"""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from semirobust.errors import BadInput

FACTORY_FORM = "package.module:callable"


@dataclass(frozen=True)
class FactorySpec:
    """What rebuilds a user's model: ``factory(**kwargs)``, for inputs of ``input_shape``
    and ``num_classes`` outputs (the data's, checked on the first batch)."""

    factory: str
    input_shape: tuple[int, ...]
    num_classes: int
    kwargs: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.kwargs, dict):
            raise BadInput(f"model {self.factory}: its keyword arguments (--model-kwargs) must be a "
                           f'JSON object such as {{"width": 8}}, got {self.kwargs!r}')

    @property
    def name(self) -> str:
        """The factory, as reports name an architecture."""
        return self.factory

    def to_dict(self) -> dict[str, Any]:
        return {"factory": self.factory, "kwargs": dict(self.kwargs),
                "input_shape": list(self.input_shape), "num_classes": self.num_classes}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FactorySpec:
        return cls(factory=str(data["factory"]), kwargs=dict(data.get("kwargs", {})),
                   input_shape=tuple(int(v) for v in data["input_shape"]),
                   num_classes=int(data["num_classes"]))


@contextmanager
def _current_directory_first() -> Iterator[None]:
    """``sys.path`` with the current directory first, as ``python -m`` has it."""
    here = os.getcwd()
    sys.path.insert(0, here)
    try:
        yield
    finally:
        sys.path.remove(here)


def import_factory(reference: str) -> Callable[..., Any]:
    """The callable ``reference`` (``package.module:callable``) names; :class:`BadInput`
    naming what is wrong: the form, a module that is not found or fails to import, a
    missing or non-callable attribute."""
    module_name, _, attribute = reference.partition(":")
    if not module_name or not attribute or not all(part.isidentifier() for part in
                                                   (*module_name.split("."), *attribute.split("."))):
        raise BadInput(f"model {reference!r}: expected {FACTORY_FORM} (e.g. my_models:resnet18)")
    with _current_directory_first():
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as error:
            if error.name is not None and (module_name + ".").startswith(error.name + "."):
                raise BadInput(
                    f"model {reference}: no module named {error.name!r} (modules are found from "
                    f"the current directory {os.getcwd()}, then PYTHONPATH and sys.path, as python -m does)"
                ) from None
            raise BadInput(f"model {reference}: importing {module_name} failed: "
                           f"ModuleNotFoundError: {error}") from None
        except Exception as error:  # noqa: BLE001  (importing runs the user's module: any failure is theirs)
            raise BadInput(f"model {reference}: importing {module_name} failed: "
                           f"{type(error).__name__}: {_one_line(error)}") from None
    target: Any = module
    for part in attribute.split("."):
        if not hasattr(target, part):
            raise BadInput(f"model {reference}: module {module_name} has no attribute {attribute!r}")
        target = getattr(target, part)
    if not callable(target):
        raise BadInput(f"model {reference}: {attribute} is a {type(target).__name__}, not a callable")
    return target


def build_factory_model(spec: FactorySpec) -> nn.Module:
    """``factory(**kwargs)`` (fresh weights); :class:`BadInput` when the call fails (a
    keyword it does not take, say) or returns something other than an ``nn.Module``."""
    factory = import_factory(spec.factory)
    with _current_directory_first():
        try:
            model = factory(**spec.kwargs)
        except Exception as error:  # noqa: BLE001  (the factory is the user's code)
            raise BadInput(f"model {spec.factory} with keyword arguments {spec.kwargs}: "
                           f"{type(error).__name__}: {_one_line(error)}") from None
    if not isinstance(model, nn.Module):
        raise BadInput(f"model {spec.factory} returned a {type(model).__name__}, not a torch nn.Module")
    return model


def check_input_contract(model: nn.Module, staged: nn.Module, x: torch.Tensor,
                         spec: FactorySpec, data: str) -> None:
    """On the first batch ``x`` of dataset ``data`` (in ``[0, 1]``, as every dataset is:
    :class:`~semirobust.empirical.data.registry.Dataset`): the model maps it to finite
    outputs of shape ``(batch, num_classes)``, and its stages ``staged`` reproduce those
    outputs (exactly on the CPU; to float rounding elsewhere, where kernels may be chosen per
    call). :class:`BadInput` naming the first that fails."""
    where = f"model {spec.factory} on the first batch of {data}"
    with torch.no_grad():
        try:
            output = model(x)
        except Exception as error:  # noqa: BLE001  (the forward is the user's code)
            raise BadInput(f"{where} (inputs of shape {tuple(x.shape[1:])}): "
                           f"{type(error).__name__}: {_one_line(error)}") from None
        if not isinstance(output, torch.Tensor) or tuple(output.shape) != (x.shape[0], spec.num_classes):
            shape = tuple(output.shape) if isinstance(output, torch.Tensor) else type(output).__name__
            raise BadInput(f"{where}: the model returns {shape}, expected logits of shape "
                           f"({x.shape[0]}, {spec.num_classes}) for {spec.num_classes} classes")
        if not bool(torch.isfinite(output).all()):
            raise BadInput(f"{where}: the model's outputs are not all finite (NaN or infinite logits)")
        reproduced = staged(x)
    same = torch.equal(reproduced, output) if x.device.type == "cpu" else torch.allclose(reproduced, output)
    if not same:
        difference = float((reproduced - output).abs().max())
        raise BadInput(f"{where}: its traced graph does not reproduce its forward (largest difference "
                       f"{difference:.3g}); a forward whose result depends on Python state cannot be split")


def _one_line(error: BaseException) -> str:
    lines = str(error).strip().splitlines()
    return lines[0] if lines else ""


__all__ = ["FactorySpec", "build_factory_model", "check_input_contract", "import_factory"]
