"""Training noise of Algorithm 1: its numbers over several training seeds (THEORY.md 6).

The sampling intervals of ``Acc``, ``Acc*``, ``Acc_sr`` and ``gAcc`` cover the test set
only; the models themselves move with the training seed (weight draw, batch order, PGD's
random starts). For each training seed ``s`` and each initialisation (``shared``: the
robust model starts from the normal model's initial weights; ``independent``: from its own
draw), steps 1-3 of trial 1 are run (:func:`~semirobust.empirical.studies.algorithm1.run_training_outcome`),
the normal model trained once per seed and shared by both initialisations.

Per initialisation and quantity the spread is the values over the ``S`` seeds, their mean
``m = (1/S) sum_s v_s``, sample standard deviation ``sd = sqrt(sum_s (v_s - m)^2 / (S-1))``
and the Student-t 95% interval ``m -+ t_{S-1} sd / sqrt(S)`` of the mean over training
seeds (a statistical estimate of the expected value over seeds; each ``v_s`` is itself an
attack value, an upper estimate of a robust accuracy). The two initialisations are
compared seed by seed (paired: both use seed ``s``'s normal model) on ``Acc_sr``.

Seeds are ``seed, seed + 10, seed + 20, ...``: Algorithm 1 derives the robust model's
seed and the independent draw from ``seed + 1``, so consecutive seeds would share draws.
"""

from __future__ import annotations

import multiprocessing
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from semirobust.empirical.data import Dataset, load_dataset
from semirobust.empirical.measure.statistics import DEFAULT_LEVEL, mean_interval
from semirobust.empirical.reports.writers import copy_folder_atomic
from semirobust.empirical.studies.algorithm1 import (
    INIT_CHOICES,
    Algorithm1Config,
    TrainingOutcome,
    run_training_outcome,
)
from semirobust.errors import BadInput

SEED_STEP = 10
QUANTITIES = ("Acc", "Acc*", "Acc_sr", "gAcc")
INDEPENDENT_FOLDER = "independent-init"
SEEDS_FOLDER = "seeds"


def spread_seeds(seed: int, count: int) -> tuple[int, ...]:
    """``count`` training seeds ``seed + 10 k`` (module docstring)."""
    if count < 2:
        raise BadInput(f"a spread over training seeds needs at least 2 seeds, got {count}")
    return tuple(seed + SEED_STEP * k for k in range(count))


@dataclass(frozen=True)
class QuantitySpread:
    """One quantity under one initialisation over the training seeds (module docstring)."""

    quantity: str
    init: str
    seeds: tuple[int, ...]
    values: tuple[float, ...]

    @property
    def mean(self) -> float:
        return float(np.mean(self.values))

    @property
    def sd(self) -> float:
        return float(np.std(self.values, ddof=1))

    def mean_interval(self) -> tuple[float, float]:
        """Student-t interval of the mean over training seeds, at ``DEFAULT_LEVEL``."""
        return mean_interval(np.asarray(self.values))

    def to_dict(self) -> dict[str, Any]:
        return {"quantity": self.quantity, "init": self.init, "seeds": list(self.seeds),
                "values": list(self.values), "mean": self.mean, "sd": self.sd,
                "mean_interval": list(self.mean_interval()),
                "interval": f"Student-t {DEFAULT_LEVEL:.0%} over training seeds (estimate)",
                "kind": "estimate over training seeds of attack values (PGD robust accuracies)"}


@dataclass(frozen=True)
class SeedSpread:
    """Training outcomes by ``(seed, init)`` for every seed and both initialisations."""

    seeds: tuple[int, ...]
    outcomes: Mapping[tuple[int, str], TrainingOutcome]

    def spread(self, quantity: str, init: str) -> QuantitySpread:
        values = tuple(_value(self.outcomes[seed, init], quantity) for seed in self.seeds)
        return QuantitySpread(quantity, init, self.seeds, values)

    def paired_difference(self, quantity: str = "Acc_sr") -> tuple[float, ...]:
        """``shared - independent`` per seed (the same normal model on both sides)."""
        return tuple(_value(self.outcomes[s, "shared"], quantity)
                     - _value(self.outcomes[s, "independent"], quantity) for s in self.seeds)

    def to_dict(self) -> dict[str, Any]:
        return {
            "seeds": list(self.seeds),
            "spread": [self.spread(q, init).to_dict() for init in INIT_CHOICES for q in QUANTITIES],
            "Acc_sr_shared_minus_independent": list(self.paired_difference()),
            "outcomes": [self.outcomes[s, init].to_dict() for s in self.seeds for init in INIT_CHOICES],
        }


def _value(outcome: TrainingOutcome, quantity: str) -> float:
    return {"Acc": outcome.acc, "Acc*": outcome.acc_star, "Acc_sr": outcome.acc_sr,
            "gAcc": outcome.gacc}[quantity].value


