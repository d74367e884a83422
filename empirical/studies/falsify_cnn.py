"""The CNN part of the falsification search (:mod:`semirobust.empirical.studies.falsify`):
small convolutional networks on ``1x4x4`` inputs where every quantity is certified or an
attack's value, read on its sound side (THEORY.md section 7).

A candidate is ``f_a = Conv2d(1, C, 3)`` (``4x4 -> 2x2``, ``C`` = 1 or 2 channels),
optionally followed by a ReLU; a fixed linear readout ``G_a = Linear(4C, 2)`` of its
flattened maps (the probe of C1); ``f_b = Linear(4C, 2)`` on the same maps, scaled by the
directed step; L2's and T3's second layer ``Conv2d(C, C, 1)`` (with bias and ReLU for L2,
linear without bias for T3); two or three labelled images with pixels in
:data:`PIXELS`; ``eps`` of the l-inf threat model, perturbed inputs clipped to ``[0, 1]``.

Without an exact worst case in 16 dimensions, each expected worst-case margin (gamma, A2's
gap) is two measurements on the candidate's inputs: the certified lower bound of its
infimum (IBP and CROWN-IBP through the composition, the best per input:
:func:`~semirobust.empirical.measure.sandwich.gamma_sandwich`; interval propagation for the
gap: :func:`~semirobust.empirical.measure.readouts.margin_gap`) and the attack's value,
the margin at a point of the threat set, which is an upper bound of the infimum. Both are
test-set means of per-input values (:func:`semirobust.theory.scope.on_test_set`), so a
``>=`` premise (``gamma_a > 0``) holds only by the certified end and a ``<=`` one (A2) by
the attacked end, and a conclusion ``gamma_b >= ...`` is refuted by the attacked end of
``gamma_b`` against the certified ends of the right side. The clean margin is exact;
``Delta_a`` is the certified upper bound of its supremum (CROWN box of ``f_a``); ``L_b``
the certified product bound; ``rho_2 = 0`` and ``U_2 = 0`` as in the 1-D space.

L2's logits ``G_a h_1 + f_b(ReLU(W h_1 + c))`` are one sequential network, so that its
gamma is certified by the same rules: ``h_1 -> (h_1, -h_1, W h_1 + c)`` (a 1x1 conv with
``3C`` channels), ReLU, and ``Linear(12C, 2)`` with blocks ``(G_a, -G_a, f_b)``: on
``relu(h_1) - relu(-h_1) = h_1`` it is exactly the sum (:func:`l2_logits`).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import torch
from hypothesis import strategies as st
from torch import nn

from semirobust.empirical.attacks import AttackSettings
from semirobust.empirical.attacks.threat import ThreatModel
from semirobust.empirical.bounds.lipschitz import lipschitz_upper
from semirobust.empirical.bounds.sensitivity import certified_feature_sensitivity
from semirobust.empirical.measure.readouts import margin_gap
from semirobust.empirical.measure.sandwich import gamma_sandwich, margin_attack
from semirobust.empirical.measure.transfer import clean_margin64
from semirobust.theory import Kind, Measurement
from semirobust.theory.scope import on_test_set

PIXELS = (0.1, 0.3, 0.5, 0.7, 0.9)
WEIGHTS = (-2.0, -1.0, -0.5, 0.5, 1.0, 2.0)
BIASES = (-0.5, 0.0, 0.5)
EPSILONS = (0.05, 0.1, 0.2)
SIDE = 4
ATTACK = AttackSettings(steps=20, restarts=1, seed=0)
BOUNDS = ("ibp", "crown-ibp")
ROUNDING = 1e-12
G_A = "G_a: a fixed linear probe of f_a's maps"
F_B = "f_b: the network's logits"
LAYOUT = ("f_a = Conv2d(1, C, 3) [+ ReLU] on a 1x4x4 image; G_a = Flatten + Linear(4C, 2); "
          "f_b = Flatten + Linear(4C, 2) (scaled); L2's second layer Conv2d(C, C, 1) + ReLU; "
          "load with semirobust.empirical.studies.falsify.load_witness")
HOW_TO_CHECK = (
    ("The networks are small CNNs on 1x4x4 images, so no worst case is enumerated: every "
    "gamma and gap is a certified lower bound of its infimum (IBP / CROWN-IBP, "
    "semirobust.empirical.bounds) beside an attack's value (the margin at a point of the "
    "threat set, an upper bound of the infimum; seeded PGD, "
    f"{ATTACK.steps} steps)."),
    ("- a premise `gamma > 0` holds by the certified end, A2's `gap <= -(1 + U)` by the "
    "attacked end; the conclusion fails when the attacked `gamma_b` lies below the "
    "certified right side."),
    ("- to re-check: load the checkpoint with load_witness, rebuild each network and run "
    "gamma_sandwich / margin_gap on its inputs with the threat model above."),
)


def _conv(channels_in: int, channels_out: int, kernel: int, weight: tuple[float, ...],
          bias: tuple[float, ...] | None) -> nn.Conv2d:
    layer = nn.Conv2d(channels_in, channels_out, kernel, bias=bias is not None).double()
    with torch.no_grad():
        layer.weight.copy_(torch.tensor(weight, dtype=torch.float64).view_as(layer.weight))
        if bias is not None:
            layer.bias.copy_(torch.tensor(bias, dtype=torch.float64))
    return layer


def _dense(inputs: int, weight: tuple[float, ...], bias: tuple[float, ...] | None,
           scale: float = 1.0) -> nn.Linear:
    layer = nn.Linear(inputs, 2, bias=bias is not None).double()
    with torch.no_grad():
        layer.weight.copy_(scale * torch.tensor(weight, dtype=torch.float64).view(2, inputs))
        if bias is not None:
            layer.bias.copy_(scale * torch.tensor(bias, dtype=torch.float64))
    return layer


Part = tuple[tuple[float, ...], tuple[float, ...]]


@dataclass(frozen=True)
class CnnCandidate:
    """One CNN point of the search space (module docstring); ``scale`` multiplies ``f_b``."""

    channels: int
    relu: bool
    first: Part
    readout: Part
    rest: Part
    hidden: Part
    inputs: tuple[tuple[float, ...], ...]
    labels: tuple[int, ...]
    eps: float
    scale: float = 1.0

    space = "cnn"
    layout = LAYOUT
    how_to_check = HOW_TO_CHECK

    @property
    def features(self) -> int:
        return self.channels * (SIDE - 2) ** 2

    @property
    def f_a(self) -> nn.Sequential:
        conv = _conv(1, self.channels, 3, *self.first)
        return nn.Sequential(conv, *([nn.ReLU()] if self.relu else [])).eval()

    @property
    def g_a(self) -> nn.Sequential:
        return nn.Sequential(nn.Flatten(), _dense(self.features, *self.readout)).eval()

    @property
    def f_b(self) -> nn.Sequential:
        return nn.Sequential(nn.Flatten(), _dense(self.features, *self.rest, scale=self.scale)).eval()

    @property
    def second(self) -> nn.Sequential:
        """L2's second layer ``h_2 = ReLU(W h_1 + c)`` (a 1x1 conv)."""
        return nn.Sequential(_conv(self.channels, self.channels, 1, *self.hidden), nn.ReLU()).eval()

    @property
    def x(self) -> torch.Tensor:
        return torch.tensor(self.inputs, dtype=torch.float64).view(-1, 1, SIDE, SIDE)

    @property
    def y(self) -> torch.Tensor:
        return torch.tensor(self.labels, dtype=torch.long)

    @property
    def threat(self) -> ThreatModel:
        return ThreatModel("linf", self.eps)

    def unscaled(self) -> CnnCandidate:
        return replace(self, scale=1.0)

    def to_dict(self) -> dict[str, Any]:
        return {"space": self.space, "channels": self.channels, "relu_after_f_a": self.relu,
                "f_a": {"weight": list(self.first[0]), "bias": list(self.first[1])},
                "G_a": {"weight": list(self.readout[0]), "bias": list(self.readout[1])},
                "f_b (before scaling)": {"weight": list(self.rest[0]), "bias": list(self.rest[1])},
                "f_b scale": self.scale,
                "second layer (1x1 conv)": {"weight": list(self.hidden[0]), "bias": list(self.hidden[1])},
                "inputs (1x4x4, row-major)": [list(x) for x in self.inputs],
                "labels": list(self.labels), "eps": self.eps,
                "threat": "||delta||_inf <= eps, x + delta clipped to [0, 1]"}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CnnCandidate:
        def pair(part: dict[str, Any]) -> Part:
            return tuple(part["weight"]), tuple(part["bias"])

        return cls(channels=data["channels"], relu=data["relu_after_f_a"], first=pair(data["f_a"]),
                   readout=pair(data["G_a"]), rest=pair(data["f_b (before scaling)"]),
                   hidden=pair(data["second layer (1x1 conv)"]),
                   inputs=tuple(tuple(x) for x in data["inputs (1x4x4, row-major)"]),
                   labels=tuple(data["labels"]), eps=data["eps"], scale=data["f_b scale"])


