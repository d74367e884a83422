"""Falsification: search for a witness whose premises certainly hold and whose conclusion
certainly fails (THEORY.md 4, C8 and C6; section 7).

The search space has two parts (``space``: ``1d``, ``cnn`` or ``all``, both). In the
``1d`` part every quantity is exact: a scalar input in ``[0, 1]``, the threat interval
``[x - eps, x + eps]`` clipped to it, two classes, and networks of ``Linear`` and ``ReLU``
layers, whose worst cases :mod:`semirobust.empirical.measure.exact_1d` computes by
enumerating breakpoints. A candidate is ``f_a`` (one weight layer, optionally followed by
a ReLU), a fixed linear readout ``G_a`` of its features (the probe of C1, its ``||W||_2``
recorded), ``f_b`` (one linear layer to the logits), one to three labelled inputs and
``eps``. The ``cnn`` part (:mod:`semirobust.empirical.studies.falsify_cnn`) has the same
structure with ``f_a`` a 3x3 convolution (and ReLU) on ``1x4x4`` images, every gamma and gap
a certified bound beside an attack's value, each decisive only on its sound side.
Hypothesis draws candidates (derandomised, no example database, so a run is reproducible
from its budget, seed and space) and shrinks the first witness; a directed step rescales
``f_b`` (C6: rho does not change, margins do) before each candidate is judged.

What each result is judged on (every value exact on the candidate's inputs, or certified):

* **T2** (``a = 1``, ``n = 2``) and **L1** (``n = 2``): ``gamma_a`` / ``gamma_1`` through
  ``G_a``, ``gamma_b`` / ``gamma_2`` through ``f_b``, A2's gap
  ``E[inf_delta (m(G_a f_a) - m(f_b f_a))]``, ``U_2 = 0`` (stated), and ``rho_2 = 0``
  bits, certified: every mutual information is ``>= 0``, so ``rho_2 = 0`` satisfies the
  dependency premise on every network (the true MI of a deterministic layer is even
  infinite, C2), and it is the value at which the conclusion is weakest;
* **LIP**: ``gamma_whole``, the clean margin and ``Delta_a = E[sup ||f_a(x') - f_a(x)||_2]``
  exact, ``L_b`` the certified product bound of ``f_b``;
* **L2** (``n = 3``): the logits ``G_1 h_1 + G_2 h_2`` of two layers ``h_1 = f_a``,
  ``h_2 = ReLU(W h_1)``, each ``gamma_i`` through its ``G_i``, ``gamma_3`` through the sum;
* **T1** (``j = 2``) with composed readouts: ``gamma_1`` through ``f_b`` (``G_1 = G_2 o
  f^(2)``) is the same function as ``gamma_2``: one measurement.

* **T3** (``a = 1``, ``n = 3``): layer 2 ``W h_1`` and the logits ``V h_2``, linear without
  bias (so each layer of ``f_b`` is a linear combination of the one before), ``gamma_a``
  through ``G_a``, ``gamma_b`` through the logits; the closed form asks ``gamma_b >=
  2 gamma_a`` (C5: fixed readouts make it false; more cases in ``proofs/caveat_examples.py``).
The CNN part judges the same results on the same quantities, certified or attacked
instead of exact (:mod:`~semirobust.empirical.studies.falsify_cnn`).
For an unsound result the search returns a witness or "none found in N examples"; for a
sound one (LIP, L2, T1 with composed readouts) a witness is a bug report.
"""

from __future__ import annotations

import functools
import json
import math
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import sympy
import torch
from hypothesis import HealthCheck, find, settings
from hypothesis import strategies as st
from hypothesis.errors import NoSuchExample
from torch import nn

from semirobust.empirical.bounds.lipschitz import lipschitz_upper
from semirobust.empirical.measure.exact_1d import extremum, margin
from semirobust.empirical.reports.writers import write_json_atomic, write_text_atomic
from semirobust.empirical.studies import falsify_cnn
from semirobust.empirical.studies.falsify_cnn import CnnCandidate, cnn_candidates
from semirobust.errors import BadInput
from semirobust.theory import RESULTS, Kind, Measurement, Status, Verdict, judge
from semirobust.theory.quantities import LN2, QUANTITIES

