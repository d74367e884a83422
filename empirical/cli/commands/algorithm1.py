"""``semirobust algorithm1``: the paper's Algorithm 1 (THEORY.md section 6), resumable.

Writes under ``--out``: ``normal/`` and ``robust/`` checkpoints, ``trials/trial_NNN.json``
(one per finished trial), ``results.json``, the paper's columns as ``table.csv``, ``table.tex`` and
``table.md``, ``report.md`` and ``plots/``. Trained models and finished trials found in
``--out`` are reused with ``--resume``; an interrupted run (even ``kill -9``) loses at
most the trial in progress. With ``--training-seeds N`` (N >= 2), steps 1-3 of trial 1 are
repeated at N training seeds under both initialisations (``--out/seeds/``) and the report
states their spread beside the sampling intervals.

Under ``torchrun --nproc_per_node W -m semirobust.empirical.cli algorithm1 ...`` the W
processes train every model together (each on its part of every batch of
``--batch-size`` samples); rank 0 writes the folder, the tables and the report.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

from semirobust.empirical.attacks import attack_names
from semirobust.empirical.cli.options import (
    add_adversarial_training_options,
    add_attack_options,
    add_common_options,
    add_model_options,
    add_out_folder,
    add_split_options,
    add_threat_options,
    architecture_kwargs,
    non_negative_float,
    positive_float,
    positive_int,
    threat_model,
)
from semirobust.empirical.data import Dataset, load_dataset
from semirobust.empirical.dependency import ESTIMATORS
from semirobust.empirical.model import ArchitectureSpec, build_model
from semirobust.empirical.model.stages import count_weight_layers, split_network
from semirobust.empirical.reports.algorithm1 import write_algorithm1_report, write_paper_table
from semirobust.empirical.reports.seed_spread import seed_section
from semirobust.empirical.reports.writers import run_metadata, write_json_atomic
from semirobust.empirical.runtime.device import resolve_device
from semirobust.empirical.runtime.distributed import Processes, data_parallel_processes
from semirobust.empirical.studies.algorithm1 import (
    INIT_CHOICES,
    Algorithm1Config,
    TrainingOutcome,
    run_algorithm1,
)
from semirobust.empirical.studies.seed_spread import SEEDS_FOLDER, run_seed_spread, spread_seeds
from semirobust.empirical.studies.training import TrainRecipe
from semirobust.errors import BadInput


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("algorithm1", description=__doc__)
    add_model_options(parser, arch_default="digits-cnn", dataset_default="digits")
    add_split_options(parser)
    add_attack_options(parser, attack="pgd", attack_names=attack_names(), steps=10,
                       steps_help="attack steps of every evaluation (and of PGD training unless --train-steps)")
    parser.add_argument("--train-steps", type=positive_int, default=None,
                        help="PGD steps of adversarial training and finetuning (step size 2.5 eps / steps; "
                             "default: --steps)")
    add_threat_options(parser, from_checkpoint=False)
    parser.add_argument("--trials", type=positive_int, default=10)
    parser.add_argument("--epochs", type=positive_int, default=10, help="finetuning epochs per trial (E)")
    parser.add_argument("--tolerance", type=non_negative_float, default=0.02, help="stop at Acc* - k (k, a fraction)")
    parser.add_argument("--init", choices=INIT_CHOICES, default="shared",
                        help="initial weights of the normal and robust models (default: shared)")
    parser.add_argument("--training-seeds", type=positive_int, default=1,
                        help="N >= 2: also run steps 1-3 (trial 1) at N training seeds --seed, "
                             "--seed + 10, ... under both initialisations and report their spread "
                             "(default 1: this run only)")
    parser.add_argument("--estimator", choices=sorted(ESTIMATORS), default="ksg",
                        help="dependency estimator for rho (default: ksg)")
    add_adversarial_training_options(parser)
    parser.add_argument("--train-epochs", type=positive_int, default=TrainRecipe.epochs)
    parser.add_argument("--batch-size", type=positive_int, default=TrainRecipe.batch_size)
    parser.add_argument("--lr", type=positive_float, default=TrainRecipe.lr)
    add_out_folder(parser, help="run folder")
    parser.add_argument("--resume", action="store_true", help="continue the run in --out")
    add_common_options(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    start = time.perf_counter()
    with data_parallel_processes(resolve_device(args.device)) as (processes, device):
        return _run(args, processes, device, start)


def _run(args: argparse.Namespace, processes: Processes, device: torch.device, start: float) -> int:
    kwargs = architecture_kwargs(args.arch_kwargs)
    dataset = load_dataset(args.dataset, seed=args.seed, root=args.data_root)
    threat_model(args, None, dataset.input_shape)  # --eps --norm resolved; warns when eps covers the box
    fb_layers = args.fb_layers if args.fb_layers is not None else _fb_from_split(args, kwargs, dataset)
    config = Algorithm1Config(
        architecture=args.arch, architecture_kwargs=kwargs, dataset=args.dataset, fb_layers=fb_layers,
        attack=args.attack, norm=args.norm, eps=args.eps, attack_steps=args.steps,
        train_attack_steps=args.train_steps, trials=args.trials,
        finetune_epochs=args.epochs, tolerance=args.tolerance, init=args.init, estimator=args.estimator,
        recipe=TrainRecipe(epochs=args.train_epochs, batch_size=args.batch_size, lr=args.lr,
                           method=args.method, trades_beta=args.trades_beta),
        seed=args.seed,
    )
    out = Path(args.out)
    seeds = spread_seeds(args.seed, args.training_seeds) if args.training_seeds > 1 else ()
    if seeds and processes.world_size > 1:
        raise BadInput("--training-seeds runs in one process: run it without torchrun")
    result = run_algorithm1(config, dataset, out, device=device, resume=args.resume, log=_log,
                            metadata=run_metadata(args), processes=processes)
    if not processes.writes:
        return 0
    sections = []
    if seeds:
        spread = run_seed_spread(config, dataset, out / SEEDS_FOLDER, seeds, device=device,
                                 known={(args.seed, args.init): TrainingOutcome.of_run(result)},
                                 normal_models={args.seed: out / "normal"}, resume=args.resume, log=_log)
        write_json_atomic(out / "seed_spread.json", {**run_metadata(args), **spread.to_dict()})
        sections.append(seed_section(spread, SEEDS_FOLDER))
    write_paper_table(result, out)
    print(write_algorithm1_report(result, out, elapsed_seconds=time.perf_counter() - start,
                                  device=str(device), extra_sections=sections))
    return 0


def _log(line: str) -> None:
    print(line, file=sys.stderr)


def _fb_from_split(args: argparse.Namespace, kwargs: dict, dataset: Dataset) -> int:
    """``--split A`` -> weight layers in f_b, checked against the built network."""
    spec = ArchitectureSpec(args.arch, dataset.input_shape, dataset.num_classes, dataset.mean, dataset.std, kwargs)
    model = build_model(spec)
    return count_weight_layers(model) - split_network(model, args.split).a
