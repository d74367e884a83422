"""The six results: T1, L1, T2, L2, T3 (THEORY.md 3) and the Lipschitz transfer (section 5).

Each is a :class:`~semirobust.theory.statements.Result` in the form the toolkit can judge:
under fixed, named readouts (caveat C1), "f is gamma-semirobust" for the best gamma of
that readout means ``gamma = E[inf_delta m] > 0`` (Ilyas et al.'s robustly useful
features have ``gamma > 0``), so every gamma below is a measured expected worst-case
margin and "semirobust" is the premise ``gamma > 0``. Where the paper states an equality
that only holds as an inequality (L2, T3: caveat C4), the conclusion judged is the
inequality in the direction the paper needs, and the caveat says so.

``RESULTS`` maps each name to its result, in the order of THEORY.md.
"""

from __future__ import annotations

import sympy

from semirobust.theory.quantities import (
    CLEAN_MARGIN,
    DELTA_A,
    GAMMA_A,
    GAMMA_B,
    GAMMA_LAYER,
    GAMMA_WHOLE,
    LIPSCHITZ_B,
    MARGIN_GAP,
    RHO,
    U_CONSTANT,
    LN2,
    A,
    I,
    J,
    N,
)
from semirobust.theory.statements import Assumption, Inequality, Relation, Result
from semirobust.theory.units import Join

gamma_a, gamma_b, gamma_whole = GAMMA_A.symbol, GAMMA_B.symbol, GAMMA_WHOLE.symbol
gamma, rho, gap, U = GAMMA_LAYER.symbol, RHO.symbol, MARGIN_GAP.symbol, U_CONSTANT.symbol
clean_margin, L_b, Delta_a = CLEAN_MARGIN.symbol, LIPSCHITZ_B.symbol, DELTA_A.symbol

C1 = ("C1 scale: each gamma is measured with a named, fixed readout; with a free readout "
      "c*G the margin scales by c and the statement is vacuous")
C2 = ("C2 infinite MI: the true MI of a deterministic layer is infinite; rho is the value of "
      "its named estimator")
C3 = ("C3 strong premise: A2/B2 asks each layer's margin to exceed the previous one's by "
      "1 + U in expectation; the proof of L1 uses log x <= x + 1 (tight form: x - 1)")
C4 = ("C4 inf of a sum: inf of a sum is >= the sum of infs, so only gamma_n >= sum gamma_i "
      "follows; the paper's equality needs one common worst delta")
C5 = ("C5 without loss of generality: the proof takes readouts through different paths to "
      "be equal and counts gamma_a per layer, an extra assumption; exact linear networks "
      "contradict the closed form (proofs/caveat_examples.py)")
C6 = ("C6 units: the conclusion adds gamma (logits of the named readout) and rho (bits of "
      "the named estimator); judged as stated, in bits")
C9 = ("C9 the constant U: U_j > -1 (at -1 a zero gap meets A2); read as a bound on E[r] "
      "(proofs/L1.md) U_j gives I <= 1 + U_j nats, so a rho_j above 1 + U_j nats makes the "
      "premise set contradictory; L1's chain holds in nats (in bits it claims 1.44 times more)")
C8 = ("C8 inf versus sup: A2/B2 bound the infimum of the margin gap where the proof needs "
      "its supremum: the premises do not imply the conclusion (semirobust falsify)")

AS_STATED_IN_BITS = Join("logits", "bits", "C6: rho in bits is added to gamma in logits as "
                                            "the paper states the result")
B2_IN_NATS = Join("logits", "nats", "C9: B2's 1 + U bounds the MI in nats (log x <= x + 1) "
                                    "and a margin gap in logits; the proof adds them")

B1_TEXT = ("the layer map is one-to-one and (g_delta, h_delta) has a joint density given y "
           "(a deterministic layer on continuous inputs has no joint density: C2)")
RHO_TEXT = ("rho_{j} is at most the class-weighted MI of layers j-1, j under attack: here it "
            "is the named estimator's value, so the premise holds by construction (C2)")


def semirobust_premise(label: str, symbol: sympy.Expr, what: str, for_each=None) -> Inequality:
    """``gamma > 0``: ``what`` is semirobust with its named readout."""
    return Inequality(
        label, symbol, Relation.GT, sympy.Integer(0),
        f"{what} has positive expected worst-case margin", for_each,
    )


def u_premise(label: str, index: sympy.Expr, for_each=None) -> Inequality:
    """C9: ``U_j > -1`` (at ``U_j = -1`` a zero gap meets A2/B2)."""
    return Inequality(label, U[index], Relation.GT, sympy.Integer(-1),
                      "the constant of A2/B2 exceeds -1 (C9)", for_each)


