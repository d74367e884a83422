"""Long attacks show progress on a terminal's stderr: the inputs attacked so far, and for an
ensemble (AutoAttack's protocol) the stage running and the inputs it still attacks. Where
stderr is not a terminal (a log, a pipe, CI) no bar is drawn, so an error stays one line."""

import sys

import torch
from attack_fixtures import random_network

from semirobust.empirical.attacks import FGSM, PGD, WorstCase
from semirobust.empirical.attacks.evaluation import evaluate_attack
from semirobust.empirical.attacks.threat import ThreatModel


def _inputs(n: int = 40):
    generator = torch.Generator().manual_seed(0)
    return torch.rand(n, 6, generator=generator), torch.randint(0, 3, (n,), generator=generator)


def as_terminal(monkeypatch) -> None:
    """The (captured) stderr reads as a terminal, as a person running the command sees it."""
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True, raising=False)


def test_an_ensemble_names_each_stage_and_the_inputs_left(capsys, monkeypatch):
    as_terminal(monkeypatch)
    model = random_network((6,), 3, seed=0, conv=False)
    x, y = _inputs()
    threat = ThreatModel("linf", 0.3)
    ensemble = WorstCase(threat, stages=(FGSM(threat), PGD(threat, steps=3)), name="two-stage")
    outcome = ensemble.run(model, x, y)
    err = capsys.readouterr().err
    with torch.no_grad():
        clean_unbroken = int((outcome.stage_margins["fgsm"] > 0).sum())
        correct = int((model(x).argmax(1) == y).sum())
    assert "two-stage stages" in err
    assert f"fgsm: {correct} of 40 inputs left unbroken" in err
    assert f"pgd: {clean_unbroken} of 40 inputs left unbroken" in err


def test_evaluation_counts_the_inputs_attacked_and_can_be_silenced(capsys, monkeypatch):
    as_terminal(monkeypatch)
    model = random_network((6,), 3, seed=0, conv=False)
    x, y = _inputs()
    evaluate_attack(model, x, y, PGD(ThreatModel("linf", 0.1), steps=2), batch_size=16)
    err = capsys.readouterr().err
    assert "pgd (inputs attacked)" in err and "/40 " in err  # the bar counts the 40 inputs
    evaluate_attack(model, x, y, PGD(ThreatModel("linf", 0.1), steps=2), batch_size=16, progress=False)
    assert capsys.readouterr().err == ""


def test_no_bar_where_stderr_is_not_a_terminal(capsys):
    model = random_network((6,), 3, seed=0, conv=False)
    x, y = _inputs()
    evaluate_attack(model, x, y, PGD(ThreatModel("linf", 0.1), steps=2), batch_size=16)
    assert capsys.readouterr().err == ""
