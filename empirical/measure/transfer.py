"""Feature sensitivity ``Delta_a`` by attack, and the Lipschitz bounds on the worst-case margin.

THEORY.md section 5. ``Delta_a(x) = sup_{delta in S} ||f_a(x + delta) - f_a(x)||_2``:

* certified: with ``[l, u]`` a sound box of ``f_a`` over the threat set and ``c = f_a(x)``
  (a point of the box), ``|f_a(x+delta)_j - c_j| <= max(u_j - c_j, c_j - l_j)``, so
  ``Delta_a <= ||max(u - c, c - l)||_2`` (never above the box diagonal ``||u - l||_2``);
* attacked: PGD maximising the feature displacement, a lower estimate of the sup.

The margin ``m(., y)`` is ``sqrt(2)``-Lipschitz in the logits, hence for ``f_b``
``L_b``-Lipschitz (l2)

    m(F(x+delta), y) >= m(F(x), y) - sqrt(2) * L_b * Delta_a(x)          (transfer bound)

and for the whole network ``L``-Lipschitz, with ``eps_2`` the radius of an l2 ball
holding the threat set (``eps`` for l2, ``eps * sqrt(d)`` for l-inf in ``d`` dimensions),

    m(F(x+delta), y) >= m(F(x), y) - sqrt(2) * L * eps_2                 (Lipschitz margin)
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from semirobust.empirical.attacks.gradient import PGD
from semirobust.empirical.attacks.objectives import feature_displacement, multiclass_margin
from semirobust.empirical.attacks.threat import ThreatModel
from semirobust.empirical.bounds.box import INPUT_BOX_DESCRIPTION, threat_point64
from semirobust.empirical.bounds.layer_rules import float64_eval_copy
from semirobust.empirical.bounds.lipschitz import LipschitzBound, lipschitz_upper
from semirobust.empirical.bounds.sensitivity import certified_feature_sensitivity
from semirobust.empirical.measure.aggregate import mean_measurement
from semirobust.empirical.model.stages import Split
from semirobust.theory.measurement import Kind, Measurement
from semirobust.theory.quantities import CLEAN_MARGIN, DELTA_A, LIPSCHITZ_B, LOGITS


def attacked_feature_sensitivity(
    f_a: nn.Module,
    x: torch.Tensor,
    threat: ThreatModel,
    *,
    steps: int = 20,
    restarts: int = 1,
    seed: int = 0,
    step_size: float | None = None,
) -> torch.Tensor:
    """Per sample, ``||f_a(x_adv) - f_a(x)||_2`` at PGD's point (maximising the
    displacement; ``step_size`` defaults to PGD's): a lower estimate of ``Delta_a(x)``,
    evaluated in float64."""
    x = x.detach()
    with torch.no_grad():
        clean = f_a.eval()(x)
    attack = PGD(
        threat, objective=feature_displacement(clean), steps=steps, restarts=restarts, seed=seed,
        step_size=step_size,
    )
    x_adv = attack(f_a, x, torch.zeros(x.shape[0], dtype=torch.long, device=x.device))
    f_a64 = float64_eval_copy(f_a)
    with torch.no_grad():
        moved = f_a64(threat_point64(x_adv, x, threat)) - f_a64(x.cpu().double())
    return moved.flatten(start_dim=1).norm(dim=1)


@dataclass(frozen=True)
class FeatureSensitivity:
    """Per-sample ``Delta_a``: a certified upper bound and an attack's lower estimate."""

    certified: torch.Tensor
    attacked: torch.Tensor
    settings: dict[str, Any] = field(default_factory=dict)

    def measurements(self, prefix: str = DELTA_A.name) -> list[Measurement]:
        """Mean certified upper bound and mean attacked value of ``Delta_a``, in THEORY's
        unit for ``Delta_a`` (l2 distance in ``f_a``'s output)."""
        return [
            mean_measurement(
                f"{prefix}_certified",
                self.certified,
                kind=Kind.CERTIFIED,
                estimator=f"{self.settings.get('method', 'ibp')} box of f_a",
                unit=DELTA_A.unit,
                settings=self.settings,
            ),
            mean_measurement(
                f"{prefix}_attacked",
                self.attacked,
                kind=Kind.ATTACK,
                estimator="PGD maximising ||f_a(x+delta) - f_a(x)||_2",
                unit=DELTA_A.unit,
                settings=self.settings,
            ),
        ]


def feature_sensitivity(
    f_a: nn.Module,
    x: torch.Tensor,
    threat: ThreatModel,
    *,
    method: str = "ibp",
    steps: int = 20,
    restarts: int = 1,
    seed: int = 0,
) -> FeatureSensitivity:
    """``Delta_a`` per sample, certified (``method`` box) and attacked (PGD)."""
    return FeatureSensitivity(
        certified=certified_feature_sensitivity(f_a, x, threat, method),
        attacked=attacked_feature_sensitivity(
            f_a, x, threat, steps=steps, restarts=restarts, seed=seed
        ),
        settings={
            **threat.to_dict(),
            "method": method,
            "input_box": INPUT_BOX_DESCRIPTION[threat.norm],
            "pgd_steps": steps,
            "pgd_restarts": restarts,
            "seed": seed,
        },
    )


