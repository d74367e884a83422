"""Training noise: steps 1-3 over training seeds give the full run's numbers, resume, and
the spread's statistics are what its docstring states; a run's reliability flags are
logged once."""

import json
import multiprocessing
import warnings
from dataclasses import replace

import numpy as np
import pytest
import torch
from scipy import stats
from torch import nn

from semirobust.empirical.attacks.diagnostics import AttackReliabilityWarning
from semirobust.empirical.cli.main import main
from semirobust.empirical.data import load_dataset
from semirobust.empirical.reports.seed_spread import seed_section
from semirobust.empirical.studies.algorithm1 import (
    Algorithm1Config,
    Algorithm1Run,
    TrainingOutcome,
    run_algorithm1,
    run_training_outcome,
)
from semirobust.empirical.studies.seed_spread import (
    SeedSpread,
    all_pairs,
    outcomes_in_background,
    run_outcomes,
    run_seed_spread,
    spread_seeds,
)
from semirobust.empirical.studies.training import TrainRecipe
from semirobust.errors import BadInput

CPU = torch.device("cpu")
TINY_CLI = [
    "--arch", "mlp", "--arch-kwargs", '{"depth": 3, "width": 16}', "--dataset", "gaussian-mixture",
    "--fb-layers", "2", "--eps", "0.05", "--steps", "2", "--epochs", "2", "--train-epochs", "2",
    "--lr", "0.05", "--batch-size", "128", "--device", "cpu", "--seed", "0", "--trials", "1",
    "--training-seeds", "2",
]
TINY = Algorithm1Config(
    architecture="mlp", architecture_kwargs={"depth": 3, "width": 16}, dataset="gaussian-mixture",
    fb_layers=2, eps=0.05, attack_steps=2, trials=1, finetune_epochs=2, tolerance=0.02,
    recipe=TrainRecipe(epochs=2, batch_size=128, lr=0.05), seed=0,
)


@pytest.fixture(scope="module")
def dataset():
    return load_dataset("gaussian-mixture", seed=0)


@pytest.fixture(scope="module")
def spread(dataset, tmp_path_factory):
    out = tmp_path_factory.mktemp("seeds")
    return out, run_seed_spread(TINY, dataset, out, spread_seeds(0, 3), device=CPU, progress=False,
                                log=lambda line: None)


def test_steps_1_to_3_alone_equal_the_full_runs_trial_1(dataset, tmp_path):
    for init in ("shared", "independent"):
        config = replace(TINY, init=init, seed=10)
        full = TrainingOutcome.of_run(run_algorithm1(config, dataset, tmp_path / f"full-{init}", device=CPU,
                                                     progress=False, log=lambda line: None))
        alone = run_training_outcome(config, dataset, tmp_path / f"alone-{init}", device=CPU,
                                     progress=False, log=lambda line: None)
        assert alone == full


def test_every_seed_and_init_is_run_and_the_normal_model_is_shared(spread):
    out, result = spread
    assert result.seeds == (0, 10, 20)
    assert sorted(result.outcomes) == [(s, i) for s in (0, 10, 20) for i in ("independent", "shared")]
    for seed in result.seeds:
        shared, independent = result.outcomes[seed, "shared"], result.outcomes[seed, "independent"]
        assert shared.acc == independent.acc  # one normal model per seed
        assert shared.seed == independent.seed == seed
        assert (out / f"seed_{seed}" / "independent-init" / "normal" / "model.safetensors").read_bytes() == \
            (out / f"seed_{seed}" / "normal" / "model.safetensors").read_bytes()
    # different seeds train different models
    assert len({result.outcomes[s, "shared"].acc_star.value for s in result.seeds}
               | {result.outcomes[s, "shared"].acc_sr.value for s in result.seeds}) > 1


def test_resume_reuses_every_outcome_and_known_ones_are_not_rerun(spread, dataset):
    out, result = spread
    lines = []
    again = run_seed_spread(TINY, dataset, out, result.seeds, device=CPU, resume=True, progress=False,
                            log=lines.append)
    assert again.outcomes == result.outcomes
    assert sum("reusing the finished outcome" in line for line in lines) == 6
    marked = {key: replace(o, epochs=99) for key, o in result.outcomes.items() if key[0] == 0}
    known = run_seed_spread(TINY, dataset, out, result.seeds, device=CPU, resume=True, known=marked,
                            progress=False, log=lambda line: None)
    assert known.outcomes[0, "shared"].epochs == 99


def test_spread_statistics_are_the_sample_mean_sd_and_t_interval(spread):
    _, result = spread
    for init in ("shared", "independent"):
        s = result.spread("Acc_sr", init)
        values = np.array([result.outcomes[seed, init].acc_sr.value for seed in result.seeds])
        assert s.values == tuple(values)
        assert s.mean == pytest.approx(values.mean(), abs=1e-12)
        assert s.sd == pytest.approx(values.std(ddof=1), abs=1e-12)
        half = stats.t.ppf(0.975, 2) * values.std(ddof=1) / np.sqrt(3)
        assert s.mean_interval() == pytest.approx((values.mean() - half, values.mean() + half), abs=1e-12)
    differences = result.paired_difference("Acc_sr")
    assert differences == tuple(result.outcomes[s, "shared"].acc_sr.value
                                - result.outcomes[s, "independent"].acc_sr.value for s in result.seeds)


def test_report_section_names_every_seed_and_the_paired_comparison(spread):
    _, result = spread
    text = seed_section(result, "seeds")
    assert "| init | quantity | seed 0 | seed 10 | seed 20 |" in text
    assert text.count("| shared | Acc_sr |") == 1 and text.count("| independent | Acc_sr |") == 1
    assert "shared higher on" in text and "Student-t 95% over the training seeds" in text
    json.dumps(result.to_dict())  # JSON-ready


