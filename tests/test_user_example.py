"""A lab's own robustness tests in a few lines, with semirobust.testing (docs/testing.md).

Run against a checkpoint:  pytest tests/test_user_example.py --semirobust-checkpoint runs/demo/robust
Without --semirobust-checkpoint the checkpoint test is skipped; the property test always runs.
"""

from hypothesis import given
from hypothesis import strategies as st

from semirobust.empirical.attacks import AttackConfig, build_attack
from semirobust.empirical.attacks.threat import ThreatModel
from semirobust.testing import assert_attack_stays_in_threat_model, assert_robust_accuracy_at_least
from semirobust.testing.strategies import labelled_inputs, networks, threat_models


@given(network=networks(kind=st.just("cnn")), threat=threat_models(norm=st.just("linf")), data=st.data())
def test_pgd_never_leaves_the_threat_model(network, threat, data):
    x, y = data.draw(labelled_inputs(network))
    pgd = build_attack("pgd", AttackConfig(threat, steps=5))
    assert_attack_stays_in_threat_model(pgd, network.model, x, y, model_name=repr(network))


def test_our_checkpoint_keeps_its_robust_accuracy(semirobust_checkpoint):
    pgd = build_attack("pgd", AttackConfig(ThreatModel("linf", 0.01), steps=10))
    checkpoint = semirobust_checkpoint
    assert_robust_accuracy_at_least(
        checkpoint.model, checkpoint.x, checkpoint.y, pgd, minimum=0.5, model_name=checkpoint.name
    )