def clean_margin64(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """``m(F(x), y)`` per sample, computed in float64 on the CPU."""
    with torch.no_grad():
        logits = float64_eval_copy(model)(x.detach().cpu().double())
    return multiclass_margin(logits, y.detach().cpu().long())


def threat_l2_radius(threat: ThreatModel, input_numel: int) -> float:
    """Radius of an l2 ball containing the threat set: ``eps`` (l2) or ``eps sqrt(d)`` (l-inf)."""
    return threat.eps if threat.norm == "l2" else threat.eps * math.sqrt(input_numel)


def lipschitz_margin_lower(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    threat: ThreatModel,
    lipschitz: LipschitzBound,
) -> torch.Tensor:
    """Per sample ``m(F(x), y) - sqrt(2) * L * eps_2``: a lower bound of the worst-case
    margin (certified when ``lipschitz`` is)."""
    radius = threat_l2_radius(threat, x[0].numel())
    return clean_margin64(model, x, y) - math.sqrt(2) * lipschitz.product * radius


@dataclass(frozen=True)
class TransferBound:
    """Per-sample THEORY.md section 5 bounds on ``inf_delta m(F(x+delta), y)``."""

    clean_margin: torch.Tensor
    certified: torch.Tensor
    estimate: torch.Tensor
    lipschitz_b: LipschitzBound
    sensitivity: FeatureSensitivity

    def measurements(self) -> list[Measurement]:
        """Named and in the units of THEORY.md section 5's quantities (``theory.quantities``):
        ``gamma_transfer_certified`` / ``gamma_transfer_estimate`` (bounds on
        ``gamma_whole``), ``clean_margin``, ``Delta_a_certified``, ``Delta_a_attacked``, ``L_b``."""
        settings = {
            **self.sensitivity.settings,
            "L_b": self.lipschitz_b.product,
            "L_b_certified": self.lipschitz_b.certified,
            "formula": "m(F(x),y) - sqrt(2) * L_b * Delta_a(x)",
        }
        certified_kind = Kind.CERTIFIED if self.lipschitz_b.certified else Kind.ESTIMATE
        return [
            mean_measurement(
                "gamma_transfer_certified",
                self.certified,
                kind=certified_kind,
                estimator="Lipschitz transfer, certified Delta_a",
                unit=LOGITS,
                settings=settings,
            ),
            mean_measurement(
                "gamma_transfer_estimate",
                self.estimate,
                kind=Kind.ESTIMATE,
                estimator="Lipschitz transfer, attacked Delta_a",
                unit=LOGITS,
                settings=settings,
            ),
            mean_measurement(
                CLEAN_MARGIN.name,
                self.clean_margin,
                kind=Kind.ESTIMATE,
                estimator="test-set mean of m(F(x), y)",
                unit=LOGITS,
                settings=settings,
            ),
            *self.sensitivity.measurements(),
            self.lipschitz_b.measurement(LIPSCHITZ_B.name, unit=LIPSCHITZ_B.unit),
        ]


def lipschitz_transfer_bound(
    split: Split,
    x: torch.Tensor,
    y: torch.Tensor,
    threat: ThreatModel,
    *,
    lipschitz_b: LipschitzBound | None = None,
    sensitivity: FeatureSensitivity | None = None,
    method: str = "ibp",
    steps: int = 20,
    restarts: int = 1,
    seed: int = 0,
) -> TransferBound:
    """``m(F(x), y) - sqrt(2) L_b Delta_a(x)`` per sample, with ``Delta_a`` certified
    (a certified lower bound of the worst-case margin when ``L_b`` is certified) and
    attacked (an estimate). ``L_b`` defaults to :func:`lipschitz_upper` of ``f_b``."""
    if lipschitz_b is None:
        with torch.no_grad():
            feature_shape = tuple(split.f_a.eval()(x[:1]).shape[1:])
        lipschitz_b = lipschitz_upper(split.f_b, feature_shape)
    if sensitivity is None:
        sensitivity = feature_sensitivity(
            split.f_a, x, threat, method=method, steps=steps, restarts=restarts, seed=seed
        )
    model = nn.Sequential(*split.f_a, *split.f_b)
    clean = clean_margin64(model, x, y)
    factor = math.sqrt(2) * lipschitz_b.product
    return TransferBound(
        clean_margin=clean,
        certified=clean - factor * sensitivity.certified,
        estimate=clean - factor * sensitivity.attacked,
        lipschitz_b=lipschitz_b,
        sensitivity=sensitivity,
    )