@st.composite
def cnn_candidates(draw) -> CnnCandidate:
    """Small CNNs, readouts, images and threat models (module docstring)."""
    channels = draw(st.integers(1, 2))
    weights, biases = st.sampled_from(WEIGHTS), st.sampled_from(BIASES)

    def part(weight_count: int, bias_count: int) -> Part:
        return (tuple(draw(weights) for _ in range(weight_count)),
                tuple(draw(biases) for _ in range(bias_count)))

    features = channels * (SIDE - 2) ** 2
    count = draw(st.integers(2, 3))  # a mean's interval needs two values (measure/aggregate)
    return CnnCandidate(
        channels=channels, relu=draw(st.booleans()), first=part(9 * channels, channels),
        readout=part(2 * features, 2), rest=part(2 * features, 2),
        hidden=part(channels * channels, channels),
        inputs=tuple(tuple(draw(st.sampled_from(PIXELS)) for _ in range(SIDE * SIDE))
                     for _ in range(count)),
        labels=tuple(draw(st.integers(0, 1)) for _ in range(count)),
        eps=draw(st.sampled_from(EPSILONS)),
    )


def _sandwich(model: nn.Module, c: CnnCandidate, name: str, readout: str) -> tuple[Measurement, ...]:
    """``E[inf m(model(x + delta), y)]`` on the candidate's inputs: the certified lower
    bound and the attack's value, each the test-set mean as a point of its kind."""
    sandwich = gamma_sandwich(model.eval(), c.x, c.y, c.threat, margin_attack(c.threat, ATTACK),
                              methods=BOUNDS, readout=readout, progress=False)
    by_name = {m.name: m for m in sandwich.measurements()}
    return _consistent(*(on_test_set(_renamed(by_name[key], name))
                         for key in ("gamma_certified", "gamma_attacked")))


