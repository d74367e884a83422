"""Assertions that read as sentences, for a lab's own test suite.

Each helper measures one property of a model (or of a result) and raises
``AssertionError`` with a sentence naming the model, the quantity, the values and the
tolerance when the property fails; it returns the measured numbers when it holds, so a
test can log or check them further.

* :func:`assert_certified_below_attacked`: the gamma sandwich's sound side (docs/bounds.md):
  per sample, a certified lower bound of ``inf_delta m(F(x + delta), y)`` never exceeds
  the margin an attack reached.
* :func:`assert_attack_stays_in_threat_model`: every adversarial point lies in the
  ``eps``-ball around its input and in ``[0,1]`` (THEORY.md section 1).
* :func:`assert_lipschitz_upper_at_least_local_lower`: the product of layer norms is an
  upper bound of the Lipschitz constant, so it is at least any local Jacobian norm.
* :func:`assert_robust_accuracy_at_least`: accuracy under an attack has not fallen below
  the value a lab relies on.
* :func:`assert_verdict_not_violated`: the theory judge does not find a result violated.
* :func:`assert_estimate_within`: an estimator's value is within tolerance of ground truth.
"""

from __future__ import annotations

import builtins
from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from semirobust.empirical.attacks import Attack
from semirobust.empirical.attacks.threat import ThreatModel
from semirobust.theory import Measurement, Status, Verdict, judge


def _named(model: nn.Module, model_name: str | None) -> str:
    return model_name or type(model).__name__


def assert_certified_below_attacked(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    threat: ThreatModel,
    *,
    method: str = "ibp",
    attack: Attack | None = None,
    tolerance: float = 1e-9,
    model_name: str | None = None,
):
    """``certified_i <= attacked_i + tolerance`` for every sample ``i`` (float64 margins).

    ``certified`` is ``certified_margin_lower`` by ``method`` (``ibp``, ``crown-ibp``,
    ``crown``, ``alpha-crown``); ``attacked`` is the margin at ``attack``'s point (default:
    margin PGD once per target class). Returns the :class:`GammaSandwich`.
    """
    from semirobust.empirical.measure.sandwich import gamma_sandwich

    sandwich = gamma_sandwich(model, x, y, threat, attack, methods=(method,))
    broken = torch.nonzero(sandwich.violations(tolerance)).flatten().tolist()
    if broken:
        i = broken[0]
        raise AssertionError(
            f"on {_named(model, model_name)} the certified margin ({method}) exceeds the attacked "
            f"margin for {len(broken)} of {len(y)} inputs under {threat.norm} eps={threat.eps:g}: "
            f"input {i} has certified {float(sandwich.certified[method][i]):.6g} > attacked "
            f"{float(sandwich.attacked[i]):.6g} (tolerance {tolerance:g}); a bound rule is unsound "
            f"or the model is random at eval time"
        )
    return sandwich


def assert_attack_stays_in_threat_model(
    attack: Attack,
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    tolerance: float = 1e-6,
    model_name: str | None = None,
) -> torch.Tensor:
    """Every ``x_adv = attack(model, x, y)`` satisfies ``||x_adv - x|| <= eps + tolerance``
    and ``-tolerance <= x_adv <= 1 + tolerance``. Returns ``x_adv``."""
    x_adv = attack(model, x, y)
    inside = attack.threat.contains(x_adv, x, tol=tolerance)
    if not bool(inside.all()):
        i = int(torch.nonzero(~inside)[0])
        p = float("inf") if attack.threat.norm == "linf" else 2.0
        distance = float((x_adv[i] - x[i]).flatten().norm(p=p))
        raise AssertionError(
            f"{attack.name} on {_named(model, model_name)} left the threat model for "
            f"{int((~inside).sum())} of {len(y)} inputs: input {i} moved {distance:.6g} in "
            f"{attack.threat.norm} (eps {attack.threat.eps:g}, tolerance {tolerance:g}), values in "
            f"[{float(x_adv[i].min()):.6g}, {float(x_adv[i].max()):.6g}] (allowed [0, 1])"
        )
    return x_adv


