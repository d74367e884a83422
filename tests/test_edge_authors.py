"""``edge-authors``: the authors' EDGE (EDGE_4_4_1.py, as the semirobustness paper calls it).

Three oracles: golden values from the authors' own code on the same inputs (it reproduces
numpy's draws, so they agree to rounding); a plain-loop implementation written here from
the construction in the module docstring; numbers worked out by hand for the clipped
dependence-graph sum. Plus the authors' code's measured readings (docs/dependency.md), independence and bad input.
"""

import math
import warnings

import numpy as np
import pytest
import torch

from semirobust.empirical.dependency import class_conditional_rho, make_estimator
from semirobust.empirical.dependency.edge_authors import AUTHORS_SEED, clipped_graph_bits
from semirobust.empirical.dependency.ground_truth import gaussian_pair
from semirobust.empirical.dependency.seeding import stream_generator
from semirobust.errors import BadInput

#: the paper's call with shifts drawn from the project's stream (seed 0) or on the grid
#: (``stochastic=False``), and the authors' own defaults (L = 10, second pass, grid).
PAPER = {}
PAPER_GRID = {"shifts": "grid"}
AUTHORS_DEFAULTS = {"ensemble": 10, "normalize_epsilon": True, "shifts": "grid"}


def _bits(x, y, seed=0, **settings) -> float:
    labels = torch.zeros(x.shape[0], dtype=torch.int64)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return class_conditional_rho(x, y, labels, "edge-authors", replicates=0, seed=seed, **settings).value


def _facts_pair(d: int, seed: int = 0):
    """The recorded case (docs/dependency.md): n = 1000, Y = 0.8 X + 0.6 Z in d dimensions (true MI -d/2 log2 0.36)."""
    return gaussian_pair(1000, d, 0.8, torch.Generator().manual_seed(seed))


def _relu_layers(d: int, seed: int):
    """Uncentred ReLU activations with dead units (constant features), as real layers give."""
    x, y = gaussian_pair(1000, d, 0.8, torch.Generator().manual_seed(seed))
    return (torch.cat([torch.relu(x + 0.3), torch.zeros(1000, 2, dtype=torch.float64)], 1),
            torch.cat([torch.relu(y - 0.2) * 7, torch.full((1000, 3), 0.25, dtype=torch.float64)], 1))


# Golden values: EDGE_4_4_1.py (github.com/mrtnoshad/EDGE; cvxpy import stubbed, unused by
# the median) run on the same float64 inputs, with its random shifts' uniforms replaced by
# the ones this estimator draws from stream_generator(0, "prepare", 0, layer) (the
# authors draw them unseeded). Over 88 settings x inputs (floor and p-stable hashing,
# n = 20..2000, ties, dead units, offsets) the two agreed within 6e-14 bits; the only
# differences left are summation order, so 1e-9 bits is the tolerance.
GOLDEN_TOLERANCE_BITS = 1e-9
GOLDEN = [
    ("gaussian d=8", lambda: _facts_pair(8), PAPER, 1.647857228113025),
    ("gaussian d=8", lambda: _facts_pair(8), PAPER_GRID, 1.746234857602699),
    ("gaussian d=8", lambda: _facts_pair(8), AUTHORS_DEFAULTS, 6.9554320810799855),
    ("gaussian d=64", lambda: _facts_pair(64), PAPER, 3.139558956474699),
    ("gaussian d=64", lambda: _facts_pair(64), PAPER_GRID, 3.1840063288333846),
    ("gaussian d=512", lambda: _facts_pair(512), PAPER, 6.050000433494968),
    ("gaussian d=512", lambda: _facts_pair(512), PAPER_GRID, 6.043220228295602),
    ("relu with dead units d=64", lambda: _relu_layers(64, 1), PAPER, 3.0329846854448923),
    ("relu with dead units d=64", lambda: _relu_layers(64, 1), AUTHORS_DEFAULTS, 9.965784284662126),
]


@pytest.mark.parametrize("case, sample, settings, authors_bits", GOLDEN, ids=[f"{c} {s}" for c, _, s, _ in GOLDEN])
def test_gives_the_authors_numbers_on_the_same_inputs(case, sample, settings, authors_bits):
    assert _bits(*sample(), **settings) == pytest.approx(authors_bits, abs=GOLDEN_TOLERANCE_BITS)