SEARCHED = ("T2", "L1", "T3", "LIP", "L2", "T1")
SOUND = ("LIP", "L2", "T1")
SPACES = ("all", "1d", "cnn")
SCALES = (1.0, 4.0, 16.0, 64.0)
WEIGHTS = (-2.0, -1.0, -0.5, 0.5, 1.0, 2.0)
BIASES = (-0.5, 0.0, 0.5)
INPUTS = (0.1, 0.3, 0.5, 0.7, 0.9)
EPSILONS = (0.05, 0.1, 0.2)
RHO_ZERO = ("0: every mutual information is >= 0, a sound lower bound of the dependency "
            "(T2's premise holds for it; its conclusion is weakest at it)")


def _linear(inputs: int, outputs: int, weight: list[float], bias: list[float]) -> nn.Linear:
    layer = nn.Linear(inputs, outputs).double()
    with torch.no_grad():
        layer.weight.copy_(torch.tensor(weight, dtype=torch.float64).view(outputs, inputs))
        layer.bias.copy_(torch.tensor(bias, dtype=torch.float64))
    return layer


LAYOUT_1D = ("f_a = Linear(1, width) [+ ReLU]; G_a = Linear(width, 2); "
             "f_b = Linear(width, 2) (scaled); inputs scalar in [0, 1]; "
             "load with semirobust.empirical.studies.falsify.load_witness")
HOW_TO_CHECK_1D = (
    ("Every function here is piecewise linear in the scalar input, so each worst case "
    "is attained at an end of the threat interval [max(0, x - eps), min(1, x + eps)] "
    "or at a ReLU kink inside it; evaluate the margins there."),
    ("- margin of class y: z_y - z_(1-y); gamma = mean over the inputs of the "
    "smallest margin over the interval."),
    ("- A2's gap: mean over the inputs of the smallest value of "
    "m(G_a(f_a(x'))) - m(f_b(f_a(x'))) over the interval: the premise bounds this "
    "*infimum* (C8), while the conclusion needs the gap bounded for every x'."),
)


@dataclass(frozen=True)
class Candidate:
    """One point of the 1-D search space (the module docstring); ``scale`` multiplies ``f_b``."""

    width: int
    relu: bool
    first: tuple[tuple[float, ...], tuple[float, ...]]
    readout: tuple[tuple[float, ...], tuple[float, ...]]
    rest: tuple[tuple[float, ...], tuple[float, ...]]
    hidden: tuple[tuple[float, ...], tuple[float, ...]]
    inputs: tuple[float, ...]
    labels: tuple[int, ...]
    eps: float
    scale: float = 1.0

    space = "1d"
    layout = LAYOUT_1D
    how_to_check = HOW_TO_CHECK_1D

    @property
    def f_a(self) -> nn.Sequential:
        layers: list[nn.Module] = [_linear(1, self.width, *map(list, self.first))]
        return nn.Sequential(*layers, *([nn.ReLU()] if self.relu else [])).eval()

    @property
    def g_a(self) -> nn.Linear:
        return _linear(self.width, 2, *map(list, self.readout))

    @property
    def f_b(self) -> nn.Sequential:
        weight, bias = ([self.scale * v for v in part] for part in self.rest)
        return nn.Sequential(_linear(self.width, 2, weight, bias)).eval()

    @property
    def second(self) -> nn.Sequential:
        """L2's second layer ``h_2 = ReLU(W h_1 + c)``."""
        return nn.Sequential(_linear(self.width, self.width, *map(list, self.hidden)), nn.ReLU())

    def to_dict(self) -> dict[str, Any]:
        return {"width": self.width, "relu_after_f_a": self.relu,
                "f_a": {"weight": list(self.first[0]), "bias": list(self.first[1])},
                "G_a": {"weight": list(self.readout[0]), "bias": list(self.readout[1])},
                "f_b (before scaling)": {"weight": list(self.rest[0]), "bias": list(self.rest[1])},
                "f_b scale": self.scale,
                "L2 second layer": {"weight": list(self.hidden[0]), "bias": list(self.hidden[1])},
                "inputs": list(self.inputs), "labels": list(self.labels), "eps": self.eps,
                "threat": "|delta| <= eps, x + delta clipped to [0, 1] (l-inf = l2 in 1-D)"}


