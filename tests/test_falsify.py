"""The falsification search (semirobust.empirical.studies.falsify) and its witnesses.

The T2/L1 witnesses below are the ones ``semirobust falsify T2`` found and shrank (C8) in
the 1-D space (``WITNESS``, its numbers checked by hand) and in the CNN space
(``CNN_WITNESS``, certified bounds and attack values): kept as regression tests and shown
in docs/theory.md."""

from __future__ import annotations

import json

import pytest
import torch

from semirobust.empirical.cli.main import main
from semirobust.empirical.measure.exact_1d import breakpoints, extremum, margin
from semirobust.empirical.studies.falsify import (
    Candidate,
    falsify,
    judge_candidate,
    load_witness,
    measure,
    t2_measurements,
    write_witness,
)
from semirobust.empirical.studies.falsify_cnn import CnnCandidate, l2_logits
from semirobust.errors import BadInput
from semirobust.theory import Kind, Status

# f_a: h = -2x; G_a: logits (-2h, -2h - 0.5), so m_1 = 0.5 for label 0 at every input;
# f_b (scaled by 4): logits (-8h - 2, -4h - 2), so m_2 = -4h = 8x. One input x = 0.1,
# label 0, eps = 0.1: x' in [0, 0.2].
WITNESS = Candidate(width=1, relu=False, first=((-2.0,), (0.0,)),
                    readout=((-2.0, -2.0), (0.0, -0.5)), rest=((-2.0, -1.0), (-0.5, -0.5)),
                    hidden=((-2.0,), (-0.5,)), inputs=(0.1,), labels=(0,), eps=0.1, scale=4.0)


def test_the_t2_witness_by_hand():
    ms = t2_measurements(WITNESS)
    assert ms["gamma_a"].value == pytest.approx(0.5)              # m_1 = 0.5 everywhere
    assert ms["gamma_b"].value == pytest.approx(0.0, abs=1e-12)   # inf of 8x' at x' = 0
    # A2 bounds the infimum of the gap: inf (0.5 - 8x') = 0.5 - 1.6 = -1.1 <= -(1 + 0)
    assert ms["margin_gap_2"].value == pytest.approx(-1.1)
    assert all(m.kind in (Kind.EXACT, Kind.CERTIFIED) for m in ms.values())


@pytest.mark.parametrize("result", ["T2", "L1"])
def test_the_witness_is_a_certified_counterexample(result):
    verdict = judge_candidate(result, WITNESS)
    assert verdict.status is Status.VIOLATED
    assert all(p.status is Status.HOLDS for p in (*verdict.premises, *verdict.consistency))
    assert all(c.status is Status.VIOLATED for c in verdict.conclusion)
    assert "estimate" not in verdict.decided_by and "attack" not in verdict.decided_by
    assert any(n.startswith("COUNTEREXAMPLE") for n in verdict.notes)


def test_without_the_rescaling_the_same_network_is_no_witness():
    """The directed step (C6/C8): at scale 1, m_2 = 2x' has sup 0.4 and A2 fails."""
    unscaled = Candidate(**{**WITNESS.__dict__, "scale": 1.0})
    assert judge_candidate("T2", unscaled).status is Status.PREMISES_UNMET


def test_breakpoints_and_extrema_of_a_relu_network_are_exact():
    net = torch.nn.Sequential(torch.nn.Linear(1, 2), torch.nn.ReLU(), torch.nn.Linear(2, 2)).double()
    with torch.no_grad():
        net[0].weight.copy_(torch.tensor([[1.0], [-1.0]]))
        net[0].bias.copy_(torch.tensor([-0.3, 0.6]))
        net[2].weight.copy_(torch.tensor([[1.0, 1.0], [0.0, 0.0]]))
        net[2].bias.zero_()
    assert breakpoints(net, 0.0, 1.0) == pytest.approx([0.0, 0.3, 0.6, 1.0])
    # m for label 0 = relu(x - 0.3) + relu(0.6 - x): minimum 0.3 on [0.3, 0.6]
    assert extremum([net], lambda z: margin(z, 0), 0.5, 0.5) == pytest.approx(0.3)
    assert extremum([net], lambda z: margin(z, 0), 0.5, 0.5, largest=True) == pytest.approx(0.7)


@pytest.mark.parametrize("space, budget", [("1d", 40), ("cnn", 8)])
@pytest.mark.parametrize("result", ["LIP", "L2", "T1"])
def test_sound_results_have_no_witness_within_the_budget(result, space, budget):
    outcome = falsify(result, budget=budget, space=space)
    assert not outcome.found
    assert outcome.summary() == f"{result}: none found in {budget} examples (space {space})"


def test_falsify_t2_finds_a_certified_witness_and_writes_it(tmp_path):
    outcome = falsify("T2", budget=60, space="1d")
    assert outcome.found and outcome.verdict.status is Status.VIOLATED
    written = write_witness(outcome, tmp_path)
    assert {p.name for p in written} == {"weights.json", "config.json", "witness.json", "report.md"}
    assert load_witness(tmp_path / "checkpoint") == outcome.candidate
    data = json.loads((tmp_path / "witness.json").read_text())
    assert data["verdict"]["status"] == "violated"
    assert {m["kind"] for m in data["measurements"].values()} <= {"exact", "certified"}
    report = (tmp_path / "report.md").read_text()
    assert "Verdict: **violated**" in report and "Checking it by hand" in report


