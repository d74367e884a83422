"""The definitions of THEORY.md section 2 as sympy expressions and typed identities.

* :func:`margin` -- the multiclass margin ``m(z, y) = z_y - max_{k != y} z_k``; with
  ``z = (-s/2, s/2)`` it is the paper's binary ``y * s`` (checked in ``proofs/``).
* :class:`ThreatModel` -- ``S = {delta : ||delta||_p <= eps}``, with the dual exponent that
  gives the exact infimum of a linear function over ``S``.
* :class:`Readout` and :class:`Semirobustness` -- gamma-semirobustness *with a named
  readout and normalisation* (caveat C1: without one, every result is vacuous because
  ``c * G`` has margin ``c * gamma``).
* :class:`DependencyMeasure` and :func:`dependency` -- rho with its estimator as part of
  its identity (caveat C2: the true MI of a deterministic layer is infinite), weighted by
  the class prior ``pi(y)``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

import sympy


def margin(logits: Sequence[sympy.Expr], label: int) -> sympy.Expr:
    """``m(z, y) = z_y - max_{k != y} z_k`` for concrete ``K = len(logits) >= 2``."""
    if len(logits) < 2:
        raise ValueError(f"margin needs at least 2 logits, got {len(logits)}")
    if not 0 <= label < len(logits):
        raise ValueError(f"label {label} is not a class index in 0..{len(logits) - 1}")
    others = [z for k, z in enumerate(logits) if k != label]
    return logits[label] - sympy.Max(*others)


class Norm(str, Enum):
    """The threat model's norm ``p``; ``dual`` is ``q`` with ``1/p + 1/q = 1``."""

    LINF = "linf"
    L2 = "l2"
    L1 = "l1"

    @property
    def p(self) -> sympy.Expr:
        return {Norm.LINF: sympy.oo, Norm.L2: sympy.Integer(2), Norm.L1: sympy.Integer(1)}[self]

    @property
    def dual(self) -> Norm:
        return {Norm.LINF: Norm.L1, Norm.L2: Norm.L2, Norm.L1: Norm.LINF}[self]


@dataclass(frozen=True)
class ThreatModel:
    """``S = {delta : ||delta||_p <= eps}``; inputs are clipped to ``[0, 1]`` (THEORY.md 1).

    For a linear function, ``inf_{delta in S} w . (x + delta) = w . x - eps ||w||_q`` with
    ``q`` the dual exponent (Hoelder), ignoring the ``[0, 1]`` box.
    """

    norm: Norm
    eps: sympy.Expr

    def __post_init__(self) -> None:
        object.__setattr__(self, "norm", Norm(self.norm))
        object.__setattr__(self, "eps", sympy.sympify(self.eps))
        if self.eps.is_negative:
            raise ValueError(f"threat model eps must be >= 0, got {self.eps}")

    def text(self) -> str:
        return f"S = {{delta : ||delta||_{self.norm.value[1:]} <= {self.eps}}}"

    def latex(self) -> str:
        p = sympy.latex(self.norm.p)
        return rf"S = \{{\delta : \|\delta\|_{{{p}}} \leq {sympy.latex(self.eps)}\}}"


PAPER_THREAT_MODEL = ThreatModel(Norm.LINF, sympy.Rational(8, 255))


class Readout(str, Enum):
    """How a gamma's readout ``G`` is fixed, so that its scale means something (C1)."""

    TRAINED_REST = "trained rest of the network"
    NORM_CONSTRAINED_PROBE = "norm-constrained linear probe"
    LIPSCHITZ_NORMALISED = "margin divided by the readout's Lipschitz constant"


@dataclass(frozen=True)
class Semirobustness:
    """``E_{(X,y)~D}[inf_{delta in S} m(G(f(X + delta)), y)] >= gamma`` for a named ``G``."""

    subnetwork: str
    readout: Readout
    threat: ThreatModel = PAPER_THREAT_MODEL

    def text(self) -> str:
        return (
            f"E_(X,y)~D [ inf_(delta in S) m(G({self.subnetwork}(X + delta)), y) ] >= gamma, "
            f"G = {self.readout.value}, {self.threat.text()}"
        )

    def latex(self) -> str:
        return (
            r"\mathbb{E}_{(X,y)\sim D}\left[\inf_{\delta \in S} m\left(G("
            + self.subnetwork + r"(X+\delta)), y\right)\right] \geq \gamma"
            + r",\quad G = \text{" + self.readout.value + "}"
        )


@dataclass(frozen=True)
class DependencyMeasure:
    """The identity of a rho: which estimator, its settings, its unit (C2).

    Two rhos with different estimators are different quantities; a finite rho of a
    deterministic layer is a property of the estimator, not of the network alone.
    """

    estimator: str
    unit: str = "bits"
    settings: Mapping[str, Any] = field(default_factory=dict)

    def describe(self) -> str:
        details = ", ".join(f"{k}={v}" for k, v in sorted(self.settings.items()))
        return f"{self.estimator} ({details}) in {self.unit}" if details else (
            f"{self.estimator} in {self.unit}"
        )


Y = sympy.Symbol("y", integer=True)
CLASS_PRIOR = sympy.Function("pi")
"""``pi(y)``: the class prior; estimated by class frequencies on the test set."""


def dependency(classes: int, conditional_mi: sympy.Function) -> sympy.Expr:
    """``rho = sum_y pi(y) I(h_{j-1}; h_j | y)`` over ``classes`` labels, with the
    per-class mutual information given as a sympy function of ``y`` (THEORY.md 2)."""
    if classes < 2:
        raise ValueError(f"dependency needs at least 2 classes, got {classes}")
    return sympy.Sum(CLASS_PRIOR(Y) * conditional_mi(Y), (Y, 0, classes - 1)).doit()