@st.composite
def candidates(draw) -> Candidate:
    """Small 1-D networks, readouts, data and threat models (module docstring)."""
    width = draw(st.integers(1, 2))
    weights, biases = st.sampled_from(WEIGHTS), st.sampled_from(BIASES)

    def layer(inputs: int, outputs: int):
        return (tuple(draw(weights) for _ in range(inputs * outputs)),
                tuple(draw(biases) for _ in range(outputs)))

    count = draw(st.integers(1, 3))
    return Candidate(
        width=width, relu=draw(st.booleans()), first=layer(1, width), readout=layer(width, 2),
        rest=layer(width, 2), hidden=layer(width, width),
        inputs=tuple(draw(st.sampled_from(INPUTS)) for _ in range(count)),
        labels=tuple(draw(st.integers(0, 1)) for _ in range(count)),
        eps=draw(st.sampled_from(EPSILONS)),
    )


def _exact(name: str, value: float, estimator: str, unit: str = "logits",
           readout: str | None = None, **extra: Any) -> Measurement:
    settings = {"scope": "the candidate's inputs", **extra}
    if readout is not None:
        settings["readout"] = readout
    return Measurement(name, value, (value, value), Kind.EXACT, estimator, unit, settings)


def _mean_inf(candidate: Candidate, models: list[nn.Module],
              value: Callable[..., torch.Tensor]) -> float:
    return sum(extremum(models, lambda *z, y=y: value(y, *z), x, candidate.eps)
               for x, y in zip(candidate.inputs, candidate.labels)) / len(candidate.inputs)


ENUMERATION = "exact: minimum over the threat interval's breakpoints (exact_1d)"
G_A = "G_a: a fixed linear probe of f_a's features"
F_B = "f_b: the network's logits"


def _gamma_a(c: Candidate) -> float:
    return _mean_inf(c, [nn.Sequential(c.f_a, c.g_a)], lambda y, z: margin(z, y))


def _gamma_b(c: Candidate) -> float:
    return _mean_inf(c, [nn.Sequential(c.f_a, c.f_b)], lambda y, z: margin(z, y))


def _gap(c: Candidate) -> float:
    return _mean_inf(c, [nn.Sequential(c.f_a, c.g_a), nn.Sequential(c.f_a, c.f_b)],
                     lambda y, first, second: margin(first, y) - margin(second, y))


def _stated(j: int) -> dict[str, Measurement]:
    """``rho_j = 0`` bits (certified: every MI is ``>= 0``) and the stated ``U_j = 0``."""
    return {
        f"rho_{j}": Measurement(f"rho_{j}", 0.0, (0.0, 0.0), Kind.CERTIFIED, RHO_ZERO, "bits"),
        f"U_{j}": Measurement(f"U_{j}", 0.0, (0.0, 0.0), Kind.CERTIFIED,
                              "stated: U_2 = 0 (> -1, C9)", "logits"),
    }


def _dependency(c: Candidate, j: int) -> dict[str, Measurement]:
    return {**_stated(j), f"margin_gap_{j}": _exact(f"margin_gap_{j}", _gap(c), ENUMERATION,
                                                    readout=f"{G_A} | {F_B}")}


def t2_measurements(c: Candidate) -> dict[str, Measurement]:
    probe_norm = float(torch.linalg.matrix_norm(c.g_a.weight.detach(), ord=2))
    return {"gamma_a": _exact("gamma_a", _gamma_a(c), ENUMERATION, readout=G_A,
                              readout_norm=probe_norm),
            "gamma_b": _exact("gamma_b", _gamma_b(c), ENUMERATION, readout=F_B),
            **_dependency(c, 2)}


