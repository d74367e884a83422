"""``semirobust train``: train a registered architecture on a dataset, write a checkpoint dir.

``--adversarial`` trains with PGD examples (Madry et al.) in the given threat model;
``--method ibp|crown-ibp`` trains on certified bounds instead (implies ``--adversarial``;
Shi et al. 2021's initialisation, eps ramp-up and kappa schedule, stored in the recipe).
The checkpoint's ``config.json`` records the architecture, dataset, recipe, seed, the
per-epoch history and the clean test accuracy (with its Wilson interval).

Under ``torchrun --nproc_per_node W -m semirobust.empirical.cli train ...`` the W processes
train one model together (each on its part of every batch of ``--batch-size`` samples, the
global batch; README "Training on several GPUs"); rank 0 measures the test accuracy and
writes the checkpoint, whose notes record the world size and the backend.
"""

from __future__ import annotations

import argparse

import torch

from semirobust.empirical.attacks.evaluation import predict_logits
from semirobust.empirical.cli.options import (
    add_adversarial_training_options,
    add_attack_options,
    add_common_options,
    add_model_options,
    add_out_folder,
    add_threat_options,
    architecture_kwargs,
    non_negative_float,
    positive_float,
    positive_int,
    threat_model,
)
from semirobust.empirical.data import load_dataset
from semirobust.empirical.data.augment import augmentation_for
from semirobust.empirical.measure.statistics import wilson_interval
from semirobust.empirical.model import ArchitectureSpec, build_seeded_model
from semirobust.empirical.model.checkpoint import CheckpointConfig, save_checkpoint
from semirobust.empirical.runtime.device import resolve_device
from semirobust.empirical.runtime.distributed import Processes, data_parallel_processes
from semirobust.empirical.studies.certified_training import (
    CERTIFIED_METHODS,
    CERTIFIED_MILESTONES,
    ibp_initialise,
)
from semirobust.empirical.studies.training import OPTIMIZERS, TrainRecipe, train


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("train", description=__doc__)
    add_model_options(parser)
    add_out_folder(parser, help="checkpoint directory to write")
    parser.add_argument("--epochs", type=positive_int, default=TrainRecipe.epochs)
    parser.add_argument("--batch-size", type=positive_int, default=TrainRecipe.batch_size)
    parser.add_argument("--lr", type=positive_float, default=TrainRecipe.lr)
    parser.add_argument("--adversarial", action="store_true", help="adversarial training (see --method)")
    add_adversarial_training_options(parser)
    add_threat_options(parser, from_checkpoint=False)
    add_attack_options(parser, steps=TrainRecipe.steps, steps_help="PGD steps per batch")
    parser.add_argument("--optimizer", choices=sorted(OPTIMIZERS), default=TrainRecipe.optimizer)
    parser.add_argument("--weight-decay", type=non_negative_float, default=TrainRecipe.weight_decay)
    parser.add_argument("--warmup", type=non_negative_float, default=TrainRecipe.warmup,
                        help="--method ibp|crown-ibp: fraction of the run trained naturally before "
                        f"the eps ramp (default {TrainRecipe.warmup:g})")
    parser.add_argument("--ramp", type=non_negative_float, default=TrainRecipe.ramp,
                        help="--method ibp|crown-ibp: fraction of the run over which eps rises "
                        f"linearly to --eps (default {TrainRecipe.ramp:g})")
    add_common_options(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    with data_parallel_processes(resolve_device(args.device)) as (processes, device):
        return _train(args, processes, device)


def _train(args: argparse.Namespace, processes: Processes, device: torch.device) -> int:
    kwargs = architecture_kwargs(args.arch_kwargs)
    dataset = load_dataset(args.dataset, seed=args.seed, root=args.data_root)
    spec = ArchitectureSpec(args.arch, dataset.input_shape, dataset.num_classes, dataset.mean, dataset.std, kwargs)
    threat_model(args, None, dataset.input_shape)  # --eps --norm resolved; warns when eps covers the box
    certified = args.method in CERTIFIED_METHODS
    recipe = TrainRecipe(
        epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
        adversarial=args.adversarial or certified, method=args.method, trades_beta=args.trades_beta,
        norm=args.norm, eps=args.eps, steps=args.steps, optimizer=args.optimizer,
        weight_decay=args.weight_decay, warmup=args.warmup, ramp=args.ramp,
        **({"milestones": CERTIFIED_MILESTONES, "initialisation": "ibp"} if certified else {}),
    )
    model = build_seeded_model(spec, args.seed)
    if recipe.initialisation == "ibp":
        ibp_initialise(model, torch.Generator().manual_seed(args.seed))
    history = train(model, dataset, recipe, seed=args.seed, device=device,
                    augment=augmentation_for(dataset.name), processes=processes)
    if not processes.writes:
        return 0
    predictions = predict_logits(model, dataset.x_test, device=device).argmax(dim=1)
    correct = int((predictions == dataset.y_test).sum())
    n = int(dataset.y_test.numel())
    clean = {"value": correct / n, "interval": list(wilson_interval(correct, n)), "kind": "estimate",
             "estimator": "test-set accuracy", "unit": "fraction", "n": n}
    save_checkpoint(args.out, model, CheckpointConfig(
        architecture=spec, dataset=args.dataset, seed=args.seed, recipe=recipe.to_dict(),
        metrics={"history": history, "clean_accuracy": clean},
        notes={"training_processes": processes.to_dict()},
    ))
    low, high = clean["interval"]
    print(f"wrote {args.out}: clean test accuracy {clean['value']:.4f} [{low:.4f}, {high:.4f}] "
          f"(estimate, Wilson 95%, n={n}); torch {torch.__version__} on {device}"
          + (f", {processes.world_size} processes ({processes.backend})" if processes.parallel else ""))
    return 0
