"""The named quantities the results of THEORY.md speak about, as sympy symbols.

Every premise and conclusion in :mod:`semirobust.theory.results` is an inequality between
these symbols; the judge (:mod:`semirobust.theory.judge`) reads one
:class:`~semirobust.theory.measurement.Measurement` per symbol. A quantity knows

* its unit (C6: gamma is in the readout's units, rho in bits) and the other units it
  accepts with their conversion factor (nats -> bits);
* whether it is an infimum or a supremum over the threat model, which fixes what an
  ``attack`` or ``certified`` measurement says about it (an attack on an infimum reaches
  a value the true infimum cannot exceed; a certificate bounds it from below);
* its natural lower limit (a mutual information, a Lipschitz constant and a distance are
  never negative).

Families indexed by layer (``rho_j``, ``gamma_i``) are sympy ``Indexed`` objects; their
measurements are named ``<stem>_<index>``: ``rho_6``, ``gamma_3``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum

import sympy

LOGITS = "logits"
BITS = "bits"
NATS_PER_BIT = math.log(2.0)


class Extremum(str, Enum):
    """Whether a quantity is an infimum or a supremum over perturbations, or neither."""

    INFIMUM = "infimum"
    SUPREMUM = "supremum"
    NONE = "none"


@dataclass(frozen=True)
class Quantity:
    """One named quantity (or an indexed family of them) of THEORY.md.

    ``units`` maps every accepted unit to the factor that converts a value in it into
    ``unit``, the quantity's own unit (e.g. ``{"bits": 1, "nats": 1/ln 2}``).
    """

    name: str
    latex: str
    meaning: str
    unit: str
    extremum: Extremum
    lower_limit: float = -math.inf
    units: Mapping[str, float] = field(default_factory=dict)
    index: str | None = None

    @property
    def is_family(self) -> bool:
        return self.index is not None

    @property
    def symbol(self) -> sympy.Symbol | sympy.IndexedBase:
        """A ``Symbol`` for a single quantity, an ``IndexedBase`` for a family."""
        if self.is_family:
            return sympy.IndexedBase(self.name, real=True)
        return sympy.Symbol(self.name, real=True)

    @property
    def label(self) -> sympy.Symbol:
        """The symbol the LaTeX printer sees (a family's label)."""
        symbol = self.symbol
        return symbol.label if self.is_family else symbol

    def member(self, index: int | sympy.Expr) -> sympy.Indexed:
        """The family member with that index (``rho[6]``)."""
        if not self.is_family:
            raise TypeError(f"{self.name} is not an indexed family")
        return self.symbol[index]

    def measurement_name(self, index: int | None = None) -> str:
        """The key under which a measurement of this quantity is looked up."""
        return self.name if index is None else f"{self.name}_{index}"

    def conversion(self, unit: str) -> float | None:
        """Factor from ``unit`` into this quantity's unit, or None if not accepted."""
        if unit == self.unit:
            return 1.0
        return self.units.get(unit)

    def accepted_units(self) -> list[str]:
        return [self.unit, *self.units]


def _gamma(name: str, latex: str, meaning: str, index: str | None = None) -> Quantity:
    return Quantity(
        name, latex, meaning + " (C1: with its named readout)", LOGITS, Extremum.INFIMUM,
        units={"logit": 1.0}, index=index,
    )


GAMMA_A = _gamma(
    "gamma_a", r"\gamma_a",
    "E[inf_delta m(G_a(f_a(X+delta)), y)]: expected worst-case margin of f_a",
)
GAMMA_B = _gamma(
    "gamma_b", r"\gamma_b",
    "E[inf_delta m(f_b(f_a(X+delta)), y)]: expected worst-case margin of f_b on attacked f_a",
)
GAMMA_LAYER = _gamma(
    "gamma", r"\gamma",
    "E[inf_delta m(G_i(F^(i)(X+delta)), y)]: expected worst-case margin of the map up to layer i",
    index="i",
)
RHO = Quantity(
    "rho", r"\rho",
    "sum_y pi(y) I(h_{delta,j-1}; h_{delta,j} | y): dependency of layers j-1, j under attack "
    "(C2: a property of its named estimator)",
    BITS, Extremum.NONE, lower_limit=0.0, units={"nats": 1.0 / NATS_PER_BIT, "bit": 1.0},
    index="j",
)
MARGIN_GAP = Quantity(
    "margin_gap", r"\mathrm{gap}",
    "E[inf_delta (m_{j-1} - m_j)]: worst-case margin of layer j-1's readout minus layer j's "
    "(the left side of A2/B2)",
    LOGITS, Extremum.INFIMUM, units={"logit": 1.0}, index="j",
)
U_CONSTANT = Quantity(
    "U", "U",
    "the constant U_j of assumption A2/B2, stated by the caller (not measured by the paper); "
    "C9: U_j > -1, and read as a bound on E[r] it gives I <= 1 + U_j nats",
    LOGITS, Extremum.NONE, units={"logit": 1.0}, index="j",
)
GAMMA_WHOLE = _gamma(
    "gamma_whole", r"\gamma_{\mathrm{whole}}",
    "E[inf_delta m(F(X+delta), y)]: expected worst-case margin of the whole network",
)
CLEAN_MARGIN = Quantity(
    "clean_margin", r"\bar m",
    "E[m(F(X), y)]: expected margin of the whole network on clean inputs",
    LOGITS, Extremum.NONE, units={"logit": 1.0},
)
LIPSCHITZ_B = Quantity(
    "L_b", "L_b",
    "a Lipschitz constant of f_b, l2 -> l2 (a certified upper bound enters the bound as itself)",
    "logits per feature l2", Extremum.SUPREMUM, lower_limit=0.0,
)
DELTA_A = Quantity(
    "Delta_a", r"\Delta_a",
    "E[sup_delta ||f_a(X+delta) - f_a(X)||_2]: feature sensitivity of f_a",
    "feature l2", Extremum.SUPREMUM, lower_limit=0.0,
)

GAMMAS = (GAMMA_A, GAMMA_B, GAMMA_LAYER, GAMMA_WHOLE)
"""The gammas: expected worst-case margins through a named readout (C1)."""

QUANTITIES: dict[str, Quantity] = {
    q.name: q
    for q in (
        GAMMA_A, GAMMA_B, GAMMA_LAYER, RHO, MARGIN_GAP, U_CONSTANT,
        GAMMA_WHOLE, CLEAN_MARGIN, LIPSCHITZ_B, DELTA_A,
    )
}



LN2 = sympy.Symbol("ln2", positive=True)
"""ln 2 nats per bit: the factor that reads a rho in bits as nats where a chain of
inequalities holds in nats (C9: L1's chain, the bound I <= 1 + U)."""

CONSTANTS: dict[sympy.Symbol, tuple[float, str]] = {LN2: (NATS_PER_BIT, "nats per bit")}
"""Stated constants with a unit: symbol -> (value, unit)."""


def latex_names() -> dict[sympy.Symbol, str]:
    """``symbol_names`` for ``sympy.latex``: each quantity's LaTeX spelling."""
    return {**{q.label: q.latex for q in QUANTITIES.values()}, LN2: r"\ln 2"}


# Layer numbers: structural integers of the results, never measured. ``a`` = weight
# layers in f_a, ``n`` = weight layers in the network, ``i`` and ``j`` index layers.
A = sympy.Symbol("a", integer=True, nonnegative=True)
N = sympy.Symbol("n", integer=True, positive=True)
I = sympy.Symbol("i", integer=True, positive=True)
J = sympy.Symbol("j", integer=True, positive=True)
