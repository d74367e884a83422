"""The judge on hand-built measurement sets: holds, violated, supported, contradicted,
straddling, premise unmet, not applicable, and what each kind of measurement may decide
(semirobust.theory.judge, THEORY.md 7)."""

from __future__ import annotations

import json
import math
import sys

import pytest
from hypothesis import given
from hypothesis import strategies as st

from semirobust.errors import BadInput
from semirobust.theory import RESULTS, Kind, Measurement, Status, judge
from semirobust.theory.intervals import Interval, enclose
from semirobust.theory.quantities import DELTA_A, GAMMA_A, LIPSCHITZ_B, RHO

READOUT = {"readout": "trained rest of the network"}


def measure(name: str, value: float, kind: Kind, unit: str = "logits", width: float = 0.0,
            estimator: str = "test") -> Measurement:
    return Measurement(name, value, (value - width, value + width), kind, estimator, unit,
                       READOUT)


def t2_measurements(*, gamma_a=2.0, gamma_b=20.0, rho=3.0, gap=-4.0, rho_width=0.5,
                    kind_b=Kind.ATTACK, kind_a=Kind.ATTACK, layers=(6, 7, 8), u=2.0,
                    kind_rho=Kind.ESTIMATE) -> dict:
    """T2 on layers 6..8 with U_j = 2: A2 asks gap <= -3, C9 asks rho <= 3 nats."""
    ms = {"gamma_a": measure("gamma_a", gamma_a, kind_a, width=0.1),
          "gamma_b": measure("gamma_b", gamma_b, kind_b, width=0.1)}
    for j in layers:
        ms[f"rho_{j}"] = measure(f"rho_{j}", rho, kind_rho, "bits", rho_width, "EDGE")
        ms[f"margin_gap_{j}"] = measure(f"margin_gap_{j}", gap, Kind.ATTACK, width=0.1)
        ms[f"U_{j}"] = measure(f"U_{j}", u, Kind.CERTIFIED)
    return ms


def test_t2_decided_by_an_attack_and_estimates_is_supported_never_holds():
    verdict = judge(RESULTS["T2"], t2_measurements())
    assert verdict.status is Status.SUPPORTED
    assert verdict.layers == {"a": 5, "n": 8}
    labels = [p.label for p in verdict.premises]
    assert labels == ["f_a semirobust", "A2 [j = 6]", "A2 [j = 7]", "A2 [j = 8]",
                      "C9 U > -1 [j = 6]", "C9 U > -1 [j = 7]", "C9 U > -1 [j = 8]"]
    # gamma_a > 0 rests on the attack's value (an upper estimate of the infimum)
    assert verdict.premises[0].status is Status.SUPPORTED
    assert verdict.premises[0].relied_on == ("gamma_a",)
    a2 = verdict.premises[1]
    # gap = -4 +- 0.1 against -(1 + 2): margin 1, interval [0.9, 1.1]
    assert a2.measured == -4.0 and a2.threshold == -3.0
    assert a2.margin == pytest.approx(1.0)
    assert (a2.margin_interval.low, a2.margin_interval.high) == pytest.approx((0.9, 1.1))
    # an attack value bounds an infimum from above: gap <= -3.9 is certain
    assert a2.status is Status.HOLDS
    assert a2.decided_by == "attack value (sound side) and certified"
    assert a2.deciding == ("U_6", "margin_gap_6")
    (conclusion,) = verdict.conclusion
    assert conclusion.threshold == pytest.approx(2.0 + 3 * 3.0)
    assert conclusion.margin == pytest.approx(20.0 - 11.0)
    assert conclusion.status is Status.SUPPORTED
    assert conclusion.decided_by == "attack and estimate"
    assert verdict.decided_by == "attack and attack value (sound side) and certified and estimate"
    notes = " ".join(verdict.notes)
    assert "upper estimate of an infimum" in notes and "not a certificate" in notes
    assert "C6 units" in notes and "C2" in notes


