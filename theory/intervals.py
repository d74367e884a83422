"""Closed real intervals (ends may be infinite) and their arithmetic over sympy expressions.

:func:`enclose` evaluates a polynomial expression (sums and products of symbols and
numbers, e.g. ``gamma_a + rho[6] + rho[7]`` or ``m - sqrt(2) L_b Delta_a``) when each
symbol is known only to lie in an interval, and returns an interval containing every value
the expression can take (standard interval arithmetic; ``0 * inf`` is taken as 0, which is
right here because an infinite end means "no bound", not an infinite value).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import sympy


@dataclass(frozen=True)
class Interval:
    low: float
    high: float

    def __post_init__(self) -> None:
        if math.isnan(self.low) or math.isnan(self.high) or self.low > self.high:
            raise ValueError(f"not an interval: [{self.low}, {self.high}]")

    @classmethod
    def point(cls, value: float) -> Interval:
        return cls(value, value)

    def __add__(self, other: Interval) -> Interval:
        return Interval(_add(self.low, other.low), _add(self.high, other.high))

    def __mul__(self, other: Interval) -> Interval:
        products = [_mul(x, y) for x in (self.low, self.high) for y in (other.low, other.high)]
        return Interval(min(products), max(products))

    def intersect(self, other: Interval) -> Interval:
        return Interval(max(self.low, other.low), min(self.high, other.high))

    def to_json(self) -> list[float | None]:
        """``[low, high]`` with infinite ends as ``None`` (JSON has no infinity)."""
        return [None if math.isinf(v) else v for v in (self.low, self.high)]

    def text(self) -> str:
        def end(v: float) -> str:
            return ("-inf" if v < 0 else "+inf") if math.isinf(v) else f"{v:.4g}"

        return f"[{end(self.low)}, {end(self.high)}]"


def _add(x: float, y: float) -> float:
    if math.isinf(x) and math.isinf(y) and x != y:
        raise ValueError("interval sum inf + (-inf) is undefined")
    return x + y


def _mul(x: float, y: float) -> float:
    return 0.0 if x == 0.0 or y == 0.0 else x * y


def enclose(expr: sympy.Expr, env: Mapping[sympy.Expr, Interval]) -> Interval:
    """An interval containing ``expr`` for every assignment of its symbols within ``env``."""
    expr = sympy.sympify(expr)
    if expr in env:
        return env[expr]
    if expr.is_number:
        value = float(expr)
        return Interval.point(value)
    if isinstance(expr, sympy.Add):
        total = Interval.point(0.0)
        for term in expr.args:
            total = total + enclose(term, env)
        return total
    if isinstance(expr, sympy.Mul):
        product = Interval.point(1.0)
        for factor in expr.args:
            product = product * enclose(factor, env)
        return product
    missing = sorted(str(s) for s in expr.free_symbols if s not in env)
    raise ValueError(
        f"cannot enclose {expr}: "
        + (f"no interval for {', '.join(missing)}" if missing else "unsupported operation")
    )
