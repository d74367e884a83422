"""Worked examples of the caveats C1 to C6 of THEORY.md section 4, each with exact numbers.

Run ``python proofs/caveat_examples.py`` to print them; ``tests/test_caveats.py`` asserts
what each one shows. Every gamma here is exact (linear networks, ``linear_networks.py``;
the ``[0, 1]`` box is ignored), every MI is a closed form.
"""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from linear_networks import (
    DenseLinearNetwork,
    binary_logits,
    gamma,
    t3_closed_form,
    worst_case_margins,
)

from semirobust.theory import Kind, Measurement, judge

EPS = 0.1
# Two well-separated binary points per class in 2-d, labels 0 (score < 0) and 1 (score > 0).
POINTS = np.array([[1.0, 0.5], [0.8, 1.2], [-1.0, -0.4], [-0.7, -1.1]])
LABELS = np.array([1, 1, 0, 0])


@dataclass(frozen=True)
class Example:
    caveat: str
    shows: str
    numbers: dict[str, float]
    verdicts: dict[str, str] = field(default_factory=dict)


def c1_scale() -> Example:
    """C1: scaling the readout scales gamma; T2's slack changes sign with the scale, the
    Lipschitz transfer's does not (all its terms scale together)."""
    w_a, w_b = np.array([1.0, 1.0]), np.array([2.0, 1.5])
    rho_total = 3.0  # bits, any fixed estimator value
    numbers: dict[str, float] = {"rho_total_bits": rho_total}
    for c in (0.1, 1.0, 10.0):
        g_a = gamma(binary_logits(c * w_a), np.zeros(2), POINTS, LABELS, EPS)
        g_b = gamma(binary_logits(c * w_b), np.zeros(2), POINTS, LABELS, EPS)
        clean = gamma(binary_logits(c * w_b), np.zeros(2), POINTS, LABELS, 0.0)
        lipschitz = c * np.linalg.norm(w_b) / math.sqrt(2)  # of z = (-s/2, s/2) in x
        numbers[f"gamma_b(c={c})"] = g_b
        numbers[f"T2 slack(c={c})"] = g_b - g_a - rho_total
        numbers[f"LIP slack(c={c})"] = g_b - (clean - math.sqrt(2) * lipschitz * EPS * math.sqrt(2))
    return Example("C1", "gamma scales with the readout; T2's verdict flips with the scale, "
                         "the Lipschitz bound's slack only scales", numbers)


def c2_infinite_mi(dims: int = 4) -> Example:
    """C2: I(g; W g + sigma Z) for g ~ N(0, I) grows without bound as sigma -> 0: the
    deterministic layer (sigma = 0) has infinite MI."""
    rng = np.random.default_rng(0)
    W = rng.normal(size=(dims, dims))
    numbers = {}
    for sigma in (1.0, 1e-1, 1e-2, 1e-3, 1e-6):
        covariance = np.eye(dims) + W @ W.T / sigma**2
        numbers[f"I bits (sigma={sigma:g})"] = 0.5 * np.linalg.slogdet(covariance)[1] / math.log(2)
    return Example("C2", f"MI of a {dims}-d linear layer with noise sigma grows by about "
                         f"{dims} log2(10) bits per decade of sigma: infinite at sigma = 0",
                   numbers)


def c3_strong_premise() -> Example:
    """C3: the inequality's slack, and A2 on a layer that copies its input."""
    grid = np.logspace(-3, 3, 601)
    w = np.array([1.0, 1.0])
    copy_gap = float(np.mean(worst_case_margins(
        binary_logits(w - w), np.zeros(2), POINTS, LABELS, EPS)))
    double_gap = float(np.mean(worst_case_margins(
        binary_logits(w - 2 * w), np.zeros(2), POINTS, LABELS, EPS)))
    return Example("C3", "log x <= x + 1 is never tight (slack >= 2), x - 1 is; A2 fails "
                         "for a layer that copies its input whatever U >= -1",
                   {"min of x + 1 - log x": float(np.min(grid + 1 - np.log(grid))),
                    "min of x - 1 - log x": float(np.min(grid - 1 - np.log(grid))),
                    "A2 gap, copy layer": copy_gap,
                    "A2 gap, doubling layer": double_gap})


def c4_inf_of_sum() -> Example:
    """C4: two linear readouts whose sum has a strictly larger worst case than the sum of
    their worst cases (the worst perturbations differ)."""
    w1, w2 = np.array([1.0, 0.0]), np.array([-0.5, 1.0])
    inf_1 = worst_case_margins(binary_logits(w1), np.zeros(2), POINTS, LABELS, EPS)
    inf_2 = worst_case_margins(binary_logits(w2), np.zeros(2), POINTS, LABELS, EPS)
    inf_sum = worst_case_margins(binary_logits(w1 + w2), np.zeros(2), POINTS, LABELS, EPS)
    return Example("C4", "E[inf (s1 + s2)] > E[inf s1] + E[inf s2]; gap = eps (||w1||_1 + "
                         "||w2||_1 - ||w1 + w2||_1)",
                   {"E[inf of sum]": float(inf_sum.mean()),
                    "sum of E[inf]": float(inf_1.mean() + inf_2.mean()),
                    "predicted gap": EPS * (np.abs(w1).sum() + np.abs(w2).sum()
                                            - np.abs(w1 + w2).sum())})


