"""Results as executable statements: premises, assumptions, conclusion and bound.

A :class:`Result` (THEORY.md sections 3 and 5) holds

* ``premises``: :class:`Inequality` objects between named quantities
  (:mod:`semirobust.theory.quantities`), each measurable;
* ``assumptions``: what the result also assumes but no measurement can check (B1's
  "each layer map is one-to-one", L2's linear structure); listed, never judged;
* ``conclusion``: the inequality the result asserts, with its ``bound`` expression;
* ``consistency``: inequalities the premises imply between measured quantities (C9:
  ``ln 2 * rho_j <= 1 + U_j``); one that fails makes the premise set contradictory;
* ``unit_joins``: the pairs of units the result adds as one, each with its reason (C6);
  every other sum of different units is refused (:mod:`semirobust.theory.units`);
* ``families``: the index range of every layer-indexed family in terms of the layer
  numbers ``a``, ``n``, ``j`` (``rho_j`` for ``j = a+1..n``), so that the judge can
  expand sums and "for each j" premises once it knows the layer numbers.

Both :meth:`Result.text` and :meth:`Result.latex` render the same content.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum

import sympy
from sympy.printing.str import StrPrinter

from semirobust.theory.quantities import latex_names
from semirobust.theory.units import Join


class Relation(str, Enum):
    GE = ">="
    GT = ">"
    LE = "<="
    LT = "<"

    @property
    def latex(self) -> str:
        return {"<=": r"\leq", ">=": r"\geq", "<": "<", ">": ">"}[self.value]

    @property
    def strict(self) -> bool:
        return self in (Relation.GT, Relation.LT)

    @property
    def upward(self) -> bool:
        """True for ``>=`` and ``>`` (the left side must be the larger)."""
        return self in (Relation.GE, Relation.GT)


def _latex(expr: sympy.Expr) -> str:
    return sympy.latex(expr, symbol_names=latex_names())


class _TextPrinter(StrPrinter):
    """Plain-text formulas as THEORY.md writes them: ``rho_j``, ``sum_{j=a+1..n} rho_j``."""

    printmethod = "_semirobust_text"  # not ``_sympystr``, which Indexed defines

    def _print_Indexed(self, expr: sympy.Indexed) -> str:
        index = self._print(expr.indices[0])
        return f"{expr.base.label}_{index if expr.indices[0].is_Atom else f'({index})'}"

    def _print_Sum(self, expr: sympy.Sum) -> str:
        (index, low, high), = expr.limits
        return f"sum_{{{index}={self._print(low)}..{self._print(high)}}} {self._print(expr.function)}"


def formula_text(expr: sympy.Expr) -> str:
    """A formula in plain text as THEORY.md writes it (``rho_6``, not ``rho[6]``)."""
    return _TextPrinter().doprint(expr)


@dataclass(frozen=True)
class Inequality:
    """``lhs relation rhs``, optionally for each ``index`` in ``[low, high]``.

    :meth:`slack` is the expression that is ``>= 0`` (``> 0`` for a strict relation)
    exactly when the inequality holds: ``lhs - rhs`` for ``>=``, ``rhs - lhs`` for ``<=``.
    """

    label: str
    lhs: sympy.Expr
    relation: Relation
    rhs: sympy.Expr
    meaning: str
    for_each: tuple[sympy.Symbol, sympy.Expr, sympy.Expr] | None = None

    def slack(self) -> sympy.Expr:
        return self.lhs - self.rhs if self.relation.upward else self.rhs - self.lhs

    def instances(self, layers: Mapping[sympy.Symbol, int]) -> list[tuple[str, Inequality]]:
        """The inequality with the layer numbers substituted, sums expanded, and one
        instance per index value when it is a "for each"; labels name the index."""
        return list(_instances(self, tuple(sorted(layers.items(), key=lambda kv: str(kv[0])))))

    def _instances(self, layers: Mapping[sympy.Symbol, int]) -> list[tuple[str, Inequality]]:
        if self.for_each is None:
            return [(self.label, self._substituted(layers))]
        index, low, high = self.for_each
        first, last = (int(sympy.sympify(b).subs(layers)) for b in (low, high))
        return [
            (f"{self.label} [{index} = {k}]", self._substituted({**layers, index: k}))
            for k in range(first, last + 1)
        ]

    def _substituted(self, values: Mapping[sympy.Symbol, int]) -> Inequality:
        lhs, rhs = (sympy.sympify(side).subs(values).doit() for side in (self.lhs, self.rhs))
        return Inequality(self.label, lhs, self.relation, rhs, self.meaning)

    def text(self) -> str:
        return _inequality_text(self)

    def _text(self) -> str:
        body = f"{formula_text(self.lhs)} {self.relation.value} {formula_text(self.rhs)}"
        if self.for_each is not None:
            index, low, high = self.for_each
            body += f"   for each {index} = {formula_text(low)}..{formula_text(high)}"
        return body

    def latex(self) -> str:
        body = f"{_latex(self.lhs)} {self.relation.latex} {_latex(self.rhs)}"
        if self.for_each is not None:
            index, low, high = self.for_each
            body += (
                rf" \quad \text{{for }} {_latex(index)} = {_latex(low)}, \ldots, {_latex(high)}"
            )
        return body


@functools.lru_cache(maxsize=4096)
def _instances(inequality: Inequality, layers: tuple[tuple[sympy.Symbol, int], ...]
               ) -> tuple[tuple[str, Inequality], ...]:
    """Memoised :meth:`Inequality.instances` (statements are immutable; the judge asks for
    the same instances on every set of measurements)."""
    return tuple(inequality._instances(dict(layers)))


@functools.lru_cache(maxsize=4096)
def _inequality_text(inequality: Inequality) -> str:
    return inequality._text()


@dataclass(frozen=True)
class Assumption:
    """A hypothesis no measurement checks; the judge lists it as assumed."""

    label: str
    text: str


@dataclass(frozen=True)
class Result:
    """One result of THEORY.md as an executable statement (see the module docstring)."""

    name: str
    title: str
    source: str
    statement: str
    premises: tuple[Inequality, ...]
    assumptions: tuple[Assumption, ...]
    conclusion: Inequality
    bound: sympy.Expr
    families: Mapping[str, tuple[sympy.Expr, sympy.Expr]] = field(default_factory=dict)
    layer_numbers: tuple[sympy.Symbol, ...] = ()
    sound: bool = False
    caveats: tuple[str, ...] = ()
    consistency: tuple[Inequality, ...] = ()
    unit_joins: tuple[Join, ...] = ()

    def text(self) -> str:
        lines = [f"{self.name}: {self.title}   [{self.source}]", f"  {self.statement}"]
        lines.append("  premises (measured):" if self.premises else "  premises: none measured")
        lines += [f"    {p.label}: {p.text()}   ({p.meaning})" for p in self.premises]
        if self.consistency:
            lines.append("  implied by the premises (a failure makes them contradictory):")
            lines += [f"    {c.label}: {c.text()}   ({c.meaning})" for c in self.consistency]
        lines += [f"  units joined: {j.first} + {j.second} ({j.reason})" for j in self.unit_joins]
        if self.assumptions:
            lines.append("  assumptions (stated, not measurable):")
            lines += [f"    {a.label}: {a.text}" for a in self.assumptions]
        lines.append(f"  conclusion: {self.conclusion.text()}   ({self.conclusion.meaning})")
        lines.append(f"  bound: {formula_text(self.bound)}")
        lines.append("  status: " + ("sound (proved in proofs/)" if self.sound else
                                     "as stated in the paper; see the caveats"))
        lines += [f"  caveat {c}" for c in self.caveats]
        return "\n".join(lines)

    def latex(self) -> str:
        """A LaTeX fragment (a ``\\subsection*`` with ``itemize`` lists); see
        :func:`semirobust.theory.render.latex_document` for a whole document."""
        lines = [
            rf"\subsection*{{{self.name}: {escape_latex(self.title)}}}",
            rf"\emph{{{escape_latex(self.source)}.}} {escape_latex(self.statement)}",
            r"\paragraph{Premises (measured)}" if self.premises else
            r"\paragraph{Premises} none measured.",
        ]
        if self.premises:
            lines.append(r"\begin{itemize}")
            lines += [
                rf"  \item {escape_latex(p.label)}: ${p.latex()}$ ({escape_latex(p.meaning)})"
                for p in self.premises
            ]
            lines.append(r"\end{itemize}")
        if self.consistency:
            lines += [r"\paragraph{Implied by the premises}", r"\begin{itemize}"]
            lines += [rf"  \item {escape_latex(c.label)}: ${c.latex()}$ ({escape_latex(c.meaning)})"
                      for c in self.consistency]
            lines.append(r"\end{itemize}")
        if self.assumptions:
            lines += [r"\paragraph{Assumptions (stated, not measurable)}", r"\begin{itemize}"]
            lines += [rf"  \item {escape_latex(a.label)}: {escape_latex(a.text)}" for a in self.assumptions]
            lines.append(r"\end{itemize}")
        lines += [
            r"\paragraph{Conclusion}",
            rf"\[ {self.conclusion.latex()} \]",
            rf"({escape_latex(self.conclusion.meaning)})",
            r"\paragraph{Bound}",
            rf"\[ {_latex(self.bound)} \]",
        ]
        if self.caveats:
            lines += [r"\paragraph{Caveats}", r"\begin{itemize}"]
            lines += [rf"  \item {escape_latex(c)}" for c in self.caveats]
            lines.append(r"\end{itemize}")
        return "\n".join(lines)

    def math_fragments(self) -> list[str]:
        """Every math-mode string :meth:`latex` emits (for validation)."""
        return ([p.latex() for p in (*self.premises, *self.consistency)]
                + [self.conclusion.latex(), _latex(self.bound)])


_LATEX_SPECIALS = {
    "\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
    "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}",
    "<": r"$<$", ">": r"$>$", "|": r"$|$",
}


def escape_latex(text: str) -> str:
    """Plain text made safe for LaTeX's text mode."""
    return "".join(_LATEX_SPECIALS.get(ch, ch) for ch in text)
