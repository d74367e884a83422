"""The statements of THEORY.md as one document: plain text, or a standalone LaTeX file.

``semirobust theory`` prints :func:`text_document`; ``semirobust theory --latex`` prints
:func:`latex_document`, which compiles with any LaTeX (article class, amsmath, amssymb).
:func:`verdict_row` renders a verdict's status and what decided it side by side for the
reports' summary tables (THEORY.md 7).
"""

from __future__ import annotations

from collections.abc import Iterable

import sympy

from semirobust.theory.definitions import PAPER_THREAT_MODEL, Readout, Semirobustness
from semirobust.theory.quantities import QUANTITIES, latex_names
from semirobust.theory.statements import Result, escape_latex
from semirobust.theory.verdict import Status, Verdict

DEFINITIONS_TEXT = [
    "margin: m(z, y) = z_y - max_{k != y} z_k  (binary: y*s for z = (-s/2, s/2))",
    "gamma-semirobust: " + Semirobustness("f", Readout.TRAINED_REST).text(),
    "  readouts (C1): " + "; ".join(r.value for r in Readout),
    ("rho_j = sum_y pi(y) I(h_{delta,j-1}; h_{delta,j} | y), pi(y) the class prior, "
     "in bits, with its estimator named (C2)"),
    "threat model (paper): " + PAPER_THREAT_MODEL.text(),
]

DEFINITIONS_LATEX = [
    r"m(z, y) = z_y - \max_{k \neq y} z_k",
    Semirobustness("f", Readout.TRAINED_REST).latex(),
    r"\rho_j = \sum_y \pi(y)\, I\left(h_{\delta,j-1}; h_{\delta,j} \mid y\right)",
    PAPER_THREAT_MODEL.latex(),
]


def quantity_lines() -> list[str]:
    """One line per named quantity: name, unit (C6), meaning."""
    return [
        f"  {q.measurement_name() + ('_' + q.index if q.is_family else '')} [{q.unit}]: {q.meaning}"
        for q in QUANTITIES.values()
    ]


def text_document(results: Iterable[Result]) -> str:
    lines = ["Semirobustness (Craig et al. 2023) as executable statements (THEORY.md)", ""]
    lines += ["Definitions:"] + [f"  {d}" for d in DEFINITIONS_TEXT]
    lines += ["", "Quantities (name [unit]: meaning):"] + quantity_lines() + [""]
    for result in results:
        lines += [result.text(), ""]
    return "\n".join(lines)


def latex_document(results: Iterable[Result]) -> str:
    results = list(results)
    lines = [
        r"\documentclass{article}",
        r"\usepackage{amsmath,amssymb}",
        r"\begin{document}",
        r"\section*{Semirobustness as executable statements}",
        r"\paragraph{Definitions}",
        r"\begin{itemize}",
    ]
    lines += [rf"  \item ${d}$" for d in DEFINITIONS_LATEX]
    lines += [r"\end{itemize}", r"\paragraph{Quantities}", r"\begin{itemize}"]
    names = latex_names()
    for q in QUANTITIES.values():
        symbol = sympy.latex(q.member(sympy.Symbol(q.index)) if q.is_family else q.symbol,
                             symbol_names=names)
        lines.append(rf"  \item ${symbol}$ [{escape_latex(q.unit)}]: {escape_latex(q.meaning)}")
    lines.append(r"\end{itemize}")
    for result in results:
        lines += [result.latex(), ""]
    lines.append(r"\end{document}")
    return "\n".join(lines) + "\n"


def latex_math_fragments(results: Iterable[Result]) -> list[str]:
    """Every math-mode string of :func:`latex_document` (for validation)."""
    names = latex_names()
    fragments = list(DEFINITIONS_LATEX)
    fragments += [
        sympy.latex(q.member(sympy.Symbol(q.index)) if q.is_family else q.symbol,
                    symbol_names=names)
        for q in QUANTITIES.values()
    ]
    for result in results:
        fragments += result.math_fragments()
    return fragments


VERDICT_HEADER = ["result", "status", "decided by", "population (joint confidence)"]
"""Column names of :func:`verdict_row`: what a report's summary table shows per result."""


def decided_by_text(verdict: Verdict) -> str:
    """A verdict's deciding evidence in words (``-`` when nothing decided)."""
    if verdict.status is Status.NOT_APPLICABLE:
        return verdict.reason or "; ".join(verdict.notes) or "-"
    text = verdict.decided_by or "-"
    if verdict.confidence is not None:
        text += f" at joint confidence >= {verdict.confidence:.0%}"
    return text


def verdict_row(name: str, verdict: Verdict, population: Verdict | None = None) -> list[str]:
    """Status and decided-by side by side, for a report's summary table
    (:data:`VERDICT_HEADER`); the ``population`` verdict, when there is one, in the last column."""
    population_text = f"{population.status.value} ({decided_by_text(population)})" if population else "-"
    return [name, verdict.status.value, decided_by_text(verdict), population_text]
