"""T2 judged on an Algorithm 1 trial, with the canonical readouts named (caveat C1).

Readouts: ``gamma_a`` reads the robust first part ``f*_a`` with its own trained rest
``f*_b``; ``gamma_b`` reads the finetuned network ``(f*_a, f_b')`` with its logits. A2's
left side ``margin_gap_j = E[inf_delta (m_{j-1} - m_j)]``: at ``j = a+1`` layer ``a`` is
read by ``f*_b`` and layer ``a+1`` by the rest of ``f_b'``, two different networks, so
the gap is measured (``margin_gap_first`` of each trial: certified by interval bounds of
both, attacked by PGD on their difference, :func:`semirobust.empirical.measure.readouts.margin_gap`);
for ``j > a+1`` both readouts are ``f_b'``'s trained rest and the gap is exactly 0 (the
readout of layer ``j-1`` is layer ``j`` followed by the readout of layer ``j``, so both
margins are the same number for every input): a certified value, not a measurement. ``U_j`` is not measured by the paper; it is stated as 1, the smallest value
its reading in ``proofs/L1.md`` allows (an upper bound on
``E[p(g,h|y) / (p(g|y) p(h|y))] >= 1``), i.e. the value most favourable to A2.
"""

from __future__ import annotations

from typing import Any, Mapping

from semirobust.theory import judge
from semirobust.theory.measurement import Kind, Measurement

ROBUST_READOUT = "f*_b (the robust model's own trained rest), logits"
FINETUNED_READOUT = "the finetuned network's logits"

CANONICAL_GAP = ("identity: with canonical readouts the readout of layer j-1 is f^(j) "
                 "followed by layer j's readout, so m_{j-1} = m_j for every input")
STATED_U = ("stated, not measured: U_j = 1 is the smallest value allowed by its reading as "
            "an upper bound on E[p(g,h|y)/(p(g|y)p(h|y))] (proofs/L1.md), most favourable to A2")


def renamed(measurement: Measurement, name: str, unit: str | None = None, **settings: Any) -> Measurement:
    """A copy of ``measurement`` under the judge's ``name`` (and ``unit``), with extra settings."""
    data = measurement.to_dict()
    data["name"], data["settings"] = name, {**data["settings"], **settings}
    if unit is not None:
        data["unit"] = unit
    return Measurement.from_dict(data)


def canonical_a2_measurements(j: int, readout: str) -> dict[str, Measurement]:
    """A2's two sides for layer ``j`` under canonical readouts: ``margin_gap_j = 0`` (an
    identity) and the stated ``U_j = 1``."""
    return {
        f"margin_gap_{j}": Measurement(f"margin_gap_{j}", 0.0, (0.0, 0.0), Kind.CERTIFIED,
                                       CANONICAL_GAP, "logits", {"readout": readout}),
        f"U_{j}": Measurement(f"U_{j}", 1.0, (1.0, 1.0), Kind.CERTIFIED, STATED_U, "logits",
                              {"readout": readout}),
    }


def t2_measurements(results: Mapping[str, Any], trial: Mapping[str, Any]) -> dict[str, Measurement]:
    """The named measurements T2 reads, for one trial of an Algorithm 1 run."""
    measurements = {
        "gamma_a": renamed(Measurement.from_dict(results["gamma_a"]), "gamma_a",
                           readout=ROBUST_READOUT),
        "gamma_b": renamed(Measurement.from_dict(trial["gamma_b"]), "gamma_b",
                           readout=FINETUNED_READOUT),
    }
    first = results["split"]["a"] + 1
    for rho in trial["rho"]:
        j = rho["pair"][1]
        measurements[f"rho_{j}"] = Measurement.from_dict(rho)
        measurements.update(canonical_a2_measurements(
            j, "canonical: the trained rest of the network after each layer"))
    if trial.get("margin_gap_first"):
        measurements[f"margin_gap_{first}"] = [Measurement.from_dict(m)
                                              for m in trial["margin_gap_first"]]
    return measurements


def t2_verdict(results: Mapping[str, Any], trial: Mapping[str, Any]) -> dict[str, Any]:
    """``judge("T2", ...)`` on one trial, JSON-ready, with the Markdown description."""
    verdict = judge("T2", t2_measurements(results, trial))
    return {**verdict.to_dict(), "markdown": verdict.describe()}