def assert_lipschitz_upper_at_least_local_lower(
    model: nn.Module,
    x: torch.Tensor,
    *,
    rtol: float = 1e-6,
    model_name: str | None = None,
) -> tuple[float, float]:
    """``prod_i ||W_i||_2 >= max ||J_F(p)^T u||_2`` at the points ``p`` of ``x`` and around
    them (THEORY.md 5 needs the upper bound). Returns ``(upper, local_lower)``."""
    from semirobust.empirical.bounds.lipschitz import lipschitz_upper
    from semirobust.empirical.measure.local_lipschitz import local_lipschitz_lower

    upper = lipschitz_upper(model, tuple(x.shape[1:])).product
    lower = local_lipschitz_lower(model, x).value
    if upper < lower * (1 - rtol):
        raise AssertionError(
            f"on {_named(model, model_name)} the Lipschitz upper bound {upper:.6g} is below the "
            f"local lower bound {lower:.6g} found at {len(x)} inputs (relative tolerance {rtol:g})"
        )
    return upper, lower


def assert_robust_accuracy_at_least(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    attack: Attack,
    minimum: float,
    *,
    model_name: str | None = None,
) -> Measurement:
    """Accuracy of ``model`` on ``attack``'s points is at least ``minimum`` (a fraction).

    The measured value is an upper estimate of the true robust accuracy (kind ``attack``),
    so a pass says the model is not *known* to be less robust. Returns the Measurement.
    """
    from semirobust.empirical.attacks.evaluation import evaluate_attack

    accuracy = evaluate_attack(model, x, y, attack).robust_accuracy()
    if accuracy.value < minimum:
        low, high = accuracy.interval
        raise AssertionError(
            f"{_named(model, model_name)} has robust accuracy {accuracy.value:.4g} "
            f"(95% interval [{low:.4g}, {high:.4g}], {len(y)} inputs) under {attack.name} "
            f"{attack.threat.norm} eps={attack.threat.eps:g}, below the required {minimum:g}"
        )
    return accuracy


def assert_verdict_not_violated(
    result: str,
    measurements: Mapping[str, Any],
    *,
    layers: Mapping[str, int] | None = None,
    model_name: str = "the model",
) -> Verdict:
    """``judge(result, measurements)`` is not ``violated`` (certainly refuted with every
    premise certainly holding); every other status passes. Returns the :class:`Verdict`."""
    verdict = judge(result, measurements, layers)
    if verdict.status is Status.VIOLATED:
        failing = [c for c in verdict.conclusion if c.status is Status.VIOLATED]
        worst = failing[0] if failing else verdict.conclusion[0]
        raise AssertionError(
            f"{result} is violated on {model_name}: {worst.statement} measured "
            f"{worst.measured:.6g} against {worst.threshold:.6g} (slack {worst.margin:.6g})\n"
            f"{verdict.describe()}"
        )
    return verdict


def assert_estimate_within(
    estimate: Measurement | float,
    truth: float,
    *,
    rel: float = 0.0,
    abs: float = 0.0,
    quantity: str | None = None,
) -> float:
    """``|estimate - truth| <= max(rel * |truth|, abs)``. Returns the error."""
    if rel < 0 or abs < 0 or (rel == 0 and abs == 0):
        raise ValueError(
            f"assert_estimate_within(rel={rel}, abs={abs}): give rel and/or abs >= 0, not both 0"
        )
    value = estimate.value if isinstance(estimate, Measurement) else float(estimate)
    name = quantity or (estimate.name if isinstance(estimate, Measurement) else "the estimate")
    by = f" ({estimate.estimator}, {estimate.unit})" if isinstance(estimate, Measurement) else ""
    error = value - truth
    allowed = max(rel * builtins.abs(truth), abs)
    if not builtins.abs(error) <= allowed:
        raise AssertionError(
            f"{name}{by} is {value:.6g}, {error:+.6g} from the ground truth {truth:.6g}; "
            f"allowed {allowed:.6g} (rel {rel:g}, abs {abs:g})"
        )
    return error