def l1_measurements(c: Candidate) -> dict[str, Measurement]:
    ms = t2_measurements(c)
    return {"gamma_1": _renamed(ms.pop("gamma_a"), "gamma_1"),
            "gamma_2": _renamed(ms.pop("gamma_b"), "gamma_2"), **ms}


def _renamed(m: Measurement, name: str) -> Measurement:
    return Measurement(name, m.value, m.interval, m.kind, m.estimator, m.unit, m.settings)


def lip_measurements(c: Candidate) -> dict[str, Measurement]:
    whole = nn.Sequential(c.f_a, c.f_b)
    with torch.no_grad():
        clean = sum(float(margin(whole(torch.tensor([[x]], dtype=torch.float64)), y))
                    for x, y in zip(c.inputs, c.labels)) / len(c.inputs)
        delta = sum(extremum([c.f_a], lambda h, x=x: (h - c.f_a(torch.tensor([[x]], dtype=torch.float64)))
                             .norm(dim=1), x, c.eps, largest=True) for x in c.inputs) / len(c.inputs)
    bound = lipschitz_upper(c.f_b, (c.width,))
    return {"gamma_whole": _exact("gamma_whole", _gamma_b(c), ENUMERATION, readout=F_B),
            "clean_margin": _exact("clean_margin", clean, "m(F(x), y) in float64", readout=F_B),
            "Delta_a": _exact("Delta_a", delta, "exact: maximum over the breakpoints",
                              "feature l2"),
            "L_b": bound.measurement("L_b", unit="logits per feature l2")}


def l2_measurements(c: Candidate) -> dict[str, Measurement]:
    first, second = nn.Sequential(c.f_a, c.g_a), nn.Sequential(c.f_a, c.second, c.f_b)
    g1 = _mean_inf(c, [first], lambda y, z: margin(z, y))
    g2 = _mean_inf(c, [second], lambda y, z: margin(z, y))
    g3 = _mean_inf(c, [first, second], lambda y, z1, z2: margin(z1 + z2, y))
    return {"gamma_1": _exact("gamma_1", g1, ENUMERATION, readout="lambda_1 = G_a"),
            "gamma_2": _exact("gamma_2", g2, ENUMERATION, readout="lambda_2 = f_b on h_2"),
            "gamma_3": _exact("gamma_3", g3, ENUMERATION,
                              readout="lambda_1^T h_1 + lambda_2^T h_2")}


def t3_measurements(c: Candidate) -> dict[str, Measurement]:
    """T3 with ``a = 1``, ``n = 3``: layer 2 is ``W h_1`` (the hidden weights, no bias, no
    activation: a linear combination of layer 1), layer 3 the logits ``V h_2`` (``f_b``'s
    weights, no bias); ``gamma_a`` through ``G_a``, ``gamma_b`` through the logits."""
    hidden = nn.Linear(c.width, c.width, bias=False).double()
    logits = nn.Linear(c.width, 2, bias=False).double()
    with torch.no_grad():
        hidden.weight.copy_(torch.tensor(c.hidden[0], dtype=torch.float64).view(c.width, c.width))
        logits.weight.copy_(c.scale * torch.tensor(c.rest[0], dtype=torch.float64).view(2, c.width))
    gamma_b = _mean_inf(c, [nn.Sequential(c.f_a, hidden, logits)], lambda y, z: margin(z, y))
    return {"gamma_a": _exact("gamma_a", _gamma_a(c), ENUMERATION, readout=G_A),
            "gamma_b": _exact("gamma_b", gamma_b, ENUMERATION,
                              readout="f_b: V W h_1, linear layers without bias")}


