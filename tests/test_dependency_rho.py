"""class_conditional_rho: ground truth, units, intervals, baseline and bad input."""

import math
import warnings

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from semirobust.empirical.dependency import (
    HighDimensionWarning,
    class_conditional_rho,
    dependency_per_layer_pair,
    permutation_baseline,
)
from semirobust.empirical.dependency.ground_truth import (
    class_mixture,
    class_mixture_rho,
    gaussian_pair,
)
from semirobust.empirical.dependency.preprocess import standardise
from semirobust.errors import BadInput
from semirobust.theory.measurement import Kind


def _generator(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def test_mixture_rho_matches_the_class_weighted_truth():
    x, y, labels = class_mixture(400, 1, [0.0, 0.6, 0.9], _generator())
    truth = class_mixture_rho(1, [0.0, 0.6, 0.9])
    rho = class_conditional_rho(x, y, labels, "ksg", unit="nats", replicates=20)
    assert rho.kind is Kind.ESTIMATE and rho.estimator == "ksg" and rho.unit == "nats"
    assert rho.value == pytest.approx(truth, abs=0.06)
    low, high = rho.interval
    assert low < truth < high
    assert rho.settings["n_per_class"] == {"0": 400, "1": 400, "2": 400}
    assert rho.settings["standardised"].startswith("per feature")


def test_bits_are_nats_over_ln2():
    x, y = gaussian_pair(300, 1, 0.7, _generator())
    labels = torch.zeros(300, dtype=torch.int64)
    nats = class_conditional_rho(x, y, labels, "gaussian", unit="nats", replicates=0)
    bits = class_conditional_rho(x, y, labels, "gaussian", replicates=0)
    assert bits.unit == "bits"
    assert bits.value == pytest.approx(nats.value / math.log(2), rel=1e-12)


def test_class_weights_are_empirical_frequencies():
    gen = _generator(1)
    x0, y0 = gaussian_pair(600, 1, 0.9, gen)
    x1, y1 = gaussian_pair(200, 1, 0.3, gen)
    x, y = torch.cat([x0, x1]), torch.cat([y0, y1])
    labels = torch.cat([torch.zeros(600, dtype=torch.int64), torch.ones(200, dtype=torch.int64)])
    rho = class_conditional_rho(x, y, labels, "gaussian", unit="nats", replicates=0)
    per_class = rho.settings["per_class"]
    assert rho.value == pytest.approx(0.75 * per_class["0"] + 0.25 * per_class["1"], rel=1e-12)


def test_same_seed_same_numbers():
    x, y, labels = class_mixture(100, 2, [0.5, 0.8], _generator(2))
    a = class_conditional_rho(x, y, labels, seed=3, replicates=10)
    b = class_conditional_rho(x, y, labels, seed=3, replicates=10)
    assert a == b


def test_permutation_baseline_is_near_zero_where_rho_is_not():
    x, y, labels = class_mixture(300, 1, [0.9, 0.9], _generator(3))
    rho = class_conditional_rho(x, y, labels, replicates=0, unit="nats")
    independent = permutation_baseline(x, y, labels, permutations=4, unit="nats")
    assert rho.value > 0.6
    assert abs(independent.value) < 0.05
    assert independent.name == "rho_j_independent"


def test_layer_pairs_agree_with_single_pairs():
    gen = _generator(4)
    layers = [torch.randn(240, 3, generator=gen, dtype=torch.float64)]
    for _ in range(3):
        layers.append(torch.tanh(layers[-1] @ torch.randn(3, 3, generator=gen, dtype=torch.float64)) + 0.3 * torch.randn(240, 3, generator=gen, dtype=torch.float64))
    labels = torch.arange(240) % 2
    pairs = dependency_per_layer_pair(layers, labels, "ksg", replicates=0, permutations=2)
    assert [p.rho.name for p in pairs] == ["rho_1", "rho_2", "rho_3"]
    for j, pair in enumerate(pairs):
        alone = class_conditional_rho(layers[j], layers[j + 1], labels, "ksg", replicates=0)
        # the jitter of a layer is drawn per (class, layer index), so the value of pair j
        # alone (layers at index 0, 1) differs only by jitter of order 1e-10
        assert pair.rho.value == pytest.approx(alone.value, abs=1e-3)
        assert pair.independent is not None


@given(
    seed=st.integers(0, 2**16),
    n=st.integers(2, 50),
    d=st.integers(1, 6),
    constant=st.lists(st.booleans(), min_size=6, max_size=6),
    offset=st.sampled_from([0.0, 1e3, -1e6]),
)
def test_standardise_keeps_the_varying_features_with_mean_0_and_std_1(seed, n, d, constant, offset):
    """Columns in order, constant ones (any value) dropped, the rest exactly rescaled."""
    x = offset + torch.randn(n, d, generator=_generator(seed), dtype=torch.float64)
    for f in range(d):
        if constant[f]:
            x[:, f] = offset + f
    given_x = x.float() if seed % 2 else x
    exact = given_x.double()
    kept = [f for f in range(d) if exact[:, f].max() > exact[:, f].min()]  # float32 may merge values
    z = standardise(given_x)
    assert z.dtype == torch.float64 and z.shape == (n, len(kept))
    if kept:
        source = exact[:, kept]
        assert torch.allclose(z.mean(dim=0), torch.zeros(len(kept), dtype=torch.float64), atol=1e-9)
        assert torch.allclose(z.std(dim=0, unbiased=False), torch.ones(len(kept), dtype=torch.float64), atol=1e-9)
        # an affine image of its column: z * std + mean gives the column back
        back = z * source.std(dim=0, unbiased=False) + source.mean(dim=0)
        assert torch.allclose(back, source, rtol=1e-9, atol=1e-9 * (1 + abs(offset)))


def test_constant_features_give_zero_and_are_documented():
    x, y = gaussian_pair(200, 2, 0.8, _generator(5))
    labels = torch.zeros(200, dtype=torch.int64)
    constant = torch.full((200, 3), 4.0)
    rho = class_conditional_rho(x, constant, labels, "ksg", replicates=5)
    assert rho.value == 0.0 and rho.interval == (0.0, 0.0)
    assert rho.settings["constant_classes"] == [0]
    with_constant_column = torch.cat([y, torch.ones(200, 1)], dim=1)
    padded = class_conditional_rho(x, with_constant_column, labels, replicates=0)
    assert padded.value == class_conditional_rho(x, y, labels, replicates=0).value


def test_high_dimension_warns_and_records():
    x, y = gaussian_pair(60, 6, 0.5, _generator(6))
    with pytest.warns(HighDimensionWarning, match="exceed 4"):
        rho = class_conditional_rho(x, y, torch.zeros(60, dtype=torch.int64), replicates=0)
    assert rho.settings["warnings"]


def _with_nan(x: torch.Tensor) -> torch.Tensor:
    x = x.clone()
    x[3, 0] = float("nan")
    return x


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda x, y, l: (_with_nan(x), y, l), "NaN"),
        (lambda x, y, l: (x[:-1], y, l), "rows"),
        (lambda x, y, l: (x, y, l.double()), "integer"),
        (lambda x, y, l: (x, y, torch.cat([l[:-2], torch.tensor([7, 7])])), "class 7 has 2 samples"),
        (lambda x, y, l: (x.flatten(), y, l), "2-D"),
    ],
)
def test_bad_input_is_refused(change, message):
    x, y = gaussian_pair(50, 1, 0.5, _generator(7))
    labels = torch.zeros(50, dtype=torch.int64)
    bx, by, bl = change(x, y, labels)
    with pytest.raises(BadInput, match=message):
        class_conditional_rho(bx, by, bl)