#: docs/dependency.md: the authors' code read 1.76, 3.3 and 6.0 bits at d = 8, 64, 512 (one draw each).
#: Over 20 draws of data and shifts their code spreads with sd 0.054, 0.085, 0.139 bits;
#: the mean of 3 of our draws against one of theirs: 3 sd sqrt(1 + 1/3), rounded up.
RECORDED_READINGS = [(8, 1.76, 0.2), (64, 3.3, 0.3), (512, 6.0, 0.5)]


@pytest.mark.parametrize("d, recorded_bits, tolerance", RECORDED_READINGS)
def test_reads_what_facts_measured_for_the_authors_code(d, recorded_bits, tolerance):
    mean = np.mean([_bits(*_facts_pair(d, seed), seed=seed) for seed in range(3)])
    assert mean == pytest.approx(recorded_bits, abs=tolerance)
    assert mean < math.log2(1000)


def _plain_authors_edge(x, y, uniforms_x, uniforms_y, *, ensemble, width_range, shifts, normalize_epsilon, gamma, upper):
    """The construction of edge_authors.py written plainly: numpy, one sample at a time."""
    n, d_x = x.shape
    d_y = y.shape[1]
    floor = d_x <= 6 and d_y <= 6
    p_x, p_y = (d_x, d_y) if floor else (min(d, math.floor(math.log2(n / 10))) for d in (d_x, d_y))
    if floor:
        h_x, h_y = x, y
    else:
        z = np.random.RandomState(AUTHORS_SEED).standard_normal(d_x * p_x + d_y * p_y)
        normals = (z[: d_x * p_x].reshape(d_x, p_x), z[d_x * p_x :].reshape(d_y, p_y))
        h_x, h_y = (
            data @ np.stack([normal[f] / ((s if s >= 1e-4 else 1.0) * math.sqrt(data.shape[1]))
                             for f, s in enumerate(data.std(axis=0))])
            for data, normal in ((x, normals[0]), (y, normals[1]))
        )

    def bandwidths(h, d):
        p = h.shape[1]
        k = math.floor(0.43 * n ** (2 / 3 + 0.17 * p / (p + 1)) * math.exp(-1 / max(10000, p**4)))
        rows = np.random.RandomState(AUTHORS_SEED).choice(n, size=500)
        knn = [np.mean([sorted(abs(h[t, c] - h[i, c]) for i in range(n))[k - 1] for t in rows]) + 1e-4 for c in range(p)]
        return np.array(knn) * (18 * p / max(1 + math.log(d), 1))

    base_x, base_y = bandwidths(h_x, d_x), bandwidths(h_y, d_y)
    scale = gamma * 0.4
    value = 0.0
    for step in range(2 if normalize_epsilon else 1):
        if step:
            scale = scale * 2 ** (-math.sqrt(2 * value) + 0.5 / value) * 0.4
        members = []
        for l, t in enumerate(np.linspace(1, 1 + width_range, ensemble)):
            eps_x, eps_y = base_x * scale * t, base_y * scale * t
            if shifts == "grid":
                b_x, b_y = l / ensemble * eps_x, l / ensemble * eps_y
            else:
                b_x, b_y = 0.1 * uniforms_x[step][l][:p_x] * eps_x, 0.1 * uniforms_y[step][l][:p_y] * eps_y
            keys = [(tuple(np.floor((h_x[i] + b_x) / eps_x)), tuple(np.floor((h_y[i] + b_y) / eps_y))) for i in range(n)]
            n_x, n_y, n_xy = {}, {}, {}
            for kx, ky in keys:
                n_x[kx] = n_x.get(kx, 0) + 1
                n_y[ky] = n_y.get(ky, 0) + 1
                n_xy[(kx, ky)] = n_xy.get((kx, ky), 0) + 1
            total = sum(count * min(max(math.log2(n * count / (n_x[kx] * n_y[ky])), 0.001), upper)
                        for (kx, ky), count in n_xy.items())
            members.append(total / n)
        value = float(np.median(members))
    return value


