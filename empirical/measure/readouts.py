"""The readouts of caveat C1, and gammas and A2 margin gaps measured through them.

THEORY.md 2 and 4 (C1): ``f`` is gamma-semirobust with readout ``G`` when
``E[inf_delta m(G(f(X+delta)), y)] >= gamma``; with a free readout ``c*G`` scales gamma
by ``c``, so every gamma names a fixed readout (:class:`Readout`):

* **canonical**: the trained rest of the network after the layer (:func:`canonical`);
* **probe**: a linear map ``h -> W h + b`` fitted per layer by least squares on centred
  one-hot targets, or by logistic regression, on clean or adversarial activations, with
  ``||W||_2 <= bound`` enforced by rescaling (:func:`fit_probe`; the constraint and the
  factor applied are recorded);
* **Lipschitz-normalised**: a readout divided by its certified l2 Lipschitz constant
  ``L_G`` (:func:`lipschitz_normalised`): its margin is ``sqrt(2)``-Lipschitz in ``h``.

Every measurement made here names its readout in ``settings['readout']``: gammas
(:func:`readout_gamma`, certified by interval bound propagation through the readout and
attacked by a margin attack through it) and A2's margin gap
``E[inf_delta (m_{j-1} - m_j)]`` between two readouts read on the same perturbed input
(:func:`margin_gap`): certified as ``lb m_{j-1} - ub m_j`` per sample from each side's
logit box (a sound lower bound of the infimum of the difference), attacked by PGD
minimising the difference (an upper estimate of it).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from semirobust.empirical.attacks import PGD
from semirobust.empirical.attacks.base import Attack
from semirobust.empirical.attacks.objectives import multiclass_margin
from semirobust.empirical.attacks.threat import ThreatModel
from semirobust.empirical.bounds import interval_bounds
from semirobust.empirical.bounds.box import threat_point64
from semirobust.empirical.bounds.layer_rules import UnsupportedLayer, float64_eval_copy
from semirobust.empirical.bounds.lipschitz import lipschitz_upper
from semirobust.empirical.measure.aggregate import mean_measurement
from semirobust.empirical.measure.sandwich import gamma_sandwich
from semirobust.empirical.model import Scale
from semirobust.errors import BadInput
from semirobust.theory.measurement import Kind, Measurement
from semirobust.theory.quantities import LOGITS

PROBE_METHODS = ("least-squares", "logistic")
FIT_DATA = ("clean", "adversarial")


@dataclass(frozen=True)
class Readout:
    """A fixed map from a layer's activations to logits, with its name and provenance."""

    name: str
    kind: str
    module: nn.Module
    settings: dict[str, Any] = field(default_factory=dict)

    def describe(self) -> dict[str, Any]:
        return {"readout": self.name, "readout_kind": self.kind, **self.settings}


def canonical(rest: nn.Module, layer: int) -> Readout:
    """The trained rest of the network after ``layer`` (``rest`` maps its activations to
    the logits)."""
    return Readout(f"canonical: the trained rest after layer {layer}", "canonical", rest,
                   {"layer": layer})


def fit_probe(features: torch.Tensor, y: torch.Tensor, num_classes: int, *, layer: int,
              method: str = "least-squares", norm_bound: float = 1.0,
              fitted_on: str = "clean", steps: int = 300, seed: int = 0,
              dtype: torch.dtype = torch.float64) -> Readout:
    """A linear probe on ``features`` (one row per input, flattened), with ``||W||_2 <=
    norm_bound``: least squares on centred one-hot targets, or logistic regression (full
    batch gradient descent, ``steps`` steps, the constraint projected after each), then
    rescaled onto the constraint if it is exceeded. The probe is stored in ``dtype`` (the
    network's, so that it can follow it); where rounding to ``dtype`` pushes the stored
    weights over the constraint they are pulled inside it by a few roundings, and their
    norm is recorded (``weight_norm``, in float64). Deterministic for a ``seed``."""
    if method not in PROBE_METHODS:
        raise BadInput(f"method={method!r}: expected one of {', '.join(PROBE_METHODS)}")
    if fitted_on not in FIT_DATA:
        raise BadInput(f"fitted_on={fitted_on!r}: expected one of {', '.join(FIT_DATA)}")
    if not norm_bound > 0:
        raise BadInput(f"norm_bound={norm_bound!r}: expected a positive number")
    h = features.detach().flatten(start_dim=1).double().cpu()
    labels = y.detach().cpu().long()
    if method == "least-squares":
        targets = F.one_hot(labels, num_classes).double() - 1.0 / num_classes
        design = torch.cat([h, torch.ones(h.shape[0], 1, dtype=h.dtype)], dim=1)
        solution = torch.linalg.lstsq(design, targets).solution
        weight, bias = solution[:-1].T.contiguous(), solution[-1].contiguous()
    else:
        weight, bias = _logistic(h, labels, num_classes, norm_bound, steps, seed)
    norm = float(torch.linalg.matrix_norm(weight, ord=2))
    factor = min(1.0, norm_bound / norm) if norm > 0 else 1.0
    probe = nn.Linear(h.shape[1], num_classes).to(dtype)
    with torch.no_grad():
        probe.weight.copy_(weight * factor)
        probe.bias.copy_(bias * factor)
        stored = _spectral_norm(probe.weight)
        while stored > norm_bound:  # rounding to dtype pushed the weights over the constraint
            pull = norm_bound / stored * (1 - 8 * torch.finfo(dtype).eps)
            probe.weight.mul_(pull)
            probe.bias.mul_(pull)
            factor *= pull
            stored = _spectral_norm(probe.weight)
    module = nn.Sequential(nn.Flatten(), probe)
    name = (f"probe[layer {layer}]: {method} on {fitted_on} activations, "
            f"||W||_2 <= {norm_bound:g}")
    return Readout(name, "probe", module, {
        "layer": layer, "method": method, "fitted_on": fitted_on,
        "constraint": f"||W||_2 <= {norm_bound:g}", "norm_before_constraint": norm,
        "rescaled_by": factor, "weight_norm": stored, "fit_inputs": int(h.shape[0]),
        "fit_seed": seed,
    })


