"""Units checked term by term (caveats C6, C9): a small dimension checker.

Every quantity has a unit (:mod:`semirobust.theory.quantities`): gamma and margin gaps in
logits of their named readout, rho in bits, ``L_b`` in logits per feature l2, ``Delta_a``
in feature l2. A unit is a product of base units with integer exponents
(``"logits per feature l2"`` is ``logits * (feature l2)^-1``). :func:`unit_of` computes
the unit of a sum of products of quantities and stated constants:

* a product's unit is the product of its factors' units (numbers are dimensionless);
* every term of a sum must have one unit; a bare number in a sum is read in the sum's
  unit (the ``1`` of ``1 + U_j``);
* two different units may be added only where the result *joins* them explicitly, each
  join with its reason (T2 adds rho in bits to gamma in logits because the paper does:
  C6). Anything else is refused with :class:`UnitMismatch`, naming the term.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import sympy

from semirobust.errors import BadInput

Unit = tuple[tuple[str, int], ...]
"""Base units with non-zero exponents, sorted: ``(("feature l2", -1), ("logits", 1))``."""

DIMENSIONLESS: Unit = ()
_ALIASES = {"bit": "bits", "nat": "nats", "logit": "logits"}


class UnitMismatch(BadInput):
    """A sum adds terms in different units that the result does not join."""


@dataclass(frozen=True)
class Join:
    """Two units the result adds as if they were one, and why (C6, C9)."""

    first: str
    second: str
    reason: str

    def covers(self, a: Unit, b: Unit) -> bool:
        pair = {parse(self.first), parse(self.second)}
        return {a, b} == pair


def parse(text: str) -> Unit:
    """``"logits per feature l2"`` -> ``(("feature l2", -1), ("logits", 1))``."""
    powers: dict[str, int] = {}
    for sign, part in zip((1, -1), text.split(" per ", 1)):
        for base in part.split(" * "):
            base = _ALIASES.get(base.strip(), base.strip())
            if base and base != "1":
                powers[base] = powers.get(base, 0) + sign
    return tuple(sorted((b, e) for b, e in powers.items() if e))


def text(unit: Unit) -> str:
    """The inverse of :func:`parse` (``"1"`` for a dimensionless unit)."""
    up = " * ".join(b if e == 1 else f"{b}^{e}" for b, e in unit if e > 0) or "1"
    down = " * ".join(b if e == -1 else f"{b}^{-e}" for b, e in unit if e < 0)
    return f"{up} per {down}" if down else up


def _times(a: Unit, b: Unit) -> Unit:
    powers = dict(a)
    for base, exp in b:
        powers[base] = powers.get(base, 0) + exp
    return tuple(sorted((k, v) for k, v in powers.items() if v))


def unit_of(expr: sympy.Expr, units: Mapping[sympy.Expr, str], joins: Sequence[Join] = (),
            where: str = "", show: Callable[[sympy.Expr], str] = str
            ) -> tuple[Unit | None, tuple[Join, ...]]:
    """The unit of ``expr`` (None for a bare number) and the joins its sums used.

    ``units`` gives the unit of every symbol; :class:`UnitMismatch` names the first term
    of a sum whose unit differs from the sum's first dimensioned term, unless a join covers
    the pair; ``show`` prints a term in the message."""
    expr = sympy.sympify(expr)
    if expr in units:
        return parse(units[expr]), ()
    if expr.is_number:
        return None, ()
    if isinstance(expr, sympy.Mul):
        unit: Unit | None = None
        used: tuple[Join, ...] = ()
        for factor in expr.args:
            factor_unit, factor_joins = unit_of(factor, units, joins, where, show)
            used += factor_joins
            if factor_unit is not None:
                unit = factor_unit if unit is None else _times(unit, factor_unit)
        return unit, used
    if isinstance(expr, sympy.Add):
        first: tuple[sympy.Expr, Unit] | None = None
        used = ()
        for term in sympy.Add.make_args(expr):
            term_unit, term_joins = unit_of(term, units, joins, where, show)
            used += term_joins
            if term_unit is None:
                continue
            if first is None:
                first = (term, term_unit)
                continue
            if term_unit == first[1]:
                continue
            join = next((j for j in joins if j.covers(first[1], term_unit)), None)
            if join is None:
                raise UnitMismatch(
                    f"{where + ': ' if where else ''}the term {show(term)} is in "
                    f"{text(term_unit)} but {show(first[0])} is in {text(first[1])}; the judge refuses a premise set "
                    "whose units do not match (convert the measurement, or state the join)"
                )
            if join not in used:
                used += (join,)
        return (first[1] if first else None), used
    missing = sorted(str(s) for s in expr.free_symbols if s not in units)
    raise UnitMismatch(f"{where + ': ' if where else ''}no unit for {', '.join(missing) or expr}")