def test_t2_refuted_by_an_attack_with_estimated_rho_is_contradicted_not_violated():
    verdict = judge("T2", t2_measurements(gamma_b=5.0))
    assert verdict.status is Status.CONTRADICTED
    assert verdict.conclusion[0].status is Status.CONTRADICTED
    (conclusion,) = verdict.conclusion
    assert conclusion.margin == pytest.approx(5.0 - 11.0)
    assert conclusion.margin_interval.high < 0


def test_t2_interval_straddling_the_threshold_is_inconclusive():
    # threshold 2 + 3*3 = 11 with rho intervals +-0.5 each: [9.4, 12.6] around gamma_b = 11
    verdict = judge("T2", t2_measurements(gamma_b=11.0))
    assert verdict.status is Status.INCONCLUSIVE
    (conclusion,) = verdict.conclusion
    assert conclusion.margin_interval.low < 0 < conclusion.margin_interval.high
    assert conclusion.decided_by == ""
    assert any("straddles" in note for note in verdict.notes)


def test_t2_premise_unmet_when_a2_fails():
    # gap's attack value -0.5 is an upper estimate: the true gap may be lower, so A2
    # fails only at face value (contradicted), and the verdict says what decided it
    verdict = judge("T2", t2_measurements(gap=-0.5))
    assert verdict.status is Status.PREMISES_UNMET
    assert all(p.status is Status.CONTRADICTED for p in verdict.premises[1:4])
    assert verdict.decided_by == "attack"
    assert any("premises unmet" in note for note in verdict.notes)
    # the conclusion is still evaluated and reported
    assert verdict.conclusion[0].status is Status.SUPPORTED


def test_a_certainly_failing_premise_decides_premises_unmet_with_its_kind():
    verdict = judge("T2", t2_measurements(gamma_a=-1.0))  # attack value of an infimum < 0
    assert verdict.premises[0].status is Status.VIOLATED
    assert verdict.status is Status.PREMISES_UNMET
    assert verdict.decided_by == "attack value (sound side)"


def test_premise_straddling_makes_the_verdict_inconclusive():
    verdict = judge("T2", t2_measurements(gamma_a=0.05))  # 0.05 +- 0.1 straddles 0
    assert verdict.premises[0].status is Status.INCONCLUSIVE
    assert verdict.status is Status.INCONCLUSIVE


def test_certified_lower_bound_decides_holds_but_never_violated():
    holds = judge("T2", t2_measurements(kind_b=Kind.CERTIFIED, kind_a=Kind.ATTACK,
                                        kind_rho=Kind.EXACT))
    assert holds.conclusion[0].status is Status.HOLDS
    assert holds.conclusion[0].decided_by == "attack value (sound side) and certified and exact"
    # gamma_a > 0 only by an attack's value: the theorem is supported, not held
    assert holds.status is Status.SUPPORTED
    with_estimates = judge("T2", t2_measurements(kind_b=Kind.CERTIFIED))
    assert with_estimates.conclusion[0].status is Status.SUPPORTED
    # a certified lower bound on gamma_b below the threshold says nothing: the true value
    # may be higher, so the judge must not call it violated
    loose = judge("T2", t2_measurements(gamma_b=5.0, kind_b=Kind.CERTIFIED))
    assert loose.conclusion[0].status is Status.INCONCLUSIVE


def test_certified_gamma_a_alone_cannot_confirm_the_bound():
    # gamma_a certified only from below: the bound gamma_a + sum rho has no upper end
    verdict = judge("T2", t2_measurements(kind_a=Kind.CERTIFIED))
    assert verdict.conclusion[0].status is Status.INCONCLUSIVE


def test_decided_only_by_estimates_says_so():
    ms = {"gamma_6": measure("gamma_6", 1.0, Kind.ATTACK),
          "gamma_7": measure("gamma_7", 9.0, Kind.CERTIFIED),
          "rho_7": measure("rho_7", 3.0, Kind.ESTIMATE, "bits", 0.5),
          "margin_gap_7": measure("margin_gap_7", -4.0, Kind.ATTACK),
          "U_7": measure("U_7", 2.5, Kind.CERTIFIED)}
    verdict = judge("L1", ms)
    assert verdict.status is Status.SUPPORTED
    (conclusion,) = verdict.conclusion
    # L1's chain holds in nats (C9): the threshold reads rho_7 = 3 bits as 3 ln 2 nats
    assert conclusion.threshold == pytest.approx(1.0 + 3.0 * math.log(2))
    assert conclusion.decided_by == "estimate"
    assert conclusion.relied_on == ("rho_7",)
    assert any("decided only by estimates (rho_7)" in note for note in verdict.notes)