def _spectral_norm(weight: torch.Tensor) -> float:
    return float(torch.linalg.matrix_norm(weight.detach().double(), ord=2))


def _logistic(h: torch.Tensor, labels: torch.Tensor, num_classes: int, bound: float,
              steps: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    weight = (torch.randn(num_classes, h.shape[1], generator=generator, dtype=h.dtype) * 0.01
              ).requires_grad_()
    bias = torch.zeros(num_classes, dtype=h.dtype, requires_grad=True)
    optimiser = torch.optim.Adam([weight, bias], lr=0.05)
    for _ in range(steps):
        optimiser.zero_grad()
        F.cross_entropy(h @ weight.T + bias, labels).backward()
        optimiser.step()
        with torch.no_grad():
            norm = torch.linalg.matrix_norm(weight, ord=2)
            if norm > bound:
                weight.mul_(bound / norm)
    return weight.detach(), bias.detach()


def lipschitz_normalised(readout: Readout, input_shape: tuple[int, ...]) -> Readout:
    """``readout`` divided by its certified l2 Lipschitz constant ``L_G`` (the product
    bound of :func:`semirobust.empirical.bounds.lipschitz.lipschitz_upper`): the readout
    followed by :class:`~semirobust.empirical.model.Scale` ``(1 / L_G)``, so its margin is
    ``m(G(h), y) / L_G`` (the margin is positively homogeneous)."""
    bound = lipschitz_upper(readout.module, input_shape)
    if not bound.certified:
        raise BadInput(f"the Lipschitz bound of readout {readout.name!r} is not certified, "
                       "so the normalised margin would not be")
    constant = bound.product
    return Readout(f"{readout.name}, divided by its certified Lipschitz constant {constant:.4g}",
                   "lipschitz-normalised", nn.Sequential(readout.module, Scale(1.0 / constant)),
                   {**readout.settings, "lipschitz_constant": constant,
                    "normalised_from": readout.name})


def readout_gamma(prefix: nn.Module, readout: Readout, x: torch.Tensor, y: torch.Tensor,
                  threat: ThreatModel, name: str, *, methods: tuple[str, ...] = ("ibp",),
                  attack: Attack | None = None) -> list[Measurement]:
    """``gamma = E[inf_delta m(G(prefix(x + delta)), y)]`` through ``readout``: the
    certified lower bound (bound propagation through prefix and readout, each of
    ``methods``, at its best per sample) and the attack's value (``attack``, by default
    the sandwich's margin attack, through both), named ``name`` with the readout recorded."""
    model = nn.Sequential(prefix, readout.module).eval()
    sandwich = gamma_sandwich(model, x, y, threat, attack, methods=methods, readout=readout.name)
    by_name = {m.name: m for m in sandwich.measurements()}
    return [_named(by_name[key], name, readout) for key in ("gamma_certified", "gamma_attacked")
            if key in by_name]


def _named(m: Measurement, name: str, readout: Readout) -> Measurement:
    return Measurement(name, m.value, m.interval, m.kind, m.estimator, m.unit,
                       {**m.settings, **readout.describe()})


class _Pair(nn.Module):
    """Both readouts' logits on one input, side by side (for one attack on their gap)."""

    def __init__(self, first: nn.Module, second: nn.Module):
        super().__init__()
        self.first, self.second = first, second

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.first(x), self.second(x)], dim=1)


