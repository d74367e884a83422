"""The gamma sandwich: certified lower bounds and an attack's upper estimate of
``gamma = E_{(X,y)~D}[inf_{delta in S} m(G(f(X + delta)), y)]`` (THEORY.md section 2).

The readout ``G`` is fixed and named (THEORY.md caveat C1): the network passed in is
``G o f`` as one sequential model (for the whole network, the trained rest). Per sample

    certified_i  <=  inf_{delta in S} m(F(x_i + delta), y_i)  <=  attacked_i

with ``attacked_i`` the margin at the attack's point (the attack should minimise the
margin; by default :class:`~semirobust.empirical.attacks.targeted.PerTargetPGD`, margin
PGD once per target class with the minimum kept), moved exactly into the threat set in float64,
and ``certified_i`` from interval propagation, the linear relaxation, or the Lipschitz
margin bound. Both ends are evaluated in float64;
a certified value above the attacked one is a bug and is reported as a violation.
"""

from __future__ import annotations

import math
import sys
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn
from tqdm.auto import tqdm

from semirobust.empirical.attacks.base import Attack, validate_batch
from semirobust.empirical.attacks.evaluation import probe_model_inputs
from semirobust.empirical.attacks.registry import AttackSettings
from semirobust.empirical.attacks.targeted import PerTargetPGD
from semirobust.empirical.attacks.threat import ThreatModel
from semirobust.empirical.bounds.alpha_crown import DEFAULT_ALPHA, AlphaSettings
from semirobust.empirical.bounds.box import INPUT_BOX_DESCRIPTION, threat_point64
from semirobust.empirical.bounds.lipschitz import LipschitzBound
from semirobust.empirical.bounds.margin import (
    MARGIN_METHODS,
    certified_margin_lower,
    method_settings,
)
from semirobust.empirical.measure.aggregate import mean_measurement
from semirobust.empirical.measure.transfer import clean_margin64, lipschitz_margin_lower
from semirobust.empirical.runtime.progress import bar_disabled
from semirobust.errors import BadInput
from semirobust.theory.measurement import Kind, Measurement

LIPSCHITZ_METHOD = "lipschitz"
VIOLATION_TOLERANCE = 1e-9


@dataclass(frozen=True)
class GammaSandwich:
    """Per-sample margins: clean, attacked (upper), and one certified lower bound per method."""

    clean: torch.Tensor
    attacked: torch.Tensor
    certified: dict[str, torch.Tensor]
    settings: dict[str, Any] = field(default_factory=dict)
    lipschitz_certified: bool = True

    @property
    def best_certified(self) -> torch.Tensor:
        """The largest certified lower bound per sample (the max of sound bounds is sound);
        ``-inf`` (no bound) when no method was run."""
        if not self.certified:
            return torch.full_like(self.attacked, -math.inf)
        return torch.stack(list(self.certified.values())).max(dim=0).values

    def violations(self, tolerance: float = VIOLATION_TOLERANCE) -> torch.Tensor:
        """Per sample: does some certified bound exceed the attacked margin?"""
        return self.best_certified > self.attacked + tolerance

    def measurements(self) -> list[Measurement]:
        """E[inf m] per certified method and at its best (kind certified), the attacked
        upper estimate (kind attack) and the clean margin (estimate), all in logits."""
        found = []
        for method, values in self.certified.items():
            kind = (
                Kind.CERTIFIED
                if method != LIPSCHITZ_METHOD or self.lipschitz_certified
                else Kind.ESTIMATE
            )
            found.append(
                mean_measurement(
                    f"gamma_certified_{method}",
                    values,
                    kind=kind,
                    estimator=f"{method} lower bound of inf_delta m",
                    unit="logits",
                    settings=self.settings,
                )
            )
        all_sound = self.lipschitz_certified or LIPSCHITZ_METHOD not in self.certified
        if self.certified:
            found.append(
                mean_measurement(
                    "gamma_certified",
                    self.best_certified,
                    kind=Kind.CERTIFIED if all_sound else Kind.ESTIMATE,
                    estimator=f"max of {', '.join(self.certified)} per sample",
                    unit="logits",
                    settings=self.settings,
                )
            )
        found.append(
            mean_measurement(
                "gamma_attacked",
                self.attacked,
                kind=Kind.ATTACK,
                estimator=str(self.settings.get("attack", {}).get("attack", "attack")),
                unit="logits",
                settings=self.settings,
            )
        )
        found.append(
            mean_measurement(
                "margin_clean",
                self.clean,
                kind=Kind.ESTIMATE,
                estimator="test-set mean of m(F(x), y)",
                unit="logits",
                settings=self.settings,
            )
        )
        return found

    def to_dict(self) -> dict[str, Any]:
        return {
            "settings": self.settings,
            "violations": int(self.violations().sum()),
            "per_sample": {
                "clean": self.clean.tolist(),
                "attacked": self.attacked.tolist(),
                **{f"certified_{k}": v.tolist() for k, v in self.certified.items()},
            },
            "measurements": [m.to_dict() for m in self.measurements()],
        }