def lipschitz_measurements(*, gamma_kind=Kind.ATTACK, delta_kind=Kind.CERTIFIED,
                           gamma_whole=0.5) -> dict:
    return {"gamma_whole": measure("gamma_whole", gamma_whole, gamma_kind),
            "clean_margin": measure("clean_margin", 4.0, Kind.EXACT),
            "L_b": Measurement("L_b", 2.0, (2.0, 2.0), Kind.CERTIFIED, "spectral product",
                               LIPSCHITZ_B.unit),
            "Delta_a": Measurement("Delta_a", 1.0, (1.0, 1.0), delta_kind, "IBP", DELTA_A.unit)}


def test_sound_result_violated_with_certified_inputs_is_a_bug_report():
    # bound = 4 - sqrt(2) * 2 * 1 = 1.17 > attack value 0.5 of the infimum
    verdict = judge("LIP", lipschitz_measurements())
    assert verdict.status is Status.VIOLATED
    assert verdict.conclusion[0].decided_by == "attack value (sound side) and certified and exact"
    assert verdict.conclusion[0].deciding == ("Delta_a", "L_b", "clean_margin", "gamma_whole")
    assert verdict.conclusion[0].threshold == pytest.approx(4 - 2 * math.sqrt(2))
    assert any(note.startswith("BUG REPORT") for note in verdict.notes)


def test_sound_result_violated_through_an_attack_estimate_of_delta_is_not_a_bug_report():
    verdict = judge("LIP", lipschitz_measurements(delta_kind=Kind.ATTACK))
    assert verdict.status is Status.CONTRADICTED
    assert verdict.conclusion[0].relied_on == ("Delta_a",)
    assert not any(note.startswith("BUG REPORT") for note in verdict.notes)
    assert any("not a bug report" in note for note in verdict.notes)


def test_sound_result_holds_with_certified_inputs():
    verdict = judge("LIP", lipschitz_measurements(gamma_kind=Kind.CERTIFIED, gamma_whole=2.0))
    assert verdict.status is Status.HOLDS
    assert verdict.conclusion[0].decided_by == "certified and exact"


def test_an_estimated_clean_margin_cannot_decide_the_sound_result():
    ms = lipschitz_measurements()
    ms["clean_margin"] = measure("clean_margin", 4.0, Kind.ESTIMATE, width=0.1)
    verdict = judge("LIP", ms)
    assert verdict.status is Status.CONTRADICTED
    assert not any(note.startswith("BUG REPORT") for note in verdict.notes)


def test_rho_in_nats_is_converted_to_bits():
    ms = t2_measurements(rho_width=0.0)
    ms["rho_6"] = measure("rho_6", math.log(2) * 3.0, Kind.ESTIMATE, "nats")
    verdict = judge("T2", ms)
    assert verdict.conclusion[0].threshold == pytest.approx(11.0)
    assert any("rho_6 converted from nats to bits" in note for note in verdict.notes)


def test_t3_needs_layers_and_uses_the_closed_form():
    ms = {"gamma_a": measure("gamma_a", 1.0, Kind.CERTIFIED),
          "gamma_b": measure("gamma_b", 3.0, Kind.ATTACK)}
    with pytest.raises(BadInput, match="pass layers"):
        judge("T3", ms)
    verdict = judge("T3", ms, layers={"a": 2, "n": 4})
    # 1 + 1 * (4-1-2)(4-2)/2 = 2 <= 3; gamma_a certified from below has no upper end
    assert verdict.conclusion[0].threshold == pytest.approx(2.0)
    assert verdict.conclusion[0].status is Status.INCONCLUSIVE
    ms["gamma_a"] = measure("gamma_a", 1.0, Kind.ATTACK)
    assert judge("T3", ms, layers={"a": 2, "n": 4}).status is Status.SUPPORTED
    ms = {"gamma_a": measure("gamma_a", 1.0, Kind.EXACT), "gamma_b": measure("gamma_b", 3.0, Kind.EXACT)}
    assert judge("T3", ms, layers={"a": 2, "n": 4}).status is Status.HOLDS
    assert judge("T3", ms, layers={"a": 1, "n": 4}).status is Status.VIOLATED  # 1 + 3 = 4 > 3