def test_falsify_t3_finds_the_closed_form_overclaiming():
    outcome = falsify("T3", budget=60, space="1d")
    assert outcome.found and outcome.verdict.status is Status.VIOLATED
    gamma_a, gamma_b = (outcome.measurements[k].value for k in ("gamma_a", "gamma_b"))
    assert gamma_a > 0 and gamma_b < 2 * gamma_a  # the closed form at a = 1, n = 3


def test_the_cli_writes_an_honest_none_found(tmp_path, capsys):
    assert main(["falsify", "LIP", "--budget", "5", "--out", str(tmp_path)]) == 0
    assert "LIP: none found in 5 examples (space all)" in capsys.readouterr().out
    assert json.loads((tmp_path / "witness.json").read_text())["found"] is False


def test_bad_falsify_arguments_are_named(capsys):
    with pytest.raises(BadInput, match="--budget"):
        falsify("T2", budget=0)
    with pytest.raises(SystemExit) as exited:
        main(["falsify", "T9"])
    assert exited.value.code == 2 and len(capsys.readouterr().err.splitlines()) == 1


# f_a: one 3x3 conv, no ReLU, so 2x2 maps (4 features); G_a and f_b: Linear(4, 2) on them;
# three images (two all 0.1 with label 0, one with two 0.9 pixels and label 1), eps 0.05.
# Found by `semirobust falsify T2 --space cnn --budget 100` (seed 0) and shrunk.
CNN_WITNESS = CnnCandidate(
    channels=1, relu=False,
    first=((2.0, 1.0, -2.0, -2.0, -2.0, -2.0, -2.0, -2.0, -2.0), (-0.5,)),
    readout=((-2.0, -2.0, -2.0, -2.0, -2.0, -2.0, -2.0, 2.0), (-0.5, -0.5)),
    rest=((-2.0, 2.0, -2.0, -2.0, -2.0, -2.0, -2.0, -2.0), (-0.5, -0.5)),
    hidden=((-2.0,), (-0.5,)),
    inputs=((0.1,) * 16, (0.1,) * 16, (0.1,) * 5 + (0.9, 0.9) + (0.1,) * 9),
    labels=(0, 0, 1), eps=0.05)


@pytest.mark.parametrize("result", ["T2", "L1"])
def test_the_cnn_witness_is_a_certified_counterexample(result):
    """Premises hold on sound ends only (gamma_a's certified bound, A2's attacked gap) and
    the conclusion fails on them (gamma_b's attacked value below gamma_a's certified one)."""
    measurements, _ = measure(result, CNN_WITNESS)
    kinds = {m.kind for entry in measurements.values()
             for m in (entry if isinstance(entry, tuple) else (entry,))}
    assert kinds == {Kind.CERTIFIED, Kind.ATTACK}
    verdict = judge_candidate(result, CNN_WITNESS)
    assert verdict.status is Status.VIOLATED
    assert all(p.status is Status.HOLDS for p in (*verdict.premises, *verdict.consistency))
    assert all(c.status is Status.VIOLATED for c in verdict.conclusion)
    assert "estimate" not in verdict.decided_by
    gap = measurements["margin_gap_2"]
    assert [m.kind for m in gap] == [Kind.CERTIFIED, Kind.ATTACK] and gap[1].value <= -1.0


def test_the_cnn_witness_by_its_numbers():
    ms, _ = measure("T2", CNN_WITNESS)
    certified, attacked = ms["gamma_a"]
    assert certified.value == pytest.approx(29 / 15) and certified.value <= attacked.value + 1e-12
    assert ms["gamma_b"][1].value == pytest.approx(-19 / 15)  # attacked: an upper bound
    assert ms["gamma_b"][1].value < certified.value  # the conclusion fails on sound ends


def test_l2s_cnn_logits_are_the_sum_of_both_readouts():
    net = l2_logits(CNN_WITNESS)
    x = CNN_WITNESS.x
    h_1 = CNN_WITNESS.f_a(x)
    with torch.no_grad():
        summed = CNN_WITNESS.g_a(h_1) + CNN_WITNESS.f_b(CNN_WITNESS.second(h_1))
        assert torch.allclose(net(x), summed, atol=1e-12)


def test_a_cnn_witness_is_written_and_read_back(tmp_path):
    outcome = falsify("T3", budget=20, space="cnn", shrink_budget=2)
    assert outcome.found and outcome.candidate.space == "cnn"
    assert outcome.verdict.status is Status.VIOLATED
    write_witness(outcome, tmp_path)
    assert load_witness(tmp_path / "checkpoint") == outcome.candidate
    data = json.loads((tmp_path / "witness.json").read_text())
    assert data["space"] == "cnn" and data["candidate"]["space"] == "cnn"
    kinds = {m["kind"] for entry in data["measurements"].values() for m in entry}
    assert kinds == {"certified", "attack"}
    report = (tmp_path / "report.md").read_text()
    assert "CNNs on 1x4x4 images" in report and "Verdict: **violated**" in report