def _gap_objective(classes: int):
    def negative_gap(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        first, second = logits[:, :classes], logits[:, classes:]
        return -(multiclass_margin(first, y) - multiclass_margin(second, y))
    negative_gap.__name__ = "-(m_{j-1} - m_j)"
    return negative_gap


def _margin_box(lower: torch.Tensor, upper: torch.Tensor, y: torch.Tensor
                ) -> tuple[torch.Tensor, torch.Tensor]:
    """Per sample, sound bounds of the margin from a logit box: ``l_y - max_{k!=y} u_k``
    and ``u_y - max_{k!=y} l_k``."""
    index = y.view(-1, 1)
    low = lower.gather(1, index).squeeze(1) - upper.scatter(1, index, float("-inf")).max(1).values
    high = upper.gather(1, index).squeeze(1) - lower.scatter(1, index, float("-inf")).max(1).values
    return low, high


def margin_gap(previous: nn.Module, previous_readout: str, current: nn.Module,
               current_readout: str, x: torch.Tensor, y: torch.Tensor, threat: ThreatModel,
               name: str, *, steps: int = 20, restarts: int = 1, seed: int = 0
               ) -> list[Measurement]:
    """A2's left side ``E[inf_delta (m(previous(x+delta)) - m(current(x+delta)))]``, where
    ``previous`` is layer ``j-1`` followed by its readout and ``current`` layer ``j``
    followed by its own (both map inputs to logits): the certified lower bound from each
    network's interval box, and PGD's value (minimising the difference)."""
    y = y.detach().cpu().long()
    low_prev, _ = _margin_box(*interval_bounds(previous, x, threat), y)
    _, high_curr = _margin_box(*interval_bounds(current, x, threat), y)
    pair = _Pair(previous, current).eval()
    classes = int(pair.first(x[:1]).shape[1])
    attack = PGD(threat, objective=_gap_objective(classes), steps=steps, restarts=restarts,
                 seed=seed)
    x_adv = threat_point64(attack(pair, x, y.to(x.device)), x, threat)
    with torch.no_grad():
        pair64 = float64_eval_copy(pair)
        logits = pair64(x_adv)
    attacked = multiclass_margin(logits[:, :classes], y) - multiclass_margin(logits[:, classes:], y)
    settings = {**threat.to_dict(), "readout": f"{previous_readout} | {current_readout}",
                "previous_readout": previous_readout, "current_readout": current_readout,
                "pgd_steps": steps, "pgd_restarts": restarts, "seed": seed}
    return [
        mean_measurement(name, low_prev - high_curr, kind=Kind.CERTIFIED,
                         estimator="IBP: lb m_{j-1} - ub m_j per sample", unit=LOGITS,
                         settings=settings),
        mean_measurement(name, attacked, kind=Kind.ATTACK,
                         estimator="PGD minimising m_{j-1} - m_j", unit=LOGITS,
                         settings=settings),
    ]


def measured_gap(previous: nn.Module, previous_readout: str, current: nn.Module,
                 current_readout: str, x: torch.Tensor, y: torch.Tensor, threat: ThreatModel,
                 name: str, *, steps: int = 20, restarts: int = 1, seed: int = 0,
                 certify: bool = True) -> list[Measurement]:
    """:func:`margin_gap`, or only its attacked value when bound propagation has no rule
    for a layer of either network, or ``certify`` is false (then nothing about the gap is
    certified)."""
    if certify:
        try:
            return margin_gap(previous, previous_readout, current, current_readout, x, y, threat,
                              name, steps=steps, restarts=restarts, seed=seed)
        except UnsupportedLayer:
            pass
    pair = _Pair(previous, current).eval()
    classes = int(pair.first(x[:1]).shape[1])
    attack = PGD(threat, objective=_gap_objective(classes), steps=steps, restarts=restarts, seed=seed)
    x_adv = attack(pair, x, y)
    with torch.no_grad():
        logits = pair(x_adv)
    gap = multiclass_margin(logits[:, :classes], y) - multiclass_margin(logits[:, classes:], y)
    return [mean_measurement(name, gap.detach(), kind=Kind.ATTACK,
                             estimator="PGD minimising m_{j-1} - m_j (no certified bound: "
                                       "a layer has no interval rule)", unit=LOGITS,
                             settings={**threat.to_dict(), "readout":
                                       f"{previous_readout} | {current_readout}",
                                       "pgd_steps": steps, "pgd_restarts": restarts, "seed": seed})]