def test_t1_and_l2_expand_their_index_ranges():
    ms = {f"gamma_{i}": measure(f"gamma_{i}", v, Kind.ATTACK)
          for i, v in zip(range(1, 5), (1.0, 2.0, 0.5, 4.0))}
    t1 = judge("T1", ms)
    assert t1.layers == {"j": 4}
    assert len(t1.conclusion) == 3                       # gamma_i >= gamma_4, i = 1..3
    assert t1.status is Status.CONTRADICTED              # every gamma_i < gamma_4 (attacks)
    l2 = judge("L2", ms)
    assert l2.conclusion[0].threshold == pytest.approx(3.5)
    assert l2.status is Status.SUPPORTED


def test_one_dictionary_serves_every_result_with_explicit_layers():
    ms = t2_measurements()
    ms.update({f"gamma_{i}": measure(f"gamma_{i}", 1.0 + i, Kind.ATTACK) for i in range(1, 9)})
    ms.update({"gamma_whole": ms["gamma_b"], **{k: v for k, v in lipschitz_measurements().items()
                                                 if k != "gamma_whole"}})
    layers = {"T1": {"j": 8}, "L1": {"n": 8}, "T2": {"a": 5, "n": 8}, "L2": {"n": 8},
              "T3": {"a": 5, "n": 8}, "LIP": {}}
    for name, result in RESULTS.items():
        verdict = judge(result, ms, layers=layers[name])
        json.dumps(verdict.to_dict(), allow_nan=False)
        assert verdict.describe().startswith(f"### {name}:")


def test_to_dict_is_json_ready_with_infinite_ends_as_null():
    verdict = judge("T2", t2_measurements(kind_b=Kind.CERTIFIED))
    data = json.loads(json.dumps(verdict.to_dict(), allow_nan=False))
    gamma_b = next(m for m in data["measurements"] if m["name"] == "gamma_b")
    assert gamma_b["sound_enclosure"] == [19.9, None]
    assert gamma_b["measurements"][0]["estimator"] == "test"
    assert data["status"] == "supported" and data["decided_by"]
    assert data["conclusion"][0]["kinds"]["gamma_b"] == "certified"


def test_a_sandwich_of_certified_and_attack_measurements_is_intersected():
    ms = t2_measurements()
    ms["gamma_b"] = [measure("gamma_b", 15.0, Kind.CERTIFIED), measure("gamma_b", 20.0, Kind.ATTACK)]
    verdict = judge("T2", ms)
    reading = next(r for r in verdict.readings if r.name == "gamma_b")
    assert (reading.sound.low, reading.sound.high) == (15.0, 20.0)
    assert verdict.conclusion[0].kinds["gamma_b"] == "certified + attack"
    # the certified end alone clears the threshold's sound side? gamma_a's upper end is an
    # attack value (sound) and the rhos are estimates: decided by the estimates only
    assert verdict.conclusion[0].decided_by == "estimate"
    ms["gamma_b"] = [measure("gamma_b", 25.0, Kind.CERTIFIED), measure("gamma_b", 20.0, Kind.ATTACK)]
    with pytest.raises(BadInput, match="contradict"):
        judge("T2", ms)


def test_missing_readout_is_noted_under_c1():
    ms = t2_measurements()
    ms["gamma_a"] = Measurement("gamma_a", 2.0, (2.0, 2.0), Kind.ATTACK, "pgd", "logits")
    assert any("gamma_a names no readout" in n for n in judge("T2", ms).notes)