def t1_measurements(c: Candidate) -> dict[str, Measurement]:
    composed = "G_2 o f^(2) = f_b: the network's logits (composed readout)"
    return {f"gamma_{i}": _exact(f"gamma_{i}", _gamma_b(c), ENUMERATION, readout=composed)
            for i in (1, 2)}


MEASURE: dict[str, tuple[Callable[[Candidate], dict[str, Measurement]], dict[str, int] | None]] = {
    "T2": (t2_measurements, {"a": 1, "n": 2}),
    "L1": (l1_measurements, {"n": 2}),
    "LIP": (lip_measurements, None),
    "L2": (l2_measurements, {"n": 3}),
    "T1": (t1_measurements, {"j": 2}),
    "T3": (t3_measurements, {"a": 1, "n": 3}),
}
#: the CNN space's measurements of each result (same layer numbers as MEASURE)
CNN_MEASURE: dict[str, Callable[[CnnCandidate], dict[str, Any]]] = {
    "T2": functools.partial(falsify_cnn.t2_measurements, dependency=_stated),
    "L1": functools.partial(falsify_cnn.l1_measurements, dependency=_stated),
    "LIP": falsify_cnn.lip_measurements,
    "L2": falsify_cnn.l2_measurements,
    "T1": falsify_cnn.t1_measurements,
    "T3": falsify_cnn.t3_measurements,
}
AnyCandidate = Candidate | CnnCandidate


def measure(result: str, candidate: AnyCandidate) -> tuple[dict[str, Any], dict[str, int] | None]:
    """The measurements ``result`` is judged on for ``candidate``, and its layer numbers."""
    function, layers = MEASURE[result]
    if isinstance(candidate, CnnCandidate):
        return CNN_MEASURE[result](candidate), layers
    return function(candidate), layers


@dataclass(frozen=True)
class Outcome:
    """What the search found: a witness (its verdict and measurements) or none."""

    result: str
    budget: int
    candidate: AnyCandidate | None = None
    verdict: Verdict | None = None
    measurements: Mapping[str, Measurement | tuple[Measurement, ...]] = field(default_factory=dict)
    seed: int = 0
    space: str = "all"

    @property
    def found(self) -> bool:
        return self.candidate is not None

    def summary(self) -> str:
        if not self.found:
            return f"{self.result}: none found in {self.budget} examples (space {self.space})"
        bug = " (a sound result: this is a BUG REPORT)" if self.result in SOUND else ""
        return f"{self.result}: certified witness found in the {self.candidate.space} space{bug}"

    def listed(self) -> list[Measurement]:
        """Every measurement, the two ends of a certified-and-attacked pair one by one."""
        return [m for entry in self.measurements.values()
                for m in (entry if isinstance(entry, tuple) else (entry,))]

    def to_dict(self) -> dict[str, Any]:
        return {"result": self.result, "budget": self.budget, "seed": self.seed,
                "space": self.space, "found": self.found,
                "summary": self.summary(),
                "candidate": self.candidate.to_dict() if self.candidate else None,
                "measurements": {k: [m.to_dict() for m in v] if isinstance(v, tuple) else v.to_dict()
                                 for k, v in self.measurements.items()},
                "verdict": self.verdict.to_dict() if self.verdict else None}


def judge_candidate(result: str, candidate: AnyCandidate) -> Verdict:
    return judge(result, *measure(result, candidate))


@functools.lru_cache(maxsize=None)
def _point_slacks(result: str) -> tuple[Callable[..., float], ...]:
    """Each premise's and the conclusion's slack at the point values, compiled once: a
    screen that skips the judge for candidates whose values already rule them out."""
    statement = RESULTS[result]
    numbers = {str(s): v for s, v in (MEASURE[result][1] or {}).items()}
    layers = {sym: numbers[str(sym)] for sym in statement.layer_numbers}
    compiled = []
    for inequality in (*statement.premises, statement.conclusion):
        for _, instance in inequality.instances(layers):
            slack = sympy.expand(instance.slack()).subs({LN2: math.log(2)})
            plain = {sym for sym in slack.atoms(sympy.Symbol)
                     if str(sym) in QUANTITIES and not QUANTITIES[str(sym)].is_family}
            symbols = sorted(plain | slack.atoms(sympy.Indexed), key=str)
            names = [_measurement_name(sym) for sym in symbols]
            compiled.append((names, sympy.lambdify(symbols, slack), instance.relation.strict))
    return tuple(compiled)


