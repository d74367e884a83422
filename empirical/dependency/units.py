"""Units of information: every information estimator works in nats, reports convert.

``1 bit = ln 2 nats``. Dependence measures that are not information (HSIC, CKA) carry
the unit ``dimensionless`` and are never converted (THEORY.md caveat C6: units explicit).
"""

from __future__ import annotations

import math

from semirobust.errors import BadInput

NATS_PER_UNIT: dict[str, float] = {"nats": 1.0, "bits": math.log(2.0)}
DIMENSIONLESS = "dimensionless"


def from_nats(value: float, unit: str) -> float:
    """``value`` nats expressed in ``unit`` (``bits``: divided by ``ln 2``)."""
    return value / NATS_PER_UNIT[check_information_unit(unit)]


def check_information_unit(unit: str) -> str:
    """Return ``unit`` if it is a unit of information, else raise :class:`BadInput`."""
    if unit not in NATS_PER_UNIT:
        raise BadInput(f"unit {unit!r}: expected one of {', '.join(NATS_PER_UNIT)}")
    return unit
