"""AutoAttack, standard version (Croce & Hein 2020), run by ``pyautoattack``.

``pyautoattack`` 0.2.0 packages the authors' own code (MIT) and declares no requirements,
so it installs beside the CPU torch as a normal dependency. We build its
``AutoAttack(version='standard')`` object, which sets every parameter of the standard
version, and run its four configured attacks as the stages of a :class:`WorstCase`
ensemble in the authors' order: APGD-CE, APGD-T, FAB-T, Square. Each stage gets only the
inputs still unbroken and the lowest-margin point per input is kept, as the authors
prescribe. Nothing here re-implements an attack.

Seeding: every stage gets the explicit ``seed``; the library reseeds torch's global
generator inside ``perturb``, so each call runs inside ``torch.random.fork_rng`` and the
caller's random state is left untouched.

With fewer than ``10`` classes the targeted stages use ``K - 1`` target classes (the
library's default of 9 would index past the logits); APGD-T's targeted DLR loss needs at
least 4 classes, so with fewer it is left out and the settings say so.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
from torch import nn

from semirobust.empirical.attacks.base import Attack
from semirobust.empirical.attacks.ensemble import WorstCase
from semirobust.empirical.attacks.threat import ThreatModel
from semirobust.errors import BadInput

LIBRARY = "pyautoattack"
STANDARD_STAGES = ("apgd-ce", "apgd-t", "fab-t", "square")
WHITE_BOX_STAGES = ("apgd-ce", "apgd-t", "fab-t")
_LIBRARY_NORMS = {"linf": "Linf", "l2": "L2"}
_MIN_CLASSES = {"apgd-ce": 2, "apgd-t": 4, "fab-t": 3, "square": 2}

StageRunner = Callable[[object, torch.Tensor, torch.Tensor, int], torch.Tensor]


def _apgd_ce(library_attack, x: torch.Tensor, y: torch.Tensor, seed: int) -> torch.Tensor:
    library_attack.apgd.loss = "ce"
    library_attack.apgd.seed = seed
    return library_attack.apgd.perturb(x, y)


def _apgd_t(library_attack, x: torch.Tensor, y: torch.Tensor, seed: int) -> torch.Tensor:
    library_attack.apgd_targeted.seed = seed
    return library_attack.apgd_targeted.perturb(x, y)


def _fab_t(library_attack, x: torch.Tensor, y: torch.Tensor, seed: int) -> torch.Tensor:
    library_attack.fab.targeted = True
    library_attack.fab.n_restarts = 1
    library_attack.fab.seed = seed
    return library_attack.fab.perturb(x, y)


def _square(library_attack, x: torch.Tensor, y: torch.Tensor, seed: int) -> torch.Tensor:
    library_attack.square.seed = seed
    return library_attack.square.perturb(x, y)


_STAGE_RUNNERS: dict[str, StageRunner] = {
    "apgd-ce": _apgd_ce,
    "apgd-t": _apgd_t,
    "fab-t": _fab_t,
    "square": _square,
}


def library_version() -> str:
    """The installed ``pyautoattack`` version (a :class:`BadInput` if it is missing)."""
    try:
        import pyautoattack
    except ImportError:
        raise BadInput(
            "autoattack needs the pyautoattack package: run `make venv` (pip install pyautoattack)"
        ) from None
    return pyautoattack.__version__


@dataclass
class AutoAttackStage(Attack):
    """One stage of standard AutoAttack (``apgd-ce``, ``apgd-t``, ``fab-t`` or ``square``)."""

    stage: str = "apgd-ce"

    def __post_init__(self) -> None:
        if self.stage not in _STAGE_RUNNERS:
            raise BadInput(
                f"AutoAttack stage {self.stage!r}: expected one of {', '.join(STANDARD_STAGES)}"
            )
        if self.threat.norm not in _LIBRARY_NORMS:
            raise BadInput(
                f"autoattack supports --norm {' or '.join(_LIBRARY_NORMS)}, got {self.threat.norm}"
            )

    @property
    def name(self) -> str:  # type: ignore[override]
        return self.stage

    def perturb(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        if self.threat.eps == 0:
            return x.clone()
        num_classes = int(model(x[:1]).shape[1])
        if num_classes < _MIN_CLASSES[self.stage]:
            return x.clone()
        library_attack = _standard_autoattack(model, self.threat, self.seed, x.device, num_classes)
        devices = [x.device] if x.device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices):
            x_adv = _STAGE_RUNNERS[self.stage](library_attack, x.float(), y, self.seed)
        return x_adv.to(x.dtype)

    def limitations(self, num_classes: int) -> list[str]:
        if num_classes < _MIN_CLASSES[self.stage]:
            return [
                f"{self.stage} needs at least {_MIN_CLASSES[self.stage]} classes (the model has {num_classes}); it was skipped"
            ]
        return []

    def settings(self) -> dict:
        return {
            "attack": self.stage,
            **self.threat.to_dict(),
            "seed": self.seed,
            "implementation": f"{LIBRARY} {library_version()} (Croce & Hein), version='standard'",
            "min_classes": _MIN_CLASSES[self.stage],
        }


def _standard_autoattack(
    model: nn.Module, threat: ThreatModel, seed: int, device: torch.device, num_classes: int
):
    """The library's standard-version object; targets capped at ``K - 1`` classes."""
    library_version()
    from pyautoattack import AutoAttack

    library_attack = AutoAttack(
        model,
        norm=_LIBRARY_NORMS[threat.norm],
        eps=threat.eps,
        version="standard",
        device=device,
        seed=seed,
    )
    library_attack.apgd_targeted.n_target_classes = min(
        library_attack.apgd_targeted.n_target_classes, num_classes - 1
    )
    library_attack.fab.n_target_classes = min(library_attack.fab.n_target_classes, num_classes - 1)
    return library_attack


def autoattack(threat: ThreatModel, *, seed: int = 0) -> WorstCase:
    """Standard AutoAttack: APGD-CE, APGD-T, FAB-T, Square, worst case per input."""
    stages = tuple(AutoAttackStage(threat, seed=seed, stage=stage) for stage in STANDARD_STAGES)
    return WorstCase(threat, seed=seed, stages=stages, name="autoattack")
