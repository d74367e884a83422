"""Optional dimension reduction of a layer's activations before estimation.

Applied to each layer over all samples (every class together), so all classes share one
projection; the choice is recorded in every result's settings.

* ``none``: the flattened activations as they are.
* ``pca``: the first ``components`` principal components of the per-feature
  standardised activations (correlation PCA).
* ``random``: a Gaussian random projection ``x W``, ``W_ij ~ N(0, 1/components)``
  (Johnson-Lindenstrauss), from a seeded generator.

A layer with ``d <= components`` is left as it is (recorded as such).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from semirobust.empirical.dependency.preprocess import standardise
from semirobust.errors import BadInput


@dataclass(frozen=True)
class Reduction:
    """How layers are reduced: ``method`` in :data:`REDUCTIONS`, target ``components``."""

    method: str = "none"
    components: int | None = None

    def __post_init__(self) -> None:
        if self.method not in REDUCTIONS:
            raise BadInput(f"reduction {self.method!r}: expected one of {', '.join(REDUCTIONS)}")
        if self.method == "none":
            if self.components is not None:
                raise BadInput(f"components={self.components}: only meaningful with reduction 'pca' or 'random'")
        elif not isinstance(self.components, int) or self.components < 1:
            raise BadInput(
                f"components={self.components!r}: reduction {self.method!r} needs an integer >= 1"
            )

    def apply(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """``x`` (n, d) reduced to (n, min(d, components)), float64."""
        x = x.to(torch.float64)
        if self.method == "none" or x.shape[1] <= self.components:
            return x
        return REDUCTIONS[self.method](x, self.components, generator)

    def to_dict(self) -> dict:
        return {"method": self.method, "components": self.components}


def principal_components(x: torch.Tensor, components: int, generator: torch.Generator) -> torch.Tensor:
    """Scores of the first ``components`` principal axes of standardised ``x``."""
    z = standardise(x)
    if z.shape[1] <= components:
        return z
    _, _, vh = torch.linalg.svd(z, full_matrices=False)
    return z @ vh[:components].T


def random_projection(x: torch.Tensor, components: int, generator: torch.Generator) -> torch.Tensor:
    """``x W`` with ``W`` (d, components) of i.i.d. ``N(0, 1/components)`` entries."""
    w = torch.randn((x.shape[1], components), generator=generator, dtype=torch.float64)
    return x @ (w / components**0.5).to(x.device)


REDUCTIONS: dict[str, Callable[[torch.Tensor, int, torch.Generator], torch.Tensor] | None] = {
    "none": None,
    "pca": principal_components,
    "random": random_projection,
}
