"""One sample's measurements as points, for judging a sound result on each sample.

THEORY.md 5 and 7: per sample ``x``, the attack's margin at its point is an upper bound of
``inf_delta m(F(x+delta), y)``, a certified bound a lower bound, the clean margin
``m(F(x), y)`` is exact, the certified ``Delta_a(x)`` an upper bound and ``L_b`` a
certified constant: the Lipschitz transfer judged on them
(:func:`semirobust.theory.scope.judge_per_sample`) is a certified statement about that
sample, and a certified failure on any sample is a bug in the toolkit.
"""

from __future__ import annotations

import math

from semirobust.empirical.measure.sandwich import GammaSandwich
from semirobust.empirical.measure.transfer import TransferBound
from semirobust.theory.measurement import Kind, Measurement
from semirobust.theory.quantities import CLEAN_MARGIN, DELTA_A, GAMMA_WHOLE, LIPSCHITZ_B, LOGITS


def _point(name: str, value: float, kind: Kind, estimator: str, unit: str,
           settings: dict) -> Measurement:
    return Measurement(name, value, (value, value), kind, estimator, unit, settings)


def lipschitz_transfer_rows(transfer: TransferBound, sandwich: GammaSandwich,
                            readout: str) -> list[dict[str, list[Measurement]]]:
    """Per sample, the measurements LIP reads (``gamma_whole`` as the certified lower bound
    and the attack's value, ``clean_margin`` exact, ``Delta_a`` certified, ``L_b``).
    The sandwich and the transfer bound must be over the same inputs in the same order."""
    if transfer.clean_margin.numel() != sandwich.attacked.numel():
        raise ValueError(f"{transfer.clean_margin.numel()} transfer samples against "
                         f"{sandwich.attacked.numel()} sandwich samples")
    lipschitz = transfer.lipschitz_b.measurement(LIPSCHITZ_B.name, unit=LIPSCHITZ_B.unit)
    settings = {"readout": readout, "scope": "one test sample"}
    certified = sandwich.best_certified.double().cpu().tolist()
    attacked = sandwich.attacked.double().cpu().tolist()
    clean = transfer.clean_margin.double().cpu().tolist()
    delta = transfer.sensitivity.certified.double().cpu().tolist()
    rows = []
    for index, (low, high, margin, moved) in enumerate(zip(certified, attacked, clean, delta)):
        gamma = [_point(GAMMA_WHOLE.name, high, Kind.ATTACK, "attack value at this sample",
                        LOGITS, settings)]
        if math.isfinite(low) and low <= high:
            gamma.insert(0, _point(GAMMA_WHOLE.name, low, Kind.CERTIFIED,
                                   "best certified lower bound at this sample", LOGITS, settings))
        rows.append({
            GAMMA_WHOLE.name: gamma,
            CLEAN_MARGIN.name: [_point(CLEAN_MARGIN.name, margin, Kind.EXACT,
                                       "m(F(x), y) in float64", LOGITS, settings)],
            DELTA_A.name: [_point(DELTA_A.name, moved, Kind.CERTIFIED,
                                  "certified Delta_a(x) (box of f_a)", DELTA_A.unit,
                                  {"sample": index})],
            LIPSCHITZ_B.name: [lipschitz],
        })
    return rows