@pytest.mark.parametrize("d_x, d_y, n", [(2, 3, 60), (9, 4, 90)], ids=["floor hashing", "p-stable hashing"])
@pytest.mark.parametrize("settings", [PAPER, {"ensemble": 3, "width_range": 0.3, "normalize_epsilon": True, "gamma": 0.8, "upper": 2.0}, AUTHORS_DEFAULTS])
def test_agrees_with_a_plain_loop_implementation(d_x, d_y, n, settings):
    """Tied values (rounded data) exercise the windowed kNN; a half-sample reruns everything."""
    gen = torch.Generator().manual_seed(d_x + d_y)
    x = torch.randn(n, d_x, generator=gen, dtype=torch.float64).round(decimals=1) * 3 + 1
    y = torch.relu(x[:, :1] + torch.randn(n, d_y, generator=gen, dtype=torch.float64))
    method = make_estimator("edge-authors", **settings)
    state_x, state_y = (method.prepare(v, stream_generator(0, "prepare", 0, i)) for i, v in enumerate((x, y)))
    uniforms = [None if state.uniforms is None else state.uniforms.numpy() for state in (state_x, state_y)]
    plain = {"uniforms_x": uniforms[0], "uniforms_y": uniforms[1], **vars(method.settings)}
    fast = method.estimate(state_x, state_y, None, None) / math.log(2)
    assert fast == pytest.approx(_plain_authors_edge(x.numpy(), y.numpy(), **plain), abs=1e-12)
    rows = torch.randperm(n, generator=gen)[: n // 2].sort().values
    half = method.estimate(state_x, state_y, rows, rows) / math.log(2)
    assert half == pytest.approx(_plain_authors_edge(x[rows].numpy(), y[rows].numpy(), **plain), abs=1e-12)


def test_clipped_graph_sum_by_hand():
    """N = 4. Two buckets each, paired: every term log2(4 * 2 / (2 * 2)) = 1 bit. Crossed:
    every term log2(4 * 1 / (2 * 2)) = 0, clipped to 0.001. All apart (N = 8): log2 8 = 3
    bits, clipped to U = 2."""
    ids = torch.tensor([[0, 0, 1, 1]])
    assert clipped_graph_bits(ids, torch.tensor([[0, 0, 1, 1]]), 10.0).tolist() == [1.0]
    assert clipped_graph_bits(ids, torch.tensor([[0, 1, 0, 1]]), 10.0).tolist() == [pytest.approx(0.001, abs=1e-15)]
    apart = torch.arange(8).unsqueeze(0)
    assert clipped_graph_bits(apart, apart, 10.0).tolist() == [pytest.approx(3.0, abs=1e-15)]
    assert clipped_graph_bits(apart, apart, 2.0).tolist() == [2.0]
    mixed = clipped_graph_bits(torch.tensor([[0, 0, 1, 1], [0, 0, 0, 0]]), torch.tensor([[0, 0, 1, 2], [0, 1, 2, 3]]), 10.0)
    # member 0: two samples log2(4*2/(2*2)) = 1, two log2(4*1/(2*1)) = 1; member 1: log2(4/4) = 0 -> 0.001
    assert mixed.tolist() == [pytest.approx(1.0, abs=1e-15), pytest.approx(0.001, abs=1e-15)]


def test_independence_reads_the_clip_floor_with_the_authors_defaults():
    """d = 1, n = 2000: the second pass widens the buckets until every term is clipped (the
    authors' code reads 0.001 bits too); the paper's call (one pass) stays below 0.1 bits."""
    x, y = gaussian_pair(2000, 1, 0.0, torch.Generator().manual_seed(1))
    assert _bits(x, y, **AUTHORS_DEFAULTS) == pytest.approx(0.001, abs=1e-12)
    assert 0.001 <= _bits(x, y) < 0.1


def test_in_high_dimension_independence_reads_as_much_as_strong_dependence():
    """The paper's call at n = 1000: independent pairs read 1.3 bits at d = 8 (r = 0.8: 1.7)
    and 3.26 bits at d = 64, the same as r = 0.8 (47 true bits). Asserted so that it
    cannot silently change (docs/dependency.md)."""
    independent = [_bits(*gaussian_pair(1000, d, 0.0, torch.Generator().manual_seed(7))) for d in (8, 64)]
    dependent = [_bits(*gaussian_pair(1000, d, 0.8, torch.Generator().manual_seed(7))) for d in (8, 64)]
    assert 1.0 < independent[0] < dependent[0] - 0.2
    assert independent[1] > 2.5
    assert abs(independent[1] - dependent[1]) < 0.3


def test_reports_nats_and_bits_of_the_same_clipped_sum():
    x, y = _facts_pair(8)
    labels = torch.zeros(1000, dtype=torch.int64)
    bits = class_conditional_rho(x, y, labels, "edge-authors", replicates=0)
    nats = class_conditional_rho(x, y, labels, "edge-authors", replicates=0, unit="nats")
    assert bits.unit == "bits" and nats.unit == "nats"
    assert nats.value == pytest.approx(bits.value * math.log(2), rel=1e-12)
    assert bits.settings["standardised"].startswith("none")


def test_a_seed_fixes_the_value_and_only_random_shifts_use_it():
    x, y = _facts_pair(8)
    assert _bits(x, y, seed=3) == _bits(x, y, seed=3)
    assert _bits(x, y, seed=3) != _bits(x, y, seed=4)
    assert _bits(x, y, seed=3, **PAPER_GRID) == _bits(x, y, seed=4, **PAPER_GRID)


def test_values_move_with_feature_offsets_as_the_authors_do():
    """Raw input, as the authors' code: offsets move the hashing grid (golden values above
    hold for uncentred ReLU activations); a per-feature scale does not change anything
    beyond rounding, since the projection divides by the standard deviation."""
    x, y = _facts_pair(8)
    assert _bits(x + 5, y + 5, **PAPER_GRID) < _bits(x, y, **PAPER_GRID) - 0.5
    assert _bits(3 * x, y / 2, **PAPER_GRID) == pytest.approx(_bits(x, y, **PAPER_GRID), abs=1e-9)


def test_activations_varying_by_less_than_about_1e_4_read_the_clip_floor():
    """The standard-deviation floor and the bandwidth offset (both 1e-4) are absolute: ReLU
    activations scaled by 1e-5 fall into one bucket per variable (docs/dependency.md)."""
    x, y = (torch.relu(t) for t in _facts_pair(8))
    assert _bits(x, y) > 1.0
    assert _bits(1e-5 * x, 1e-5 * y) == pytest.approx(0.001, abs=1e-12)


def test_awkward_inputs_give_finite_values_or_bad_input():
    gen = torch.Generator().manual_seed(11)
    x = torch.randn(40, 3, generator=gen, dtype=torch.float64)
    labels = torch.zeros(40, dtype=torch.int64)
    constant = class_conditional_rho(x, torch.full((40, 2), 1.5), labels, "edge-authors", replicates=0)
    assert constant.value == 0.0 and constant.settings["constant_classes"] == [0]
    tied = class_conditional_rho(x.round(), torch.relu(x).round(), labels, "edge-authors", replicates=4)
    assert all(math.isfinite(v) for v in (tied.value, *tied.interval))
    smallest = class_conditional_rho(x[:20], x[:20, :1] * 2, labels[:20], "edge-authors", replicates=0)
    assert 0.001 <= smallest.value <= math.log2(20)
    with pytest.raises(BadInput, match=r"class 0 has 19 samples; estimator 'edge-authors' needs at least 20"):
        class_conditional_rho(x[:19], x[:19], labels[:19], "edge-authors", replicates=0)
    with pytest.raises(BadInput, match=r"needs at least 40 \(twice the minimum"):
        class_conditional_rho(x[:39], x[:39], labels[:39], "edge-authors", replicates=10)


@pytest.mark.parametrize("setting, value, message", [
    ("ensemble", 0, "ensemble=0: expected an integer >= 1"),
    ("shifts", "stochastic", "shifts='stochastic': expected one of random, grid"),
    ("normalize_epsilon", "yes", "normalize_epsilon='yes': expected true or false"),
    ("gamma", 0.0, "gamma=0.0: expected a number > 0"),
    ("upper", 0.0005, "upper=0.0005: expected a number of bits > 0.001"),
    ("width_range", -0.1, "width_range=-0.1: expected a number >= 0"),
])
def test_settings_are_validated_at_the_call(setting, value, message):
    with pytest.raises(BadInput, match=f"edge-authors setting {message}"):
        make_estimator("edge-authors", **{setting: value})
