"""rho per consecutive pair of weight layers ``(j-1, j)`` as the studies report it
(THEORY.md section 2): the estimate and the same estimator's reading at independence."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from semirobust.empirical.dependency.rho import PairDependency
from semirobust.theory.measurement import Measurement


@dataclass(frozen=True)
class LayerPairRho:
    """``rho_j`` for the weight layers ``pair = (j-1, j)`` and, when the study asked for
    it, the estimator on class-wise shuffled pairs (its bias where the true rho is 0)."""

    pair: tuple[int, int]
    rho: Measurement
    independent: Measurement | None

    @property
    def j(self) -> int:
        return self.pair[1]

    def to_dict(self) -> dict[str, Any]:
        return {"pair": list(self.pair), **self.rho.to_dict(),
                "independent": None if self.independent is None else self.independent.to_dict()}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> LayerPairRho:
        independent = data.get("independent")
        return cls((int(data["pair"][0]), int(data["pair"][1])), Measurement.from_dict(data),
                   None if independent is None else Measurement.from_dict(independent))


def layer_pair_rhos(pairs: Iterable[PairDependency], first_j: int) -> tuple[LayerPairRho, ...]:
    """The estimator's pairs, numbered ``(first_j - 1, first_j), (first_j, first_j + 1), ...``."""
    return tuple(LayerPairRho((j - 1, j), p.rho, p.independent) for j, p in enumerate(pairs, first_j))