@pytest.mark.parametrize("mutate, message", [
    (lambda ms: ms.pop("rho_7"), "rho_7"),
    (lambda ms: ms.__setitem__("gamma_a", measure("gamma_a", 1.0, Kind.ATTACK, "bits")),
     "accepts 'logits'"),
    (lambda ms: ms.__setitem__("U_6", measure("U_6", 0.0, Kind.ATTACK)), "kind 'attack'"),
    (lambda ms: ms.__setitem__("gamma_b", 3.0), "must be a Measurement"),
    (lambda ms: ms.__setitem__("gamma_b", []), "must be a Measurement"),
])
def test_bad_measurements_are_named(mutate, message):
    ms = t2_measurements()
    mutate(ms)
    with pytest.raises(BadInput, match=message):
        judge("T2", ms, layers={"a": 5, "n": 8})


def test_bad_result_and_layers_are_named():
    with pytest.raises(BadInput, match="not one of T1, L1, T2, L2, T3, LIP"):
        judge("T9", {})
    with pytest.raises(BadInput, match="exactly"):
        judge("T2", t2_measurements(), layers={"a": 5})
    with pytest.raises(BadInput, match="empty range"):
        judge("T2", t2_measurements(), layers={"a": 8, "n": 8})


def test_noncontiguous_family_is_missing_a_member():
    with pytest.raises(BadInput, match="rho_7"):
        judge("T2", {k: v for k, v in t2_measurements().items() if k != "rho_7"})


finite = st.floats(-50, 50, allow_nan=False)


@given(st.lists(st.tuples(finite, finite), min_size=3, max_size=3),
       st.lists(st.floats(0, 1), min_size=3, max_size=3))
def test_enclosure_contains_every_sampled_value(bounds, weights):
    """Sampled containment: T2- and LIP-shaped expressions at points inside the intervals."""
    intervals = [Interval(min(b), max(b)) for b in bounds]
    x, y, z = GAMMA_A.symbol, RHO.member(6), LIPSCHITZ_B.symbol
    env = dict(zip((x, y, z), intervals))
    point = {s: iv.low + w * (iv.high - iv.low) for (s, iv), w in zip(env.items(), weights)}
    for expr in (x - 2 * y + 3, x - math.sqrt(2) * y * z, -(1 + z) - x):
        box = enclose(expr, env)
        value = float(expr.subs(point))
        assert box.low - 1e-9 <= value <= box.high + 1e-9


def test_units_of_every_term_are_shown():
    verdict = judge("T2", t2_measurements())
    (conclusion,) = verdict.conclusion
    assert conclusion.units == {"gamma_a": "logits", "gamma_b": "logits", "rho_6": "bits",
                                "rho_7": "bits", "rho_8": "bits"}
    assert "gamma_a, gamma_b: logits" in verdict.describe()


def test_a_layer_range_without_instance_is_not_applicable():
    verdict = judge("T1", {"gamma_1": measure("gamma_1", 1.0, Kind.ATTACK)})
    assert verdict.status is Status.NOT_APPLICABLE
    assert "no instance" in verdict.notes[0]
    assert verdict.to_dict()["status"] == "not applicable"


def t2_points(gamma_a: float, rho: float, gamma_b: float) -> dict:
    """T2 measurements without width, exact: only float rounding separates the two sides
    (U_j large enough for C9 at every scale)."""
    u = 10.0 * max(rho, 1.0)
    return t2_measurements(gamma_a=gamma_a, gamma_b=gamma_b, rho=rho, rho_width=0.0, u=u,
                           gap=-(u + 2.0), kind_rho=Kind.EXACT) | {
        "gamma_a": measure("gamma_a", gamma_a, Kind.EXACT),
        "gamma_b": measure("gamma_b", gamma_b, Kind.EXACT),
    }


def test_sides_equal_in_exact_arithmetic_are_not_violated_by_float_rounding():
    # 0.7 >= 0.1 + 0.2 + 0.2 + 0.2 is an equality; in floats the right side is 0.7 + 5.6e-17
    verdict = judge("T2", t2_points(gamma_a=0.1, rho=0.2, gamma_b=0.7))
    (conclusion,) = verdict.conclusion
    assert -1e-16 < conclusion.margin < 0
    assert conclusion.status is Status.HOLDS and conclusion.within_rounding
    assert any("equal up to float rounding" in note for note in verdict.notes)


