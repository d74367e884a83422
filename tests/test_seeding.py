"""No global reseeding: initial weights come from a seeded generator under a forked RNG
state, the caller's random state is left as it was, and the weights are those a global
reseed with the same seed gives (so results made before the change keep their weights)."""

import subprocess
import sys
from pathlib import Path

import torch

from semirobust.empirical.data import load_dataset
from semirobust.empirical.model import ArchitectureSpec, build_model, build_seeded_model
from semirobust.empirical.runtime.device import seeded_torch_rng

ROOT = Path(__file__).resolve().parents[1]


def _spec() -> ArchitectureSpec:
    data = load_dataset("digits")
    return ArchitectureSpec("digits-cnn", data.input_shape, data.num_classes, data.mean, data.std, {"width": 4})


def test_seeded_model_leaves_the_callers_random_state_untouched():
    state = torch.get_rng_state()
    first = build_seeded_model(_spec(), 3)
    assert torch.equal(torch.get_rng_state(), state)
    second = build_seeded_model(_spec(), 3)
    other = build_seeded_model(_spec(), 4)
    for (name, a), b, c in zip(first.state_dict().items(), second.state_dict().values(), other.state_dict().values()):
        assert torch.equal(a, b), name
    assert any(not torch.equal(a, c) for a, c in zip(first.state_dict().values(), other.state_dict().values()))


def test_seeded_weights_equal_those_of_a_global_reseed():
    """The reference is computed in a child process, so this test reseeds nothing itself."""
    code = ("import torch; from semirobust.empirical.data import load_dataset;"
            "from semirobust.empirical.model import ArchitectureSpec, build_model;"
            "d = load_dataset('digits');"
            "s = ArchitectureSpec('digits-cnn', d.input_shape, d.num_classes, d.mean, d.std, {'width': 4});"
            "torch.manual_seed(7); m = build_model(s);"
            "print(repr([float(p.double().sum()) for p in m.state_dict().values()]))")
    reference = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout.strip()
    seeded = build_seeded_model(_spec(), 7)
    assert repr([float(p.double().sum()) for p in seeded.state_dict().values()]) == reference


def test_draws_without_a_generator_follow_the_seed_inside_the_context():
    with seeded_torch_rng(11):
        a = torch.nn.functional.dropout(torch.ones(1000), 0.5, training=True)
    with seeded_torch_rng(11):
        b = torch.nn.functional.dropout(torch.ones(1000), 0.5, training=True)
    assert torch.equal(a, b) and 0 < int((a == 0).sum()) < 1000
    assert build_model(_spec()) is not None  # the global generator still works outside


def test_no_global_reseeding_in_the_package():
    """Every manual_seed call in the package is a Generator's (tests may reseed)."""
    found = subprocess.run(["grep", "-rn", "manual_seed(", "empirical", "semirobust"], cwd=ROOT, check=True,
                           capture_output=True, text=True).stdout.splitlines()
    assert found, "grep found nothing: the package moved?"
    for line in found:
        code = line.split(":", 2)[2]
        assert code.count("manual_seed(") == code.count("Generator().manual_seed(") + code.count(
            "Generator(device=each).manual_seed("), line