def c9_consistency(label: str, index: sympy.Expr, for_each=None) -> Inequality:
    """C9: the premises imply ``I <= 1 + U_j`` nats, so ``ln 2 * rho_j <= 1 + U_j``."""
    return Inequality(label, LN2 * rho[index], Relation.LE, 1 + U[index],
                      "rho_j in nats is at most 1 + U_j (C9: U_j read as a bound on E[r])",
                      for_each)


def a2_premise(label: str, index: sympy.Expr, for_each=None) -> Inequality:
    """A2/B2 for layer ``index``: ``E[inf_delta (m_{j-1} - m_j)] <= -(1 + U_j)``."""
    return Inequality(
        label, gap[index], Relation.LE, -(1 + U[index]),
        "layer j's worst-case margin exceeds layer j-1's by 1 + U_j in expectation", for_each,
    )


T1 = Result(
    name="T1",
    title="the map up to a layer is semirobust iff every earlier map is",
    source="THEORY.md 3, Theorem 1",
    statement=("F^(j) is semirobust iff each F^(i), i <= j, is, each with its own readout; "
               "the proof takes G_i = G_j o F^(i+1,j)."),
    premises=(semirobust_premise("F^(j) semirobust", gamma[J], "the map up to layer j"),),
    assumptions=(Assumption(
        "readouts", "gamma_i is measured with the composed readout G_j o F^(i+1,j) (the "
        "proof's rewriting); with it gamma_i and gamma_j are the infimum of one function"),),
    conclusion=Inequality(
        "each F^(i) semirobust", gamma[I], Relation.GE, gamma[J],
        "every earlier map is at least as semirobust with the composed readout",
        for_each=(I, sympy.Integer(1), J - 1),
    ),
    bound=gamma[J],
    families={"gamma": (sympy.Integer(1), J)},
    layer_numbers=(J,),
    caveats=(C1,),
)

L1 = Result(
    name="L1",
    title="one layer: semirobustness plus dependency passes to the next layer",
    source="THEORY.md 3, Lemma 1",
    statement=("If g = f^(n-1) is gamma_{n-1}-semirobust, sum_y pi(y) I(g_delta; h_delta | y) "
               ">= rho, and B1, B2 hold, then h = f^(n) is gamma_n-semirobust for "
               "gamma_n <= gamma_{n-1} + rho."),
    premises=(
        semirobust_premise("g semirobust", gamma[N - 1], "layer n-1 with its readout"),
        a2_premise("B2", N),
        u_premise("C9 U > -1", N),
    ),
    assumptions=(Assumption("B1", B1_TEXT), Assumption("dependency", RHO_TEXT)),
    conclusion=Inequality(
        "h semirobust", gamma[N], Relation.GE, gamma[N - 1] + LN2 * rho[N],
        "layer n's expected worst-case margin reaches gamma_{n-1} + rho_n, rho_n in nats "
        "(the unit the proof's chain holds in, C9)",
    ),
    bound=gamma[N - 1] + LN2 * rho[N],
    families={"gamma": (N - 1, N), "rho": (N, N), "margin_gap": (N, N), "U": (N, N)},
    layer_numbers=(N,),
    caveats=(C1, C2, C3, C6, C8, C9),
    consistency=(c9_consistency("C9 consistency", N),),
    unit_joins=(B2_IN_NATS,),
)

T2 = Result(
    name="T2",
    title="a semirobust first part and enough dependency make the rest semirobust",
    source="THEORY.md 3, Theorem 2 (main)",
    statement=("If f_a is gamma_a-semirobust and, for every j = a+1..n, rho_j is at most the "
               "measured dependency and A1, A2 hold, then f_b is gamma_b-semirobust for "
               "gamma_b <= gamma_a + sum_{j=a+1..n} rho_j."),
    premises=(
        semirobust_premise("f_a semirobust", gamma_a, "f_a with its readout"),
        a2_premise("A2", J, for_each=(J, A + 1, N)),
        u_premise("C9 U > -1", J, for_each=(J, A + 1, N)),
    ),
    assumptions=(Assumption("A1", "for each j = a+1..n: " + B1_TEXT),
                 Assumption("dependency", RHO_TEXT)),
    conclusion=Inequality(
        "f_b semirobust", gamma_b, Relation.GE, gamma_a + sympy.Sum(rho[J], (J, A + 1, N)),
        "f_b's expected worst-case margin reaches gamma_a + sum_j rho_j",
    ),
    bound=gamma_a + sympy.Sum(rho[J], (J, A + 1, N)),
    families={"rho": (A + 1, N), "margin_gap": (A + 1, N), "U": (A + 1, N)},
    layer_numbers=(A, N),
    caveats=(C1, C2, C3, C6, C8, C9),
    consistency=(c9_consistency("C9 consistency", J, for_each=(J, A + 1, N)),),
    unit_joins=(AS_STATED_IN_BITS, B2_IN_NATS),
)