def test_bad_settings_name_the_argument():
    x, y = gaussian_pair(50, 1, 0.5, _generator(8))
    labels = torch.zeros(50, dtype=torch.int64)
    with pytest.raises(BadInput, match="no setting bandwidth"):
        class_conditional_rho(x, y, labels, "ksg", bandwidth=2)
    with pytest.raises(BadInput, match="k=0"):
        class_conditional_rho(x, y, labels, "ksg", k=0)
    with pytest.raises(BadInput, match="expected one of"):
        class_conditional_rho(x, y, labels, "nope")
    with pytest.raises(BadInput, match="unit 'furlongs'"):
        class_conditional_rho(x, y, labels, unit="furlongs")


def test_high_dimension_warnings_of_a_whole_network_come_as_one_line():
    generator = _generator(7)
    labels = torch.arange(60) % 3
    layers = [torch.randn(60, 5 + i, generator=generator, dtype=torch.float64) for i in range(4)]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        pairs = dependency_per_layer_pair(layers, labels, "ksg", replicates=0)
    (warning,) = [w for w in caught if issubclass(w.category, HighDimensionWarning)]
    recorded = {m for pair in pairs for m in pair.rho.settings["warnings"]}
    assert len(recorded) > 1
    assert f"and {len(recorded) - 1} more like it" in str(warning.message)
