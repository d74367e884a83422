"""Canonical readouts (THEORY.md caveat C1): what the judge reads when every layer's
readout is the trained rest of the network after it.

With canonical readouts A2's left side ``margin_gap_j = E[inf_delta (m_{j-1} - m_j)]`` is
exactly 0 (the readout of layer ``j-1`` is layer ``j`` followed by the readout of layer
``j``, so both margins are the same number for every input): a certified value, not a
measurement. That holds only where both readouts belong to one network: in Algorithm 1
the gap at ``j = a+1`` compares ``f*_b`` with the finetuned ``f_b'`` and is measured
(:func:`semirobust.empirical.measure.readouts.margin_gap`). ``U_j`` is not measured by the paper; it is stated as 1, the smallest value
its reading in ``proofs/L1.md`` allows (an upper bound on
``E[p(g,h|y) / (p(g|y) p(h|y))] >= 1``), i.e. the value most favourable to A2.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from semirobust.theory.measurement import Kind, Measurement

CANONICAL_READOUT = "canonical: the trained rest of the network after the layer (logits)"
CANONICAL_GAP = ("identity: with canonical readouts the readout of layer j-1 is f^(j) "
                 "followed by layer j's readout, so m_{j-1} = m_j for every input")
STATED_U = ("stated, not measured: U_j = 1 is the smallest value allowed by its reading as "
            "an upper bound on E[p(g,h|y)/(p(g|y)p(h|y))] (proofs/L1.md), most favourable to A2")


def renamed(measurement: Measurement, name: str, unit: str | None = None, **settings: Any) -> Measurement:
    """A copy of ``measurement`` under the judge's ``name`` (and ``unit``), with extra settings."""
    return replace(measurement, name=name, unit=measurement.unit if unit is None else unit,
                   settings={**measurement.settings, **settings})


def canonical_a2_measurements(j: int, readout: str) -> dict[str, Measurement]:
    """A2's two sides for layer ``j`` under canonical readouts: ``margin_gap_j = 0`` (an
    identity) and the stated ``U_j = 1``."""
    return {
        f"margin_gap_{j}": Measurement(f"margin_gap_{j}", 0.0, (0.0, 0.0), Kind.CERTIFIED,
                                       CANONICAL_GAP, "logits", {"readout": readout}),
        f"U_{j}": Measurement(f"U_{j}", 1.0, (1.0, 1.0), Kind.CERTIFIED, STATED_U, "logits",
                              {"readout": readout}),
    }