L2 = Result(
    name="L2",
    title="a linear readout of earlier layers adds their semirobustness",
    source="THEORY.md 3, Lemma 2",
    statement=("If f^(n) = sum_{i<n} lambda_i^T f^(i) and each f^(i) is gamma_i-semirobust "
               "with readout lambda_i^T, then f^(n) is gamma_n-semirobust with "
               "gamma_n = sum_{i<n} gamma_i (only >= follows: C4)."),
    premises=(semirobust_premise(
        "each f^(i) semirobust", gamma[I], "layer i with readout lambda_i^T",
        for_each=(I, sympy.Integer(1), N - 1)),),
    assumptions=(Assumption(
        "linear readout", "f^(n) = sum_{i<n} lambda_i^T f^(i), and gamma_i is measured with "
        "the readout lambda_i^T"),),
    conclusion=Inequality(
        "f^(n) semirobust", gamma[N], Relation.GE, sympy.Sum(gamma[I], (I, 1, N - 1)),
        "the last layer's worst-case margin is at least the sum of the earlier ones "
        "(paper: equal)",
    ),
    bound=sympy.Sum(gamma[I], (I, 1, N - 1)),
    families={"gamma": (sympy.Integer(1), N)},
    layer_numbers=(N,),
    caveats=(C4, C1),
)

T3_BOUND = gamma_a + gamma_a * (N - 1 - A) * (N - A) / 2

T3 = Result(
    name="T3",
    title="linear dependency: semirobustness grows quadratically in the depth of f_b",
    source="THEORY.md 3, Theorem 3",
    statement=("If f_a is gamma_a-semirobust and every layer i = a+1..n is "
               "f^(i) = sum_{l<i} lambda_li^T f^(l), then f_b is gamma_b-semirobust with "
               "gamma_b = gamma_a + gamma_a (n-1-a)(n-a)/2."),
    premises=(semirobust_premise("f_a semirobust", gamma_a, "f_a with its readout"),),
    assumptions=(
        Assumption("linear dependency",
                   "every layer i = a+1..n is a linear combination of earlier layers"),
        Assumption("equal readouts (C5)",
                   "readouts through different paths are equal (G_ln = G_l) and each "
                   "layer of f_b contributes gamma_a"),
    ),
    conclusion=Inequality(
        "f_b semirobust", gamma_b, Relation.GE, T3_BOUND,
        "f_b's expected worst-case margin reaches the closed form (paper: equal)",
    ),
    bound=T3_BOUND,
    layer_numbers=(A, N),
    caveats=(C5, C4, C1),
)

LIPSCHITZ_TRANSFER = Result(
    name="LIP",
    title="Lipschitz transfer: the robust half's feature sensitivity bounds the whole",
    source="THEORY.md 5 (this project's addition; proved in proofs/lipschitz.md)",
    statement=("If f_b is L_b-Lipschitz (l2 -> l2), then for every delta in S, "
               "m(F(x+delta), y) >= m(F(x), y) - sqrt(2) L_b ||f_a(x+delta) - f_a(x)||_2, so "
               "gamma_whole >= E[m(F(X), y)] - sqrt(2) L_b E[Delta_a(X)]."),
    premises=(),
    assumptions=(
        Assumption("L_b", "L_b is an upper bound on f_b's l2 -> l2 Lipschitz constant "
                          "(a certified measurement)"),
        Assumption("Delta_a", "Delta_a is an upper bound on E[sup_delta ||f_a(X+delta) - "
                              "f_a(X)||_2] (certified: bound propagation); from an attack it "
                              "is a lower estimate and the bound becomes an estimate"),
    ),
    conclusion=Inequality(
        "whole network", gamma_whole, Relation.GE,
        clean_margin - sympy.sqrt(2) * L_b * Delta_a,
        "the whole network's expected worst-case margin reaches the Lipschitz bound",
    ),
    bound=clean_margin - sympy.sqrt(2) * L_b * Delta_a,
    sound=True,
)

RESULTS: dict[str, Result] = {
    r.name: r for r in (T1, L1, T2, L2, T3, LIPSCHITZ_TRANSFER)
}
