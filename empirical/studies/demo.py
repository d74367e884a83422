"""The demo: the paper's question on the embedded default, end to end.

Algorithm 1 (THEORY.md section 6) on scikit-learn's digits with a 7-layer CNN: a normal
and a PGD-robust model, the robust first part under the normally trained rest, the
layer-to-layer dependency on attacked data, T2 judged. Steps 1-3 are repeated with the
robust model started from independent initial weights (``out/independent-init``; THEORY.md
section 6 says ``Acc_sr`` depends strongly on that choice); then ``check`` runs on the
robust model at the demo's split (every result judged). Steps 1-3 are repeated at two
more training seeds under both initialisations (``out/seeds``), so that the report states
how ``Acc``, ``Acc*``, ``Acc_sr`` and ``gAcc`` move with training noise
(:mod:`semirobust.empirical.studies.seed_spread`).

With two workers a second process runs the second seed's two runs (:func:`worker_share`)
while this one runs the rest. The split leaves this process about 2.5 times the worker's
work: a third program keeping one core busy then slows the demo by well under 1.5x, while
equal halves would be slowed 1.5x even with perfectly fair sharing of the cores, and more
in practice (BENCHMARKS.md "Demo under load").
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass, replace
from pathlib import Path

import torch

from semirobust.empirical.attacks import AttackSettings
from semirobust.empirical.data import load_dataset
from semirobust.empirical.model.checkpoint import load_checkpoint
from semirobust.empirical.model.stages import count_weight_layers
from semirobust.empirical.reports.writers import copy_folder_atomic
from semirobust.empirical.studies.algorithm1 import (
    Algorithm1Config,
    Algorithm1Result,
    TrainingOutcome,
    run_algorithm1,
    run_training_outcome,
)
from semirobust.empirical.studies.check import CheckResult, CheckSettings, run_check
from semirobust.empirical.studies.seed_spread import (
    INDEPENDENT_FOLDER,
    SEEDS_FOLDER,
    Pair,
    SeedSpread,
    all_pairs,
    outcomes_in_background,
    run_outcomes,
    run_seed_spread,
    spread_seeds,
)
from semirobust.empirical.studies.training import TrainRecipe
from semirobust.errors import BadInput

DEMO_RECIPE = TrainRecipe(epochs=20, batch_size=64, lr=0.05, milestones=(0.5, 0.75))
DEMO_WIDTH = 12
CHECK_FOLDER = "check"
ROBUST_FOLDER = "robust"
CHECK_SAMPLES = 150
TRAINING_SEEDS = 3


def demo_config(seed: int) -> Algorithm1Config:
    """digits-cnn (width 12) on digits, 20 training epochs (learning rate 0.05, divided by 10
    after epochs 10 and 15), PGD l-inf eps 0.1 (10 steps in every evaluation, 3 in
    adversarial training and finetuning),
    3 weight layers in f_b, 1 trial of at most 10 finetuning epochs, stop at Acc* - 0.03,
    shared init."""
    return Algorithm1Config(
        architecture="digits-cnn", architecture_kwargs={"width": DEMO_WIDTH}, dataset="digits", fb_layers=3, attack="pgd", norm="linf",
        eps=0.1, attack_steps=10, train_attack_steps=3, trials=1, finetune_epochs=10, tolerance=0.03, init="shared",
        estimator="ksg", recipe=DEMO_RECIPE, seed=seed,
    )


def worker_share(seeds: tuple[int, ...]) -> tuple[Pair, ...]:
    """The second process's runs: the second seed under both initialisations (the module
    docstring says why no more)."""
    return ((seeds[1], "shared"), (seeds[1], "independent"))


@dataclass(frozen=True)
class DemoResult:
    """The shared-initialisation run, steps 1-3 under independent initialisation, ``check``
    on the shared run's robust model, and steps 1-3 over the training seeds."""

    shared: Algorithm1Result
    independent: TrainingOutcome
    check: CheckResult
    seeds: SeedSpread


def run_demo(out: Path, *, seed: int, device: torch.device, resume: bool = False, workers: int = 2,
             log: Callable[[str], None] = print) -> DemoResult:
    """Run (or, with ``resume``, continue) Algorithm 1 and the independent-initialisation
    steps 1-3 under ``out``, check the robust model, and repeat steps 1-3 at the other
    training seeds under ``out/seeds``: with ``workers = 2`` :func:`worker_share` in a
    second process meanwhile (on the thread count of this one, so the numbers do not
    depend on ``workers``) and the rest here after the check, with 1 all of them afterwards."""
    out = Path(out)
    dataset = load_dataset("digits")
    config = demo_config(seed)
    seeds = spread_seeds(seed, TRAINING_SEEDS)
    if workers not in (1, 2):
        raise BadInput(f"--workers {workers}: expected 1 or 2")
    share = worker_share(seeds) if workers == 2 else ()
    background = (outcomes_in_background(config, "digits", out / SEEDS_FOLDER, share, device=device,
                                         resume=resume, threads=torch.get_num_threads())
                  if share else nullcontext())
    with background:
        shared = run_algorithm1(config, dataset, out, device=device, resume=resume, log=log)
        independent_out = out / INDEPENDENT_FOLDER
        if not (independent_out / "normal").exists():
            # same seed, same normal initial weights and recipe: the normal model is identical
            copy_folder_atomic(out / "normal", independent_out / "normal")
        independent = run_training_outcome(replace(config, init="independent"), dataset, independent_out,
                                           device=device, resume=True, log=log)
        model, _ = load_checkpoint(out / ROBUST_FOLDER, device)
        settings = CheckSettings(a=count_weight_layers(model) - config.fb_layers, threat=config.threat(),
                                 n=CHECK_SAMPLES, estimator=config.estimator, attack=AttackSettings(seed=seed))
        check = run_check(model, dataset.x_test, dataset.y_test, settings, device=device)
        if share:
            mine = [pair for pair in all_pairs(seeds[1:]) if pair not in share]
            run_outcomes(config, dataset, out / SEEDS_FOLDER, mine, device=device, resume=True, log=log)
    known = {(seed, "shared"): TrainingOutcome.of_run(shared), (seed, "independent"): independent}
    spread = run_seed_spread(config, dataset, out / SEEDS_FOLDER, seeds, device=device, known=known,
                             resume=resume or workers == 2, log=log)
    return DemoResult(shared, independent, check, spread)