def _measurement_name(symbol: sympy.Expr) -> str:
    if isinstance(symbol, sympy.Indexed):
        return f"{symbol.base.label}_{int(symbol.indices[0])}"
    return str(symbol)


def _could_be_witness(result: str, measurements: Mapping[str, Any]) -> bool:
    """Premises hold and the conclusion fails at the point values, by more than 1e-9 (the
    judge then decides, with every kind and its rounding tolerance). Measurements that
    come in pairs (a certified bound and an attack's value: the CNN space) pass: the
    judge reads their sound ends."""
    if not all(isinstance(m, Measurement) for m in measurements.values()):
        return True
    *premises, conclusion = _point_slacks(result)
    def slack(entry) -> float:
        names, function, _ = entry
        return float(function(*[measurements[n].value for n in names]))
    return (all(slack(p) > 1e-9 for p in premises) and slack(conclusion) < -1e-9)


def _rescaled(result: str, candidate: AnyCandidate) -> AnyCandidate | None:
    """The directed step: the first scale of ``f_b`` that makes ``candidate`` a witness
    (none for a CNN candidate whose scale-free premise is not certified)."""
    if isinstance(candidate, CnnCandidate) and falsify_cnn.hopeless(result, candidate):
        return None
    for scale in SCALES:
        trial = replace(candidate, scale=scale)
        measurements, layers = measure(result, trial)
        if (_could_be_witness(result, measurements)
                and judge(result, measurements, layers).status is Status.VIOLATED):
            return trial
    return None


def search_space(space: str) -> st.SearchStrategy:
    """The candidates of ``space``: ``1d``, ``cnn`` or ``all`` (both, drawn alike)."""
    if space not in SPACES:
        raise BadInput(f"--space {space!r}: expected one of {', '.join(SPACES)}")
    return {"1d": candidates(), "cnn": cnn_candidates(),
            "all": st.one_of(candidates(), cnn_candidates())}[space]


#: new CNN candidates judged while shrinking a CNN witness (each costs attacks and bounds)
CNN_SHRINK_BUDGET = 100


@dataclass
class _Condition:
    """The search's predicate: ``candidate`` becomes a witness at some scale. Once a
    CNN witness is found, at most ``shrink_budget`` new CNN candidates are judged (a count,
    so a run stays reproducible); candidates already found are witnesses again."""

    result: str
    shrink_budget: int
    found: set = field(default_factory=set)
    judged_after: int = 0

    def __call__(self, candidate: AnyCandidate) -> bool:
        if candidate in self.found:
            return True
        if isinstance(candidate, CnnCandidate) and any(
                isinstance(c, CnnCandidate) for c in self.found):
            if self.judged_after >= self.shrink_budget:
                return False
            self.judged_after += 1
        if _rescaled(self.result, candidate) is None:
            return False
        self.found.add(candidate)
        return True


def falsify(result: str, *, budget: int = 200, seed: int = 0, space: str = "all",
            shrink_budget: int = CNN_SHRINK_BUDGET) -> Outcome:
    """Search ``budget`` candidates of ``space`` for a certified witness against
    ``result`` (module docstring), drawn by hypothesis from ``random.Random(seed)`` with
    no example database (a run is reproducible from its budget, seed and space); the
    first witness found is shrunk (a CNN witness within ``shrink_budget`` new candidates)."""
    if result not in RESULTS:
        raise BadInput(f"result {result!r} is not one of {', '.join(RESULTS)}")
    if not (isinstance(budget, int) and budget >= 1):
        raise BadInput(f"--budget {budget!r}: expected a positive integer")
    strategy = search_space(space)
    try:
        base = find(strategy, _Condition(result, shrink_budget),
                    settings=settings(max_examples=budget, database=None, deadline=None,
                                      suppress_health_check=list(HealthCheck)),
                    random=random.Random(seed))
    except NoSuchExample:
        return Outcome(result, budget, seed=seed, space=space)
    witness = _rescaled(result, base)
    measurements, layers = measure(result, witness)
    return Outcome(result, budget, witness, judge(result, measurements, layers), measurements,
                   seed, space)