DEFAULT_ATTACK = AttackSettings()
#: wrong classes the margin attack targets, the highest-scoring first
MARGIN_TARGETS = 9


def margin_attack(threat: ThreatModel, settings: AttackSettings = DEFAULT_ATTACK) -> PerTargetPGD:
    """Margin PGD once per target class (the top :data:`MARGIN_TARGETS` wrong classes), each
    with ``settings``' steps, restarts and seed, the lowest margin kept per input (an untargeted
    margin PGD stops at another class's optimum on about 1% of inputs)."""
    return PerTargetPGD(threat, steps=settings.steps, restarts=settings.restarts,
                        targets=MARGIN_TARGETS, seed=settings.seed)


def gamma_sandwich(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    threat: ThreatModel,
    attack: Attack | None = None,
    *,
    methods: Sequence[str] = ("ibp",),
    lipschitz: LipschitzBound | None = None,
    readout: str = "the trained rest of the network",
    batch_size: int = 128,
    progress: bool = True,
    alpha: AlphaSettings = DEFAULT_ALPHA,
) -> GammaSandwich:
    """Per-sample certified lower bounds (each of ``methods``, plus the Lipschitz margin
    bound when ``lipschitz`` bounds ``model``) and the attacked upper estimate of
    ``inf_delta m(model(x + delta), y)``. ``readout`` names ``G`` in the settings. The
    model is put in eval mode; bounds are computed on a float64 copy on the inputs'
    device (``alpha``: alpha-CROWN's slope optimisation); each method's settings and
    time are recorded under ``settings["bounds"]``. With no
    ``methods`` and no ``lipschitz`` only the attacked and clean margins are measured
    (for a model bound propagation cannot handle). ``progress`` shows a bar of the inputs
    done on stderr."""
    validate_batch(x, y)
    if x.shape[0] == 0:
        raise BadInput("gamma_sandwich: no inputs (an empty batch)")
    probe_model_inputs(model, x[:batch_size], y)
    unknown = [m for m in methods if m not in MARGIN_METHODS]
    if unknown:
        raise BadInput(
            f"methods={list(methods)!r}: expected names among {', '.join(MARGIN_METHODS)}"
        )
    attack = attack if attack is not None else margin_attack(threat)
    if attack.threat != threat:
        raise BadInput(
            f"the attack's threat model {attack.threat} differs from the sandwich's {threat}"
        )
    model.eval()
    attacked, certified = [], {m: [] for m in methods}
    seconds = dict.fromkeys(methods, 0.0)
    bar = tqdm(total=x.shape[0], desc=f"gamma sandwich: {attack.name} and bounds", unit="input",
               disable=bar_disabled(progress), leave=False, file=sys.stderr)
    for start in range(0, x.shape[0], batch_size):
        xb, yb = x[start : start + batch_size], y[start : start + batch_size]
        x_adv = threat_point64(attack(model, xb, yb), xb, threat)
        attacked.append(clean_margin64(model, x_adv, yb))
        for method in methods:
            started = time.perf_counter()
            certified[method].append(
                certified_margin_lower(model, xb, yb, threat, method, alpha=alpha, device=xb.device)
            )
            seconds[method] += time.perf_counter() - started
        bar.update(xb.shape[0])
    bar.close()
    bounds = {m: torch.cat(v) for m, v in certified.items()}
    if lipschitz is not None:
        bounds[LIPSCHITZ_METHOD] = lipschitz_margin_lower(model, x, y, threat, lipschitz)
    sandwich = GammaSandwich(
        clean=clean_margin64(model, x, y),
        attacked=torch.cat(attacked),
        certified=bounds,
        settings={
            **threat.to_dict(),
            "readout": readout,
            "attack": attack.settings(),
            "methods": list(bounds),
            "bounds": {
                m: {**method_settings(m, alpha), "seconds": seconds[m]} for m in methods
            },
            "input_box": INPUT_BOX_DESCRIPTION[threat.norm],
            **({"lipschitz_product": lipschitz.product} if lipschitz is not None else {}),
        },
        lipschitz_certified=lipschitz.certified if lipschitz is not None else True,
    )
    broken = int(sandwich.violations().sum())
    if broken:
        warnings.warn(
            f"{broken} sample(s) have a certified margin bound above the attacked margin: a bound "
            "is unsound for this model (a layer with randomness or a wrong rule); "
            "see docs/bounds.md",
            RuntimeWarning,
            stacklevel=2,
        )
    return sandwich
