"""The six results as statements, their text and LaTeX, and ``semirobust theory``."""

from __future__ import annotations

import argparse
import re
import subprocess
import sys

import matplotlib
import pytest
import sympy

matplotlib.use("Agg")
from matplotlib.mathtext import MathTextParser

from semirobust.empirical.cli.commands import theory as theory_command
from semirobust.theory import RESULTS
from semirobust.theory.definitions import DependencyMeasure, Norm, ThreatModel, dependency, margin
from semirobust.theory.quantities import GAMMA_A, A, N
from semirobust.theory.render import latex_document, latex_math_fragments
from semirobust.theory.results import T3_BOUND


def run_theory(*argv: str, capsys) -> str:
    parser = argparse.ArgumentParser()
    theory_command.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["theory", *argv])
    assert args.run(args) == 0
    return capsys.readouterr().out


def test_registry_holds_the_six_results_in_theory_order():
    assert list(RESULTS) == ["T1", "L1", "T2", "L2", "T3", "LIP"]
    assert [r.sound for r in RESULTS.values()] == [False] * 5 + [True]


def test_cli_prints_all_six_results_with_premises_and_bounds(capsys):
    out = run_theory(capsys=capsys)
    for result in RESULTS.values():
        assert f"{result.name}: {result.title}" in out
        assert f"conclusion: {result.conclusion.text()}" in out
        for premise in result.premises:
            assert premise.text() in out
    assert "gamma_b >= gamma_a + sum_{j=a + 1..n} rho_j" in out
    assert "margin_gap_j <= -U_j - 1   for each j = a + 1..n" in out
    assert "gamma_whole >= -sqrt(2)*Delta_a*L_b + clean_margin" in out
    assert "rho_j [bits]" in out and "gamma_a [logits]" in out  # C6: units shown


def test_cli_latex_is_a_balanced_document(capsys):
    out = run_theory("--latex", capsys=capsys)
    assert out.startswith(r"\documentclass{article}") and out.rstrip().endswith(r"\end{document}")
    environments = re.findall(r"\\(begin|end)\{(\w+\*?)\}", out)
    stack = []
    for kind, name in environments:
        if kind == "begin":
            stack.append(name)
        else:
            assert stack.pop() == name
    assert not stack
    depth = 0
    for ch in re.sub(r"\\[{}$]", "", out):  # escaped braces and dollars are text
        depth += {"{": 1, "}": -1}.get(ch, 0)
        assert depth >= 0
    assert depth == 0
    assert re.sub(r"\\\$", "", out).count("$") % 2 == 0
    for result in RESULTS.values():
        assert result.latex() in out


@pytest.mark.parametrize("fragment", latex_math_fragments(RESULTS.values()))
def test_every_math_fragment_renders(fragment):
    """matplotlib's mathtext parser (a TeX math subset) accepts every formula."""
    MathTextParser("path").parse(f"${fragment}$")


def test_latex_document_escapes_text():
    document = latex_document(RESULTS.values())
    assert "f\\_a" in document and "gamma\\_a + sum\\_\\{" in document


def test_cli_can_print_one_result(capsys):
    out = run_theory("--result", "T3", capsys=capsys)
    assert "T3:" in out and "T2:" not in out


def l2_recursion(k: int, gamma_a: float) -> float:
    """L2 (``>=`` form) applied layer by layer in T3's setting: layer ``a+k`` reads ``f_a``
    and every layer after it, so ``gamma_{a+k} >= gamma_a + sum_{m<k} gamma_{a+m}``."""
    levels: list[float] = []
    for _ in range(k):
        levels.append(gamma_a + sum(levels))
    return levels[-1]


def test_t3_closed_form_meets_the_l2_recursion_up_to_three_layers_then_falls_below_it():
    """C7: the recursion gives 2^(k-1) gamma_a; T3's closed form gamma_a (1 + k(k-1)/2)
    agrees for k = 1, 2, 3 and first differs at k = 4 (8 against 7), below it from there."""
    a, n, g = A, N, GAMMA_A.symbol
    for k in range(1, 8):
        recursion = l2_recursion(k, 1.0)
        assert recursion == 2 ** (k - 1)
        closed = float(T3_BOUND.subs({a: 2, n: 2 + k, g: 1.0}))
        if k <= 3:
            assert closed == recursion, k
        else:
            assert closed < recursion, k
    assert float(T3_BOUND.subs({a: 2, n: 6, g: 1.0})) == 7.0


def test_margin_and_threat_model_definitions():
    z = sympy.symbols("z0:3", real=True)
    assert margin(z, 1) == z[1] - sympy.Max(z[0], z[2])
    s = sympy.Symbol("s", real=True)
    assert sympy.simplify(margin((-s / 2, s / 2), 1) - s) == 0
    with pytest.raises(ValueError, match="label 3"):
        margin(z, 3)
    threat = ThreatModel(Norm.LINF, sympy.Rational(8, 255))
    assert threat.norm.dual is Norm.L1 and "8/255" in threat.text()
    with pytest.raises(ValueError, match="eps"):
        ThreatModel(Norm.L2, -1)


def test_dependency_weights_each_class_by_its_prior():
    mi = sympy.Function("I")
    rho = dependency(3, mi)
    pi = sympy.Function("pi")
    assert rho == sum(pi(k) * mi(k) for k in range(3))


def test_importing_the_theory_does_not_import_torch():
    code = ("import sys, semirobust.theory, semirobust.theory.render; "
            "sys.exit(1 if 'torch' in sys.modules else 0)")
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0


def test_a_dependency_measure_names_its_estimator_and_settings():
    measure = DependencyMeasure("EDGE", "bits", {"n_per_class": 1000})
    assert measure.describe() == "EDGE (n_per_class=1000) in bits"
    assert DependencyMeasure("KSG").describe() == "KSG in bits"