@pytest.mark.parametrize("scale", [1e-9, 1.0, 1e9])
@pytest.mark.parametrize("relative, status", [(1e-15, Status.HOLDS), (1e-6, Status.VIOLATED)])
def test_rounding_tolerance_absorbs_1e_15_relative_and_never_1e_6(scale, relative, status):
    """gamma_b short of gamma_a + 3 rho = 11 * scale by ``relative``: a 1e-15 shortfall is
    rounding, a 1e-6 shortfall a violation, at every scale."""
    gamma_b = 11 * scale * (1 - relative)
    verdict = judge("T2", t2_points(gamma_a=2 * scale, rho=3 * scale, gamma_b=gamma_b))
    (conclusion,) = verdict.conclusion
    assert conclusion.margin < 0 and conclusion.status is status
    assert conclusion.within_rounding is (status is Status.HOLDS)
    # gamma_b - gamma_a - rho_6 - rho_7 - rho_8: 4 additions, 4 negations, 5 factors' own
    # roundings -> k = 17 roundings of eps each, times the terms' magnitude
    magnitude = gamma_b + 2 * scale + 3 * 3 * scale
    assert conclusion.rounding_tolerance == pytest.approx(17 * sys.float_info.epsilon * magnitude)


def test_a_strict_premise_at_zero_stays_violated_and_a_tiny_positive_one_holds():
    assert judge("T2", t2_points(gamma_a=0.0, rho=3.0, gamma_b=20.0)).premises[0].status \
        is Status.VIOLATED
    tiny = judge("T2", t2_points(gamma_a=1e-300, rho=3.0, gamma_b=20.0)).premises[0]
    assert tiny.status is Status.HOLDS and not tiny.within_rounding


def test_the_rounding_tolerance_is_stated_in_the_json_and_the_table():
    verdict = judge("T2", t2_points(gamma_a=0.1, rho=0.2, gamma_b=0.7))
    conclusion = verdict.to_dict()["conclusion"][0]
    assert conclusion["rounding_tolerance"] == verdict.conclusion[0].rounding_tolerance > 0
    assert conclusion["within_rounding"] is True
    table = verdict.describe()
    assert "margin (± rounding tolerance)" in table
    assert f"±{verdict.conclusion[0].rounding_tolerance:.1g} | holds" in table


def test_an_interval_that_reaches_0_within_rounding_is_inconclusive_not_violated():
    # gamma_b in [0.7 - 1, 0.7] (attack: only its upper end is sound) against the float
    # 0.1 + 3 * 0.2 = 0.7 + 5.6e-17: the margin interval ends at 0 up to rounding
    ms = t2_points(gamma_a=0.1, rho=0.2, gamma_b=0.7)
    ms["gamma_b"] = Measurement("gamma_b", 0.7, (0.7 - 1, 0.7), Kind.ATTACK, "test", "logits",
                                READOUT)
    verdict = judge("T2", ms)
    (conclusion,) = verdict.conclusion
    assert conclusion.status is Status.INCONCLUSIVE and conclusion.within_rounding
    assert any("reaches 0 within the float rounding tolerance" in note for note in verdict.notes)


def test_t1_with_one_measurement_under_two_names_holds_by_identity():
    """Canonical readouts: gamma_i and gamma_j are one measurement of one function; the
    judge reads their difference as exactly 0 instead of as two independent intervals."""
    one = measure("gamma_whole", 1.5, Kind.ATTACK, width=0.3)
    ms = {f"gamma_{i}": Measurement(f"gamma_{i}", one.value, one.interval, one.kind,
                                    one.estimator, one.unit, one.settings) for i in (1, 2, 3)}
    verdict = judge("T1", ms, layers={"j": 3})
    assert [c.status for c in verdict.conclusion] == [Status.HOLDS, Status.HOLDS]
    assert all(c.decided_by == "identity (one measurement under two names)"
               for c in verdict.conclusion)
    assert verdict.status is Status.SUPPORTED  # the premise gamma_3 > 0 rests on an attack
    assert any("one measurement entered under 3 names" in n for n in verdict.notes)
    # two different measurements with the same numbers are not one quantity
    ms["gamma_1"] = measure("gamma_1", 1.5, Kind.ATTACK, width=0.3, estimator="other")
    assert judge("T1", ms, layers={"j": 3}).conclusion[0].status is Status.INCONCLUSIVE


