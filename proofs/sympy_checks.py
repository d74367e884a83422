"""Run the sympy checks written inside the proofs (``proofs/*.md``).

Every fenced block opened with ```` ```sympy-check ```` in a proof holds one step per line:

* ``symbols: x y positive`` declares symbols with sympy assumptions (``integer``,
  ``positive``, ``nonnegative``, ``real``, ...); ``indexed: rho g`` declares indexed
  families; ``functions: G f`` declares undefined functions;
* ``LEFT == RIGHT`` passes when ``simplify(LEFT - RIGHT)`` is 0 after ``doit()`` (or, for
  non-expressions such as solution lists, when they are equal);
* ``LEFT >= RIGHT`` / ``LEFT <= RIGHT`` passes when sympy proves the difference
  nonnegative from the declared assumptions;
* ``# ...`` is a comment.

Besides sympy, a step may use ``margin`` (:func:`semirobust.theory.definitions.margin`) and
``bound_T1`` ... ``bound_LIP``, the bound expressions of :data:`semirobust.theory.RESULTS`,
and the quantities, layer numbers ``a``, ``n``, ``i``, ``j`` and the constant ``ln2``
(nats per bit) they are written in, so
the proofs are checked against the statements the judge evaluates.

Run ``python proofs/sympy_checks.py`` (exit 1 if any step fails); the tests run every block.
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass
from pathlib import Path

import sympy
from sympy.calculus.util import maximum, minimum
from sympy.parsing.sympy_parser import TokenError, parse_expr

from semirobust.theory.definitions import margin
from semirobust.theory.quantities import LN2, QUANTITIES, A, I, J, N
from semirobust.theory.results import RESULTS

PROOFS = Path(__file__).resolve().parent
BLOCK = re.compile(r"^```sympy-check\n(.*?)^```", re.DOTALL | re.MULTILINE)
RELATIONS = (" == ", " >= ", " <= ")
ASSUMPTIONS = {"integer", "positive", "nonnegative", "real", "negative", "nonpositive"}


@dataclass(frozen=True)
class Step:
    source: str
    line: str
    passed: bool
    detail: str


def base_namespace() -> dict[str, object]:
    names: dict[str, object] = {
        name: getattr(sympy, name)
        for name in ("Sum", "sqrt", "log", "exp", "oo", "Interval", "solve", "diff", "Max",
                     "Min", "Abs", "Rational", "Lambda", "limit", "simplify", "expand")
    }
    names["minimum"] = minimum
    names["maximum"] = maximum
    names["margin"] = margin
    for result in RESULTS.values():
        names[f"bound_{result.name}"] = result.bound
    for quantity in QUANTITIES.values():
        names[quantity.name] = quantity.symbol
    names.update(a=A, n=N, i=I, j=J, ln2=LN2)
    return names


def check_block(text: str, source: str = "<block>") -> list[Step]:
    """Check every step of one ``sympy-check`` block; declarations apply to later lines."""
    namespace = base_namespace()
    steps = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith(("symbols:", "indexed:", "functions:")):
            _declare(line, namespace)
            continue
        steps.append(_check_step(line, namespace, source))
    return steps


def check_markdown(text: str, source: str = "<markdown>") -> list[Step]:
    """Check every ``sympy-check`` block in a Markdown text."""
    return [step for block in BLOCK.findall(text) for step in check_block(block, source)]


def check_all(folder: Path = PROOFS) -> list[Step]:
    """Every step of every proof in ``folder``."""
    return [
        step for path in sorted(folder.glob("*.md"))
        for step in check_markdown(path.read_text(encoding="utf-8"), path.name)
    ]


def _declare(line: str, namespace: dict[str, object]) -> None:
    keyword, _, rest = line.partition(":")
    words = rest.split()
    if keyword == "symbols":
        flags = {w: True for w in words if w in ASSUMPTIONS}
        for name in (w for w in words if w not in ASSUMPTIONS):
            namespace[name] = sympy.Symbol(name, **flags)
    elif keyword == "indexed":
        for name in words:
            namespace[name] = sympy.IndexedBase(name)
    else:
        for name in words:
            namespace[name] = sympy.Function(name)


def _check_step(line: str, namespace: dict[str, object], source: str) -> Step:
    relation = next((r for r in RELATIONS if r in line), None)
    if relation is None or line.count(relation) != 1:
        return Step(source, line, False, "a step is 'LEFT == RIGHT', 'LEFT >= RIGHT' or 'LEFT <= RIGHT'")
    left_text, right_text = line.split(relation)
    try:
        left = parse_expr(left_text, local_dict=dict(namespace))
        right = parse_expr(right_text, local_dict=dict(namespace))
    except (SyntaxError, TypeError, ValueError, NameError, AttributeError, TokenError,
            sympy.SympifyError) as error:  # a malformed step fails, reported with its cause
        return Step(source, line, False, f"does not parse: {error}")
    if relation == " == ":
        return _check_equal(line, left, right, source)
    difference = left - right if relation == " >= " else right - left
    difference = sympy.simplify(sympy.sympify(difference).doit())
    if difference.is_nonnegative or sympy.factor(difference).is_nonnegative:
        return Step(source, line, True, f"difference {difference} >= 0")
    return Step(source, line, False, f"cannot show {difference} >= 0")


def _check_equal(line: str, left: object, right: object, source: str) -> Step:
    if not isinstance(left, sympy.Expr) or not isinstance(right, sympy.Expr):
        passed = left == right
        return Step(source, line, passed, "equal" if passed else f"{left} != {right}")
    difference = sympy.simplify((left - right).doit())
    if difference == 0:
        return Step(source, line, True, "difference simplifies to 0")
    return Step(source, line, False, f"difference is {difference}, not 0")


def main() -> int:
    steps = check_all()
    for step in steps:
        print(f"{'ok  ' if step.passed else 'FAIL'} {step.source}: {step.line}   [{step.detail}]")
    failed = sum(not s.passed for s in steps)
    print(f"{len(steps) - failed} of {len(steps)} steps checked")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
