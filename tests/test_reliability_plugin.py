"""The testing API itself: the README's example run against a real checkpoint through the
pytest plugin (entry point ``semirobust``), failures as sentences, and strategy errors
that say how to fix the call."""

import subprocess
import sys
from pathlib import Path

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.errors import InvalidArgument

from semirobust.empirical.cli.main import main
from semirobust.testing import assert_estimate_within, assert_robust_accuracy_at_least
from semirobust.testing.strategies import datasets, networks, threat_models

EXAMPLE = Path(__file__).with_name("test_user_example.py")


@pytest.fixture(scope="module")
def trained_checkpoint(tmp_path_factory):
    """A digits MLP trained for 10 epochs (under a second): clean accuracy about 0.9."""
    out = tmp_path_factory.mktemp("ckpt") / "mlp"
    assert main(["train", "--arch", "mlp", "--arch-kwargs", '{"width": 32, "depth": 2}', "--dataset", "digits",
                 "--epochs", "10", "--lr", "0.1", "--batch-size", "64", "--out", str(out), "--device", "cpu"]) == 0
    return out


def run_pytest(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *args],
                          capture_output=True, text=True, cwd=Path(__file__).parents[1], check=False)


def test_readme_example_passes_on_a_trained_checkpoint(trained_checkpoint):
    result = run_pytest(str(EXAMPLE), "--semirobust-checkpoint", str(trained_checkpoint))
    # no -p option: the fixture comes from the installed entry point
    assert result.returncode == 0, result.stdout[-3000:]
    assert "2 passed" in result.stdout


def test_example_names_a_missing_checkpoint_in_one_line(tmp_path):
    result = run_pytest(str(EXAMPLE), "--semirobust-checkpoint", str(tmp_path / "nowhere"))
    assert result.returncode == 1
    assert f"--semirobust-checkpoint: checkpoint {tmp_path / 'nowhere'}: no such directory" in result.stdout


def test_robust_accuracy_failure_reads_as_a_sentence(trained_checkpoint):
    from semirobust.empirical.attacks import AttackConfig, build_attack
    from semirobust.empirical.attacks.threat import ThreatModel
    from semirobust.empirical.data import load_dataset
    from semirobust.empirical.model.checkpoint import load_checkpoint

    model, config = load_checkpoint(trained_checkpoint)
    data = load_dataset(config.dataset)
    pgd = build_attack("pgd", AttackConfig(ThreatModel("linf", 0.3), steps=5))
    with pytest.raises(AssertionError, match=r"^digits-mlp has robust accuracy 0(\.\d+)? .* under pgd linf "
                                             r"eps=0\.3, below the required 0\.99$"):
        assert_robust_accuracy_at_least(model, data.x_test[:64], data.y_test[:64], pgd, 0.99,
                                        model_name="digits-mlp")


def test_estimate_failure_names_quantity_values_and_tolerance():
    with pytest.raises(AssertionError, match=r"rho is 0\.5, \+0\.2 from the ground truth 0\.3; allowed 0\.03"):
        assert_estimate_within(0.5, 0.3, rel=0.1, quantity="rho")
    with pytest.raises(ValueError, match="give rel and/or abs"):
        assert_estimate_within(0.5, 0.3)


@pytest.mark.parametrize("strategy, message", [
    (lambda: networks(depth=3), r"networks\(depth=3\): pass a hypothesis strategy, e\.g\. depth=st\.just\(3\)"),
    (lambda: threat_models(eps=0.1), r"threat_models\(eps=0\.1\): .* eps=st\.just\(0\.1\)"),
    (lambda: datasets(kind="separable"), r"datasets\(kind='separable'\): .* kind=st\.just\('separable'\)"),
])
def test_a_plain_value_instead_of_a_strategy_says_how_to_fix_the_call(strategy, message):
    with pytest.raises(InvalidArgument, match=message):
        strategy()


def test_a_drawn_value_outside_the_accepted_range_is_named():
    @settings(max_examples=1)
    @given(networks(kind=st.just("transformer")))
    def draw(_network):
        pass

    with pytest.raises(InvalidArgument, match="drew 'transformer'; accepted: mlp, cnn"):
        draw()


@given(data=datasets(kind=st.just("separable")))
def test_separable_datasets_keep_their_stated_separation(data):
    assert 0 <= float(data.x.min()) and float(data.x.max()) <= 1
    for a in range(data.num_classes):
        for b in range(a + 1, data.num_classes):
            gaps = torch.cdist(data.x[data.y == a], data.x[data.y == b], p=float("inf"))
            assert float(gaps.min()) >= data.separation - 1e-12


@given(network=networks(), threat=threat_models())
def test_drawn_networks_have_the_asked_shape_and_layer_norms(network, threat):
    layers = [m for m in network.model.modules() if isinstance(m, (torch.nn.Linear, torch.nn.Conv2d))]
    assert len(layers) == network.depth + 1 == network.weight_layers
    for layer in layers:
        if isinstance(layer, torch.nn.Linear):
            assert float(torch.linalg.matrix_norm(layer.weight.detach(), ord=2)) == pytest.approx(network.lipschitz_scale)
    x = torch.rand(2, *network.input_shape, dtype=torch.float64)
    assert network.model(x).shape == (2, network.num_classes)
    assert threat.norm in ("linf", "l2") and 0 <= threat.eps <= 0.3


def test_docs_show_the_example_verbatim():
    docs = (Path(__file__).parents[1] / "docs" / "testing.md").read_text()
    assert f"```python\n{EXAMPLE.read_text()}```" in docs
