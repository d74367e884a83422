"""alpha-CROWN: never looser than CROWN, never above an attacked or sampled margin, its
first step is CROWN, and its slopes are what makes it tighter (a slope outside [0, 1]
gives an unsound bound, which the sampled-margin check catches)."""

from __future__ import annotations

import pytest
import torch
from bounds_networks import (
    RESIDUAL_KINDS,
    inputs,
    random_cnn,
    random_mlp,
    random_residual,
    random_resnet,
    sample_threat_set,
)
from hypothesis import given
from hypothesis import strategies as st

from semirobust.empirical.attacks.objectives import multiclass_margin
from semirobust.empirical.attacks.threat import ThreatModel
from semirobust.empirical.bounds import certified_margin_lower, input_box
from semirobust.empirical.bounds.alpha_crown import AlphaSettings, alpha_crown_bound
from semirobust.empirical.bounds.layer_rules import float64_eval_copy, primitive_layers
from semirobust.empirical.bounds.linear import SlopedBox, backward, bound_layers, concretize
from semirobust.empirical.bounds.margin import margin_specification
from semirobust.empirical.measure.sandwich import gamma_sandwich
from semirobust.errors import BadInput

NETWORKS = {
    "mlp": (lambda seed: random_mlp(seed, depth=3, width=10), (6,)),
    "cnn-max": (lambda seed: random_cnn(seed, pool="max"), (1, 6, 6)),
    "cnn-overlapping": (lambda seed: random_cnn(seed, pool="overlapping"), (1, 6, 6)),
    "residual": (random_residual, (1, 6, 6)),
    **{kind: (lambda seed, k=kind: random_resnet(seed, k)[0], (1, 6, 6) if kind != "linear" else (6,))
       for kind in RESIDUAL_KINDS},
}


def _sampled_minimum(model, x, y, threat, seed):
    model64 = float64_eval_copy(model)
    with torch.no_grad():
        return torch.stack(
            [multiclass_margin(model64(p), y) for p in sample_threat_set(x, threat, 64, seed)]
        ).min(dim=0).values


@given(
    seed=st.integers(0, 10_000),
    eps=st.sampled_from([0.02, 0.05, 0.1]),
    name=st.sampled_from(sorted(NETWORKS)),
)
def test_alpha_crown_is_between_crown_and_the_attacked_margin(seed, eps, name):
    build, shape = NETWORKS[name]
    model, x, threat = build(seed), inputs(shape, 6, seed), ThreatModel("linf", eps)
    y = torch.arange(6) % 3
    sandwich = gamma_sandwich(model, x, y, threat, methods=("crown", "alpha-crown"))
    alpha, crown = sandwich.certified["alpha-crown"], sandwich.certified["crown"]
    assert (alpha >= crown).all()
    assert (alpha <= sandwich.attacked + 1e-9).all()
    assert (alpha <= _sampled_minimum(model, x, y, threat, seed) + 1e-10).all()


@pytest.mark.parametrize("name", sorted(NETWORKS))
def test_alpha_crown_gains_on_average_over_crown(name):
    """Measured on seed 0 at eps 0.1 (8 inputs): the mean gain is at least 1e-3 logits on
    every network family (measured 2e-3 to 2e-2)."""
    build, shape = NETWORKS[name]
    model, x, threat = build(0), inputs(shape, 8, 0), ThreatModel("linf", 0.1)
    y = torch.arange(8) % 3
    crown = certified_margin_lower(model, x, y, threat, "crown")
    alpha = certified_margin_lower(model, x, y, threat, "alpha-crown")
    assert (alpha - crown).mean() >= 1e-3, float((alpha - crown).mean())


def _bound_pieces(name: str, eps: float = 0.1):
    build, shape = NETWORKS[name]
    model64 = float64_eval_copy(build(1)).requires_grad_(False)
    layers = primitive_layers(model64)
    x, y = inputs(shape, 5, 1).double(), torch.arange(5) % 3
    threat = ThreatModel("linf", eps)
    box = input_box(x, threat)
    spec = margin_specification(y, 3)
    return model64, layers, x, y, threat, box, spec


def test_zero_steps_is_crown_and_more_steps_never_loosen():
    _, layers, _, _, _, box, spec = _bound_pieces("residual")
    with torch.no_grad():
        crown = concretize(*backward(layers, bound_layers(layers, box, "crown").bounds, spec), box)
    results = [alpha_crown_bound(layers, box, spec, AlphaSettings(steps=s)) for s in (0, 5, 20)]
    torch.testing.assert_close(results[0].lower, crown, rtol=0, atol=1e-12)
    torch.testing.assert_close(results[0].crown, crown, rtol=0, atol=1e-12)
    assert (results[1].lower >= results[0].lower).all()
    assert (results[2].lower >= results[1].lower).all()
    assert results[2].steps == 20 and results[2].seconds > 0


def _relu_relaxation_holds(slope: torch.Tensor, seed: int = 0) -> bool:
    """Does ``A . relu(h) >= A_in . h + c`` (the ReLU rule with lower slopes ``slope``)
    hold at 256 sampled points and corners of a random box, for random ``A``?"""
    generator = torch.Generator().manual_seed(seed)
    lower = -torch.rand(2, 12, generator=generator, dtype=torch.float64)
    upper = torch.rand(2, 12, generator=generator, dtype=torch.float64)  # every neuron unstable
    coefficients = torch.randn(2, 3, 12, generator=generator, dtype=torch.float64)
    relu = torch.nn.ReLU()
    pulled, constant = backward([relu], [SlopedBox(lower, upper, slope)], coefficients)
    noise = torch.rand((256, 2, 12), generator=generator, dtype=torch.float64)
    noise[:64] = noise[:64].round()
    for h in lower + (upper - lower) * noise:
        value = (coefficients * relu(h).unsqueeze(1)).sum(dim=2)
        if not (value >= (pulled * h.unsqueeze(1)).sum(dim=2) + constant - 1e-12).all():
            return False
    return True


def test_every_slope_in_the_unit_interval_is_sound_and_one_outside_is_not():
    """Soundness by construction: random slopes in [0, 1] (and both ends) give a valid
    relaxation at every sampled point; slopes 1.5 or -0.5 (what a missing projection
    would let the optimiser reach) do not."""
    generator = torch.Generator().manual_seed(1)
    for slope in (torch.rand(2, 3, 12, generator=generator, dtype=torch.float64), 0.0, 1.0):
        assert _relu_relaxation_holds(torch.as_tensor(slope, dtype=torch.float64).expand(2, 3, 12))
    for slope in (1.5, -0.5):
        assert not _relu_relaxation_holds(torch.full((2, 3, 12), slope, dtype=torch.float64))


def test_settings_are_validated():
    with pytest.raises(BadInput, match="steps"):
        AlphaSettings(steps=-1)
    with pytest.raises(BadInput, match="lr"):
        AlphaSettings(lr=0.0)


def test_the_sandwich_records_alpha_crown_steps_and_time():
    build, shape = NETWORKS["mlp"]
    model, x, y = build(0), inputs(shape, 4, 0), torch.arange(4) % 3
    sandwich = gamma_sandwich(model, x, y, ThreatModel("linf", 0.05), methods=("alpha-crown",))
    bounds = sandwich.settings["bounds"]["alpha-crown"]
    assert bounds["alpha"]["steps"] == AlphaSettings().steps
    assert bounds["seconds"] > 0