# C5 regression examples, a = 1. "averaging layers" and "doubling layers" were written by
# hand; "a zero layer" is the shrunk counterexample the hypothesis search in
# tests/test_caveats.py (test_c5_search_finds_t3_closed_form_overclaiming) returned:
# with n = a + 1 T3 claims gamma_b = gamma_a, and a layer f^(2) = 0 * f^(1) has gamma_b = 0.
C5_EXAMPLES: dict[str, DenseLinearNetwork] = {
    "averaging layers": DenseLinearNetwork(
        first_part=(np.eye(2),),
        combinations=((np.eye(2),), (0.5 * np.eye(2), 0.5 * np.eye(2))),
        readout=np.array([1.0, 1.0]),
    ),
    "hypothesis: a zero layer": DenseLinearNetwork(
        first_part=(np.full((2, 2), 0.5),),
        combinations=((np.zeros((2, 2)),),),
        readout=np.array([1.0, 1.0]),
    ),
    "doubling layers (closed form too low)": DenseLinearNetwork(
        first_part=(np.eye(2),),
        combinations=((2 * np.eye(2),), (np.zeros((2, 2)), 2 * np.eye(2))),
        readout=np.array([1.0, 1.0]),
    ),
}


def random_dense_network(rng: np.random.Generator, a: int, fb_layers: int) -> DenseLinearNetwork:
    """f_a with an identity-plus-noise map per layer; each layer of f_b a combination of all
    earlier layers with coefficients uniform in [0, 1] times the identity."""
    first = tuple(np.eye(2) + 0.3 * rng.normal(size=(2, 2)) for _ in range(a))
    combinations = tuple(
        tuple(rng.uniform(0.0, 1.0) * np.eye(2) for _ in range(a + i)) for i in range(fb_layers)
    )
    return DenseLinearNetwork(first, combinations, np.array([1.0, 1.0]))


def c5_t3_closed_form(samples: int = 200, seed: int = 0) -> Example:
    """C5: exact gamma_b of linear networks against T3's closed form: the regression
    examples, then ``samples`` random dense networks (a = 2, 1 to 4 layers in f_b)."""
    numbers = {}
    for name, net in C5_EXAMPLES.items():
        g_a = net.gamma_of_layer(net.a, POINTS, LABELS, EPS)
        g_b = net.gamma_of_layer(net.n, POINTS, LABELS, EPS)
        numbers[f"{name}: exact gamma_b"] = g_b
        numbers[f"{name}: closed form"] = t3_closed_form(g_a, net.a, net.n)
    rng = np.random.default_rng(seed)
    ratios, over = [], 0
    for _ in range(samples):
        net = random_dense_network(rng, a=2, fb_layers=int(rng.integers(1, 5)))
        g_a = net.gamma_of_layer(net.a, POINTS, LABELS, EPS)
        if g_a <= 0:
            continue
        g_b = net.gamma_of_layer(net.n, POINTS, LABELS, EPS)
        closed = t3_closed_form(g_a, net.a, net.n)
        ratios.append(g_b / closed)
        over += g_b < closed
    numbers["random networks with gamma_a > 0"] = len(ratios)
    numbers["share where the closed form overclaims"] = over / len(ratios)
    numbers["median exact / closed form"] = float(np.median(ratios))
    numbers["max exact / closed form"] = float(np.max(ratios))
    return Example("C5", "T3's closed form is neither the exact gamma_b nor a bound on it",
                   numbers)


def c6_units() -> Example:
    """C6: the same MI read in nats or in bits gives T2's conclusion opposite verdicts."""
    mi_nats = 6.0
    gain = 7.5  # gamma_b - gamma_a in logits

    def t2_verdict(rho_value: float, rho_unit: str) -> str:
        # exact values (closed forms) and U_2 = 6, so that C9 (rho <= 1 + U nats) and A2
        # (gap <= -(1 + U)) hold and only the unit of rho decides
        readout = {"readout": "trained rest"}
        measurements = {
            "gamma_a": Measurement("gamma_a", 1.0, (1.0, 1.0), Kind.EXACT, "closed form",
                                   "logits", readout),
            "gamma_b": Measurement("gamma_b", 1.0 + gain, (1.0 + gain,) * 2, Kind.EXACT,
                                   "closed form", "logits", readout),
            "rho_2": Measurement("rho_2", rho_value, (rho_value,) * 2, Kind.EXACT,
                                 "closed form", rho_unit),
            "margin_gap_2": Measurement("margin_gap_2", -8.0, (-8.0, -8.0), Kind.EXACT,
                                        "closed form", "logits", readout),
            "U_2": Measurement("U_2", 6.0, (6.0, 6.0), Kind.CERTIFIED, "stated", "logits"),
        }
        return judge("T2", measurements).status.value

    return Example("C6", "gamma_b - gamma_a = 7.5 logits, MI = 6 nats = 8.66 bits: T2 holds "
                         "if the nats are misread as bits, is violated in bits (the judge "
                         "converts)",
                   {"slack, 6 nats misread as 6 bits": gain - mi_nats,
                    "slack, 6 nats converted to bits": gain - mi_nats / math.log(2)},
                   {"T2 verdict, rho = 6 labelled nats": t2_verdict(mi_nats, "nats"),
                    "T2 verdict, rho = 6 labelled bits": t2_verdict(mi_nats, "bits")})


EXAMPLES = (c1_scale, c2_infinite_mi, c3_strong_premise, c4_inf_of_sum, c5_t3_closed_form,
            c6_units)


def main() -> int:
    for make in EXAMPLES:
        example = make()
        print(f"{example.caveat}: {example.shows}")
        for key, value in example.numbers.items():
            print(f"    {key}: {value:.6g}")
        for key, status in example.verdicts.items():
            print(f"    {key}: {status}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
