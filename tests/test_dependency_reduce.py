"""Dimension reduction before estimation: recorded, seeded, and faithful where it should be."""

import pytest
import torch

from semirobust.empirical.dependency import Reduction, class_conditional_rho
from semirobust.empirical.dependency.ground_truth import gaussian_pair, gaussian_pair_mi
from semirobust.errors import BadInput


def test_pca_keeps_the_informative_directions():
    """x: 2 informative coordinates, y: the same 2 plus 30 near-constant noise coordinates
    of small variance; correlation PCA with 2 components should not lose the MI."""
    gen = torch.Generator().manual_seed(0)
    x, y = gaussian_pair(1000, 2, 0.9, gen)
    mixing = torch.linalg.qr(torch.randn(32, 32, generator=gen, dtype=torch.float64))[0]
    y_wide = torch.cat([y * 10, 0.01 * torch.randn(1000, 30, generator=gen, dtype=torch.float64)], dim=1) @ mixing
    labels = torch.zeros(1000, dtype=torch.int64)
    rho = class_conditional_rho(x, y_wide, labels, "gaussian", unit="nats", replicates=0, reduction="pca", components=2)
    assert rho.settings["reduction"] == {"method": "pca", "components": 2}
    assert rho.settings["dims"] == [2, 2]
    assert rho.value == pytest.approx(gaussian_pair_mi(2, 0.9), rel=0.1)


def test_random_projection_is_seeded_and_shrinks():
    x = torch.randn(50, 40, dtype=torch.float64)
    reduction = Reduction("random", 5)
    a = reduction.apply(x, torch.Generator().manual_seed(1))
    b = reduction.apply(x, torch.Generator().manual_seed(1))
    assert a.shape == (50, 5) and torch.equal(a, b)


def test_small_layers_are_left_alone():
    x = torch.randn(20, 3, dtype=torch.float64)
    assert torch.equal(Reduction("pca", 8).apply(x, torch.Generator()), x)


@pytest.mark.parametrize("method, components", [("pca", None), ("random", 0), ("svd", 3), ("none", 4)])
def test_bad_reductions_are_refused(method, components):
    with pytest.raises(BadInput):
        Reduction(method, components)