def test_a_spread_needs_two_seeds_and_a_corrupt_outcome_is_named(spread, dataset):
    with pytest.raises(BadInput, match="at least 2 seeds"):
        spread_seeds(0, 1)
    out, result = spread
    path = out / "seed_10" / "outcome.json"
    text = path.read_text()
    try:
        path.write_text(text[: len(text) // 2])
        with pytest.raises(BadInput, match="outcome.json is corrupt.*delete it and --resume redoes it"):
            run_seed_spread(TINY, dataset, out, result.seeds, device=CPU, resume=True, progress=False,
                            log=lambda line: None)
    finally:
        path.write_text(text)


def test_seed_spread_round_trips_through_json(spread):
    _, result = spread
    data = json.loads(json.dumps(result.to_dict()))
    outcomes = [TrainingOutcome.from_dict(o) for o in data["outcomes"]]
    assert {(o.seed, o.init): o for o in outcomes} == dict(result.outcomes)
    assert isinstance(SeedSpread(result.seeds, dict(result.outcomes)).spread("gAcc", "shared").sd, float)


def test_algorithm1_with_training_seeds_reports_the_spread(tmp_path):
    out = tmp_path / "run"
    assert main(["algorithm1", *TINY_CLI, "--out", str(out)]) == 0
    data = json.loads((out / "seed_spread.json").read_text())
    assert data["seeds"] == [0, 10] and len(data["outcomes"]) == 4 and data["command"] == "algorithm1"
    results = json.loads((out / "results.json").read_text())
    shared_0 = next(o for o in data["outcomes"] if (o["seed"], o["init"]) == (0, "shared"))
    assert shared_0["Acc_sr"] == results["trials"][0]["Acc_sr"]  # the run itself, not a rerun
    assert (out / "seeds" / "seed_0" / "independent-init" / "normal" / "model.safetensors").read_bytes() == \
        (out / "normal" / "model.safetensors").read_bytes()
    assert "## Training noise: 2 training seeds (trial 1)" in (out / "report.md").read_text()
    assert main(["algorithm1", *TINY_CLI, "--out", str(out), "--resume"]) == 0


def test_the_background_worker_gives_the_in_process_numbers(spread, dataset, tmp_path):
    _, in_process = spread
    out = tmp_path / "background"
    with outcomes_in_background(TINY, "gaussian-mixture", out, all_pairs((0, 10)), device=CPU, resume=False,
                                threads=torch.get_num_threads()):
        pass
    lines = []
    read = run_seed_spread(TINY, dataset, out, (0, 10), device=CPU, resume=True, progress=False, log=lines.append)
    assert sum("reusing the finished outcome" in line for line in lines) == 4  # nothing redone
    assert read.outcomes == {key: o for key, o in in_process.outcomes.items() if key[0] in (0, 10)}


def test_the_worker_is_stopped_when_the_body_fails(tmp_path):
    with pytest.raises(RuntimeError, match="body failed"), \
            outcomes_in_background(TINY, "gaussian-mixture", tmp_path, all_pairs((0, 10)), device=CPU,
                                   resume=False, threads=1):
        raise RuntimeError("body failed")
    assert not [p for p in multiprocessing.active_children() if p.name == "semirobust-seed-spread"]


def test_pairs_split_between_the_worker_and_this_process_give_the_same_numbers(spread, dataset, tmp_path):
    """The demo's split: the worker takes seed 10 shared, this process seed 10 independent
    meanwhile (copying the worker's normal model if it is finished, else training the same
    one), and the final pass reads both."""
    _, in_process = spread
    out = tmp_path / "split"
    with outcomes_in_background(TINY, "gaussian-mixture", out, [(10, "shared")], device=CPU, resume=False,
                                threads=torch.get_num_threads()):
        mine = run_outcomes(TINY, dataset, out, [(10, "independent")], device=CPU, progress=False, log=print)
    assert mine[10, "independent"] == in_process.outcomes[10, "independent"]
    lines = []
    read = run_seed_spread(TINY, dataset, out, (0, 10), device=CPU, resume=True, progress=False,
                           known={(0, init): in_process.outcomes[0, init] for init in ("shared", "independent")},
                           log=lines.append)
    assert sum("reusing the finished outcome" in line for line in lines) == 2
    assert read.outcomes == {key: o for key, o in in_process.outcomes.items() if key[0] in (0, 10)}
    assert (out / "seed_10" / "normal" / "model.safetensors").read_bytes() == \
        (out / "seed_10" / "independent-init" / "normal" / "model.safetensors").read_bytes()


def test_reliability_flags_are_counted_and_logged_once_not_warned_per_evaluation(dataset, tmp_path):
    """A network with zero input gradients raises the zero-gradient flag in every attack
    evaluation: the run keeps it in each evaluation and logs one line with the count,
    instead of one Python warning per evaluation."""
    lines = []
    run = Algorithm1Run(tmp_path, TINY, dataset, CPU, progress=False, log=lines.append)
    flat = nn.Sequential(nn.Flatten(), nn.Linear(dataset.x_test[0].numel(), dataset.num_classes))
    nn.init.zeros_(flat[1].weight)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        evaluations = [run.evaluate(flat, seed) for seed in (1, 2)]
    assert not [w for w in caught if issubclass(w.category, AttackReliabilityWarning)]
    assert all("zero-gradient" in {flag.code for flag in e.flags} for e in evaluations)
    run.log_flags()
    assert len(lines) == 1 and "zero-gradient in 2" in lines[0] and "of 2 attack evaluations" in lines[0]