def load_witness(checkpoint: str | Path) -> AnyCandidate:
    """The candidate a witness's ``checkpoint/config.json`` describes."""
    data = json.loads((Path(checkpoint) / "config.json").read_text())["candidate"]
    if data.get("space") == CnnCandidate.space:
        return CnnCandidate.from_dict(data)

    def pair(part: Mapping[str, Any]) -> tuple[tuple[float, ...], tuple[float, ...]]:
        return tuple(part["weight"]), tuple(part["bias"])

    return Candidate(width=data["width"], relu=data["relu_after_f_a"], first=pair(data["f_a"]),
                     readout=pair(data["G_a"]), rest=pair(data["f_b (before scaling)"]),
                     hidden=pair(data["L2 second layer"]), inputs=tuple(data["inputs"]),
                     labels=tuple(data["labels"]), eps=data["eps"], scale=data["f_b scale"])


def write_witness(outcome: Outcome, out: Path) -> list[Path]:
    """``out/checkpoint/`` (the networks' weights as JSON and their layout), ``out/witness.json``
    (every quantity with its kind) and ``out/report.md`` (one page to check by hand)."""
    out = Path(out)
    written = [out / "witness.json", out / "report.md"]
    write_json_atomic(out / "witness.json", outcome.to_dict())
    if outcome.found:
        c = outcome.candidate
        checkpoint = out / "checkpoint"
        checkpoint.mkdir(parents=True, exist_ok=True)
        write_json_atomic(checkpoint / "weights.json", {
            name: {key: value.tolist() for key, value in module.state_dict().items()}
            for name, module in (("f_a", c.f_a), ("G_a", c.g_a), ("f_b", c.f_b))})
        write_json_atomic(checkpoint / "config.json", {"layout": c.layout, "candidate": c.to_dict()})
        written[:0] = [checkpoint / "weights.json", checkpoint / "config.json"]
    write_text_atomic(out / "report.md", report_text(outcome))
    return written


def report_text(outcome: Outcome) -> str:
    """The one-page report: the witness, every value with its kind, and how to check it."""
    lines = [f"# semirobust falsify {outcome.result}", "", outcome.summary() + ".", ""]
    if not outcome.found:
        lines.append(f"Searched {outcome.budget} candidates of the {outcome.space} space "
                     f"(hypothesis, seed {outcome.seed}) plus the directed rescalings "
                     f"{', '.join(f'{s:g}' for s in SCALES)} of f_b.")
        return "\n".join(lines) + "\n"
    c, verdict = outcome.candidate, outcome.verdict
    lines += ["## The witness", "", "```", json.dumps(c.to_dict(), indent=1), "```", "",
              "## Every quantity", "", "| name | value | kind | estimator |", "|---|---|---|---|"]
    lines += [f"| {m.name} | {m.value:.6g} {m.unit} | {m.kind.value} | {m.estimator} |"
              for m in outcome.listed()]
    lines += ["", f"## Verdict: **{verdict.status.value}** (decided by {verdict.decided_text()})",
              "", "| | statement | status | margin | decided by |", "|---|---|---|---|---|"]
    lines += [f"| {p.label} | `{p.statement}` | {p.status.value} | {p.margin:+.6g} | "
              f"{p.decided_text()} |" for p in (*verdict.premises, *verdict.consistency,
                                                  *verdict.conclusion)]
    lines += ["", "## Checking it by hand", "", *c.how_to_check, ""]
    return "\n".join(lines) + "\n"
