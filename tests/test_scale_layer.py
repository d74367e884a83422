"""The ``Scale`` layer (``h -> c h``, c > 0) of a Lipschitz-normalised readout and its
bound rules: interval boxes and linear-relaxation margins contain sampled values, the
Lipschitz factor is ``c``, and a non-positive factor is refused."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from semirobust.empirical.attacks.threat import ThreatModel
from semirobust.empirical.bounds import interval_bounds
from semirobust.empirical.bounds.lipschitz import lipschitz_upper
from semirobust.empirical.bounds.margin import certified_margin_lower
from semirobust.empirical.model import Scale
from semirobust.errors import BadInput

THREAT = ThreatModel("linf", 0.1)


def network(factor: float) -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(3, 5), nn.ReLU(), nn.Linear(5, 3), Scale(factor)).double().eval()


def samples(x: torch.Tensor, count: int = 200) -> torch.Tensor:
    generator = torch.Generator().manual_seed(1)
    delta = (torch.rand(count, *x.shape, generator=generator, dtype=torch.float64) * 2 - 1) * THREAT.eps
    return (x.unsqueeze(0) + delta).clamp(0, 1)


def test_bounds_through_a_scale_contain_every_sampled_output_and_margin():
    model = network(0.3)
    x = torch.rand(4, 3, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    y = torch.tensor([0, 1, 2, 0])
    lower, upper = interval_bounds(model, x, THREAT)
    points = samples(x)
    with torch.no_grad():
        outputs = model(points.view(-1, 3)).view(points.shape[0], 4, 3)
    assert (outputs >= lower - 1e-12).all() and (outputs <= upper + 1e-12).all()
    for method in ("ibp", "crown-ibp", "crown"):
        bound = certified_margin_lower(model, x, y, THREAT, method)
        true = outputs.gather(2, y.view(1, -1, 1).expand(points.shape[0], -1, 1)).squeeze(2)
        others = outputs.scatter(2, y.view(1, -1, 1).expand(points.shape[0], -1, 1), float("-inf")).max(2).values
        assert (bound.unsqueeze(0) <= true - others + 1e-12).all(), method


def test_a_scale_scales_the_certified_margin_and_the_lipschitz_bound_by_its_factor():
    plain, scaled = network(1.0)[:3], network(0.25)
    x = torch.rand(4, 3, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    y = torch.tensor([0, 1, 2, 0])
    for method in ("ibp", "crown-ibp"):
        assert torch.equal(certified_margin_lower(scaled, x, y, THREAT, method),
                           certified_margin_lower(plain, x, y, THREAT, method) * 0.25)
    assert lipschitz_upper(scaled, (3,)).product == lipschitz_upper(plain, (3,)).product * 0.25


@pytest.mark.parametrize("factor", [0.0, -1.0, float("inf"), float("nan")])
def test_a_scale_needs_a_finite_positive_factor(factor):
    with pytest.raises(BadInput, match="Scale factor"):
        Scale(factor)