def test_u_at_or_below_minus_one_leaves_the_premises_unmet():
    # U = -1 would let a zero gap meet A2 (C9)
    verdict = judge("T2", t2_measurements(u=-1.0, gap=-0.5))
    c9 = [p for p in verdict.premises if p.label.startswith("C9 U > -1")]
    assert c9 and all(p.status is Status.VIOLATED for p in c9)
    assert all(p.status is Status.HOLDS for p in verdict.premises if p.label.startswith("A2"))
    assert verdict.status is Status.PREMISES_UNMET


def test_rho_above_one_plus_u_nats_makes_the_premise_set_contradictory():
    # U = 2: C9 allows rho <= 3 nats = 4.33 bits; rho = 6 +- 0.5 bits = 4.16 nats at least
    verdict = judge("T2", t2_measurements(rho=6.0, gamma_b=40.0))
    assert verdict.status is Status.PREMISES_CONTRADICTORY
    (c6, *_) = verdict.consistency
    assert c6.statement == "ln2*rho_6 <= U_6 + 1"
    assert c6.measured == pytest.approx(6.0 * math.log(2))
    assert c6.status is Status.CONTRADICTED and c6.decided_by == "estimate"
    assert any("premises contradictory" in n for n in verdict.notes)
    # exactly known rho: the contradiction is certain; at 4 bits (2.77 nats) none
    exact = judge("T2", t2_measurements(rho=6.0, rho_width=0.0, kind_rho=Kind.EXACT))
    assert exact.consistency[0].status is Status.VIOLATED
    assert judge("T2", t2_measurements(rho=4.0)).status is not Status.PREMISES_CONTRADICTORY


def test_units_that_do_not_match_are_refused_naming_the_term():
    import dataclasses

    unjoined = dataclasses.replace(RESULTS["T2"], unit_joins=())
    with pytest.raises(BadInput, match=r"the term U_6 is in logits but -ln2\*rho_6 is in nats"):
        judge(unjoined, t2_measurements())
    # as stated (joined, with the reason) it is judged, and the join is noted
    notes = judge("T2", t2_measurements()).notes
    assert any(n.startswith("C6 units: logits and bits are added as one unit") for n in notes)


def test_joint_confidence_of_the_estimates_is_stated():
    ms = t2_measurements()
    for j in (6, 7, 8):
        ms[f"rho_{j}"] = Measurement(f"rho_{j}", 3.0, (2.5, 3.5), Kind.ESTIMATE, "EDGE", "bits",
                                     {"level": 0.95})
    verdict = judge("T2", ms)
    (conclusion,) = verdict.conclusion
    assert conclusion.relied_on == ("gamma_b", "rho_6", "rho_7", "rho_8")
    assert conclusion.confidence == pytest.approx(1 - 3 * 0.05)
    assert verdict.confidence == pytest.approx(0.85)
    assert "at joint confidence >= 85%" in verdict.describe()


def test_a_sandwich_whose_ends_cross_by_one_rounding_meets_in_a_point_and_beyond_is_refused():
    low = 0.8397000973283787  # a certified bound one ulp above the attack's value (eps = 0)
    high = 0.8397000973283786
    ms = {"gamma_whole": [measure("gamma_whole", low, Kind.CERTIFIED),
                          measure("gamma_whole", high, Kind.ATTACK)],
          **{k: v for k, v in lipschitz_measurements().items() if k != "gamma_whole"}}
    reading = next(r for r in judge("LIP", ms).readings if r.name == "gamma_whole")
    assert reading.sound.high - reading.sound.low == 0.0
    assert high <= reading.sound.low <= low
    ms["gamma_whole"][0] = measure("gamma_whole", high + 1e-12, Kind.CERTIFIED)
    with pytest.raises(BadInput, match="contradict"):
        judge("LIP", ms)