def _consistent(certified: Measurement, attacked: Measurement) -> tuple[Measurement, Measurement]:
    """The pair, with a certified mean that exceeds the attacked one by float rounding
    only (at most ``ROUNDING`` relative: a tight bound computed along another path) moved
    down onto it; a lower bound moved down stays one. A larger excess is left for the
    judge to report (an unsound bound is a bug)."""
    excess = certified.value - attacked.value
    if 0 < excess <= ROUNDING * max(1.0, abs(attacked.value)):
        value = attacked.value
        certified = Measurement(certified.name, value, (value, value), certified.kind,
                                certified.estimator, certified.unit,
                                {**certified.settings, "rounding": f"moved down by {excess:.3g} "
                                 "onto the attack's value (float rounding)"})
    return certified, attacked


def _renamed(m: Measurement, name: str, **settings: Any) -> Measurement:
    return Measurement(name, m.value, m.interval, m.kind, m.estimator, m.unit,
                       {**m.settings, **settings, "scope": "the candidate's inputs"})


@functools.lru_cache(maxsize=4096)
def gamma_a(c: CnnCandidate) -> tuple[Measurement, ...]:
    """``gamma_a`` through ``G_a`` (independent of ``f_b``'s scale: cached per candidate)."""
    return _sandwich(nn.Sequential(c.f_a, c.g_a), c.unscaled(), "gamma_a", G_A)


def _gamma_b(c: CnnCandidate, name: str = "gamma_b") -> tuple[Measurement, ...]:
    return _sandwich(nn.Sequential(c.f_a, c.f_b), c, name, F_B)


def _gap(c: CnnCandidate) -> tuple[Measurement, ...]:
    found = margin_gap(nn.Sequential(c.f_a, c.g_a).eval(), G_A, nn.Sequential(c.f_a, c.f_b).eval(),
                       F_B, c.x, c.y, c.threat, "margin_gap_2", steps=ATTACK.steps, seed=ATTACK.seed)
    return _consistent(*(on_test_set(_renamed(m, m.name)) for m in found))


def t2_measurements(c: CnnCandidate, dependency: Callable[[int], dict[str, Measurement]]
                    ) -> dict[str, Any]:
    return {"gamma_a": gamma_a(c.unscaled()), "gamma_b": _gamma_b(c),
            "margin_gap_2": _gap(c), **dependency(2)}


def l1_measurements(c: CnnCandidate, dependency: Callable[[int], dict[str, Measurement]]
                    ) -> dict[str, Any]:
    return {"gamma_1": tuple(_renamed(m, "gamma_1") for m in gamma_a(c.unscaled())),
            "gamma_2": _gamma_b(c, "gamma_2"), "margin_gap_2": _gap(c), **dependency(2)}