Pair = tuple[int, str]


def outcome_folder(out: str | Path, seed: int, init: str) -> Path:
    """The run folder of ``(seed, init)``: ``out/seed_S``, or ``out/seed_S/independent-init``."""
    folder = Path(out) / f"seed_{seed}"
    return folder if init == "shared" else folder / INDEPENDENT_FOLDER


def all_pairs(seeds: Sequence[int]) -> tuple[Pair, ...]:
    """Every ``(seed, init)``, seed by seed, shared first."""
    return tuple((seed, init) for seed in seeds for init in INIT_CHOICES)


def run_outcomes(
    config: Algorithm1Config,
    dataset: Dataset,
    out: str | Path,
    pairs: Sequence[Pair],
    *,
    device: torch.device,
    normal_models: Mapping[int, Path] | None = None,
    resume: bool = False,
    progress: bool = True,
    log: Callable[[str], None] = print,
) -> dict[Pair, TrainingOutcome]:
    """Steps 1-3 (trial 1) of ``config`` at each ``(seed, init)`` of ``pairs``, in
    :func:`outcome_folder`. A seed's normal model is trained once where possible: a
    finished one (``normal_models[S]``, a checkpoint folder of that seed's normal model,
    or the other initialisation's, also one another process finished) is copied in first."""
    outcomes = {}
    for seed, init in pairs:
        run_folder = outcome_folder(out, seed, init)
        others = [outcome_folder(out, seed, other) / "normal" for other in INIT_CHOICES if other != init]
        trained = [path for path in [(normal_models or {}).get(seed), *others]
                   if path is not None and (path / "config.json").exists()]
        if trained and not (run_folder / "normal").exists():
            # the same seed trains the same normal model under either initialisation
            copy_folder_atomic(trained[0], run_folder / "normal")
        outcomes[seed, init] = run_training_outcome(
            replace(config, seed=seed, init=init), dataset, run_folder,
            device=device, resume=resume, progress=progress, log=log)
    return outcomes


def run_seed_spread(
    config: Algorithm1Config,
    dataset: Dataset,
    out: str | Path,
    seeds: Sequence[int],
    *,
    device: torch.device,
    known: Mapping[Pair, TrainingOutcome] | None = None,
    normal_models: Mapping[int, Path] | None = None,
    resume: bool = False,
    progress: bool = True,
    log: Callable[[str], None] = print,
) -> SeedSpread:
    """Steps 1-3 (trial 1) of ``config`` at every seed and both initialisations
    (:func:`run_outcomes`); outcomes in ``known`` (a full run's,
    :meth:`TrainingOutcome.of_run`) are taken as they are."""
    known = dict(known or {})
    missing = [pair for pair in all_pairs(seeds) if pair not in known]
    outcomes = run_outcomes(config, dataset, out, missing, device=device, normal_models=normal_models,
                            resume=resume, progress=progress, log=log)
    return SeedSpread(tuple(seeds), {**known, **outcomes})


@contextmanager
def outcomes_in_background(
    config: Algorithm1Config,
    dataset_name: str,
    out: str | Path,
    pairs: Sequence[Pair],
    *,
    device: torch.device,
    resume: bool,
    threads: int,
) -> Iterator[None]:
    """Run :func:`run_outcomes` on ``pairs`` in a second process (spawned, ``threads``
    torch threads, the same numbers as in this one) while the body runs, and wait for it
    after.

    The results travel through the run folders: afterwards, :func:`run_seed_spread` with
    ``resume=True`` reads every finished outcome, and redoes (and reports the error of)
    whatever the worker could not finish. If the body raises, the worker is terminated;
    its writes are atomic, so a later ``--resume`` reuses what it finished."""
    process = multiprocessing.get_context("spawn").Process(
        target=_outcomes_worker,
        args=(config, dataset_name, str(out), tuple(pairs), str(device), resume, threads),
        name="semirobust-seed-spread", daemon=True)
    process.start()
    try:
        yield
    except BaseException:
        process.terminate()
        process.join()
        raise
    process.join()


def _outcomes_worker(config: Algorithm1Config, dataset_name: str, out: str, pairs: tuple[Pair, ...],
                     device: str, resume: bool, threads: int) -> None:
    torch.set_num_threads(threads)
    try:
        run_outcomes(config, load_dataset(dataset_name), out, pairs, device=torch.device(device),
                     resume=resume, progress=False, log=_worker_log)
    except BadInput:
        sys.exit(2)  # the caller's own pass over the same runs meets it and reports it in one line


def _worker_log(line: str) -> None:
    print(f"[seeds] {line}", file=sys.stderr, flush=True)
