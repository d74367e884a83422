"""Soundness on random networks drawn by ``semirobust.testing.strategies``: attacks stay
in the threat model, certified margins never exceed attacked ones, Lipschitz upper
bounds are at least every local Jacobian norm (THEORY.md 1 and 5; docs/bounds.md)."""

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from semirobust.empirical.attacks import AttackConfig, attack_names, build_attack
from semirobust.empirical.attacks.objectives import negative_margin
from semirobust.testing import (
    assert_attack_stays_in_threat_model,
    assert_certified_below_attacked,
    assert_lipschitz_upper_at_least_local_lower,
    assert_verdict_not_violated,
)
from semirobust.testing.strategies import labelled_inputs, networks, threat_models

#: gradient attacks cheap enough for every drawn example (AutoAttack runs in tests/test_attacks*)
FAST_ATTACKS = [name for name in ("fgsm", "ifgsm", "pgd", "cw") if name in attack_names()]


@pytest.mark.parametrize("attack_name", FAST_ATTACKS)
@given(network=networks(), threat=threat_models(), data=st.data())
def test_attacks_stay_inside_the_threat_model(attack_name, network, threat, data):
    x, y = data.draw(labelled_inputs(network))
    attack = build_attack(attack_name, AttackConfig(threat, steps=3, objective=negative_margin))
    assert_attack_stays_in_threat_model(attack, network.model, x, y, model_name=repr(network))


@given(network=networks(), data=st.data())
def test_drawn_networks_are_lipschitz_with_the_product_of_their_layer_norms(network, data):
    """The strategy's ground truth: the Jacobian's spectral norm at any input is at most
    ``lipschitz_scale ** n`` (ReLU networks are piecewise linear: that is the local constant)."""
    x, _ = data.draw(labelled_inputs(network, batch_size=st.just(2)))
    for point in x:
        jacobian = torch.autograd.functional.jacobian(lambda p: network.model(p.unsqueeze(0))[0], point)
        local = torch.linalg.matrix_norm(jacobian.reshape(network.num_classes, -1), ord=2)
        assert float(local) <= network.lipschitz_upper * (1 + 1e-9), repr(network)


@pytest.mark.parametrize("method", ["ibp", "crown-ibp"])
@given(network=networks(), threat=threat_models(), data=st.data())
def test_certified_margin_is_never_above_the_attacked_margin(method, network, threat, data):
    pytest.importorskip("semirobust.empirical.bounds")
    x, y = data.draw(labelled_inputs(network))
    assert_certified_below_attacked(network.model, x, y, threat, method=method, model_name=repr(network))


@given(network=networks(), data=st.data())
def test_lipschitz_upper_bound_is_at_least_the_local_lower_bound(network, data):
    lipschitz = pytest.importorskip("semirobust.empirical.bounds.lipschitz")
    x, _ = data.draw(labelled_inputs(network, batch_size=st.just(2)))
    upper, _ = assert_lipschitz_upper_at_least_local_lower(network.model, x, model_name=repr(network))
    # every layer's norm is exact here, so the product is the strategy's own bound
    assert upper == pytest.approx(network.lipschitz_upper, rel=1e-6)
    assert lipschitz.lipschitz_upper(network.model, network.input_shape).certified


@given(network=networks(depth=st.integers(1, 3)), threat=threat_models(), data=st.data())
def test_lip_verdict_is_never_violated_with_sound_measurements(network, threat, data):
    """THEORY.md 5 is a sound result: judged on the gamma sandwich, the clean margin, the
    certified L_b and the certified Delta_a of any drawn network, it is never 'violated'."""
    pytest.importorskip("semirobust.empirical.bounds")
    from semirobust.empirical.measure.sandwich import gamma_sandwich
    from semirobust.empirical.measure.transfer import lipschitz_transfer_bound
    from semirobust.empirical.model.stages import split_network, valid_splits
    from semirobust.empirical.studies.check import renamed

    x, y = data.draw(labelled_inputs(network, batch_size=st.integers(2, 6)))  # a mean needs 2
    a = data.draw(st.sampled_from(valid_splits(network.model)))
    sandwich = {m.name: m for m in gamma_sandwich(network.model, x, y, threat).measurements()}
    transfer = {m.name: m for m in lipschitz_transfer_bound(split_network(network.model, a), x, y, threat,
                                                            steps=5).measurements()}
    measurements = {
        "gamma_whole": [renamed(sandwich["gamma_certified"], "gamma_whole", readout="the network"),
                        renamed(sandwich["gamma_attacked"], "gamma_whole", readout="the network")],
        "clean_margin": renamed(sandwich["margin_clean"], "clean_margin"),
        "L_b": transfer["L_b"],
        "Delta_a": renamed(transfer["Delta_a_certified"], "Delta_a"),
    }
    assert_verdict_not_violated("LIP", measurements, model_name=f"{network!r} split at a={a}")