def lip_measurements(c: CnnCandidate) -> dict[str, Any]:
    whole = nn.Sequential(c.f_a, c.f_b).eval()
    clean = float(clean_margin64(whole, c.x, c.y).mean())
    delta = float(certified_feature_sensitivity(c.f_a, c.x, c.threat, "crown").mean())
    bound = lipschitz_upper(c.f_b, (c.channels, SIDE - 2, SIDE - 2))
    scope = {"scope": "the candidate's inputs"}
    return {"gamma_whole": _gamma_b(c, "gamma_whole"),
            "clean_margin": Measurement("clean_margin", clean, (clean, clean), Kind.EXACT,
                                        "m(F(x), y) in float64", "logits", {**scope, "readout": F_B}),
            "Delta_a": Measurement("Delta_a", delta, (delta, delta), Kind.CERTIFIED,
                                   "CROWN box of f_a: mean of ||max(u - c, c - l)||_2", "feature l2",
                                   scope),
            "L_b": bound.measurement("L_b", unit="logits per feature l2")}


def l2_logits(c: CnnCandidate) -> nn.Sequential:
    """``G_a h_1 + f_b(ReLU(W h_1 + c))`` as one sequential network (module docstring)."""
    channels, features = c.channels, c.features
    hidden_weight = torch.tensor(c.hidden[0], dtype=torch.float64).view(channels, channels)
    eye = torch.eye(channels, dtype=torch.float64)
    spread = nn.Conv2d(channels, 3 * channels, 1).double()
    readout = torch.tensor(c.readout[0], dtype=torch.float64).view(2, features)
    rest = c.scale * torch.tensor(c.rest[0], dtype=torch.float64).view(2, features)
    logits = nn.Linear(3 * features, 2).double()
    with torch.no_grad():
        spread.weight.copy_(torch.cat([eye, -eye, hidden_weight]).view(3 * channels, channels, 1, 1))
        spread.bias.copy_(torch.cat([torch.zeros(2 * channels, dtype=torch.float64),
                                     torch.tensor(c.hidden[1], dtype=torch.float64)]))
        logits.weight.copy_(torch.cat([readout, -readout, rest], dim=1))
        logits.bias.copy_(torch.tensor(c.readout[1], dtype=torch.float64)
                          + c.scale * torch.tensor(c.rest[1], dtype=torch.float64))
    return nn.Sequential(c.f_a, spread, nn.ReLU(), nn.Flatten(), logits).eval()


def l2_measurements(c: CnnCandidate) -> dict[str, Any]:
    return {"gamma_1": tuple(_renamed(m, "gamma_1", readout="lambda_1 = G_a")
                             for m in gamma_a(c.unscaled())),
            "gamma_2": _sandwich(nn.Sequential(c.f_a, c.second, c.f_b), c, "gamma_2",
                                 "lambda_2 = f_b on h_2"),
            "gamma_3": _sandwich(l2_logits(c), c, "gamma_3", "lambda_1^T h_1 + lambda_2^T h_2")}


def t3_measurements(c: CnnCandidate) -> dict[str, Any]:
    """T3 with ``a = 1``, ``n = 3``: layer 2 the 1x1 conv ``W h_1`` without bias (a linear
    combination of layer 1), layer 3 the logits ``V h_2`` (``f_b``'s weights, no bias)."""
    hidden = _conv(c.channels, c.channels, 1, c.hidden[0], None)
    logits = nn.Sequential(nn.Flatten(), _dense(c.features, c.rest[0], None, scale=c.scale))
    return {"gamma_a": gamma_a(c.unscaled()),
            "gamma_b": _sandwich(nn.Sequential(c.f_a, hidden, logits), c, "gamma_b",
                                 "f_b: V W h_1, linear layers without bias")}


def t1_measurements(c: CnnCandidate) -> dict[str, Any]:
    composed = "G_2 o f^(2) = f_b: the network's logits (composed readout)"
    gamma = _sandwich(nn.Sequential(c.f_a, c.f_b), c, "gamma_2", composed)
    return {f"gamma_{i}": tuple(_renamed(m, f"gamma_{i}") for m in gamma) for i in (1, 2)}


def hopeless(result: str, c: CnnCandidate) -> bool:
    """True when a premise that no rescaling of ``f_b`` changes already fails to be
    certified: ``gamma_a > 0`` (T2, L1, T3) or ``gamma_1 > 0`` (L2) needs a positive
    certified lower bound of ``G_a``'s worst-case margin. Skips the costlier measurements."""
    if result not in ("T2", "L1", "T3", "L2"):
        return False
    certified = gamma_a(c.unscaled())[0]
    return not certified.value > 0
