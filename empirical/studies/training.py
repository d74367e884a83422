"""Standard and PGD adversarial training, with an optional frozen first part.

Recipe (THEORY.md section 6): SGD, momentum 0.9, weight decay 5e-4, learning rate divided
by 10 at 1/3 and 2/3 of the run (the paper's epochs 40 and 80 of 120, scaled to the run
length). Adversarial training (Madry et al.) replaces each batch by PGD adversarial
examples generated in eval mode, or (``method="trades"``, Zhang et al. 2019) minimises
``CE(F(x), y) + beta * KL(softmax F(x) || softmax F(x'))`` with ``x'`` the PGD maximiser
of that KL term in the threat model; the first ``frozen_stages`` stages can be frozen:
their parameters get no gradient and stay in eval mode, so BatchNorm statistics do not
move either (Algorithm 1, step 3). ``method="ibp"`` or ``"crown-ibp"`` trains on certified
bounds instead (:mod:`semirobust.empirical.studies.certified_training`: eps ramp-up,
natural/certified mixing ``kappa``, CROWN-IBP's ``beta``, Shi et al. 2021's choices), with
SGD or Adam (``optimizer``).

Data parallelism (``processes``, :mod:`semirobust.empirical.runtime.distributed`, e.g. under
``torchrun``): every process draws the same shuffling order, augmentation and attack seed
from the same seeded generator, takes its contiguous part of each global batch of
``batch_size`` samples, builds its PGD/TRADES examples on that part (per sample, with the
random starts the whole batch would get), and weights its mean loss by its share of the
batch; the gradients are summed over the processes before each step, so every step is the
single-process step on the global batch. BatchNorm normalises with the global batch's
statistics (:mod:`semirobust.empirical.model.global_batch_norm`). Loss and accuracy are
summed over the processes, so the divergence check, the history and ``after_epoch``'s
decision (rank 0's) are the same on all of them. Dropout masks are each process's own draws
(the one part that is not number for number the single-process run).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any, Callable

import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from semirobust.empirical.attacks.gradient import PGD
from semirobust.empirical.attacks.objectives import Objective, cross_entropy
from semirobust.empirical.attacks.threat import ThreatModel
from semirobust.empirical.data import Dataset
from semirobust.empirical.model.global_batch_norm import global_batch_norm, has_batch_norm
from semirobust.empirical.runtime.device import (
    amp_context,
    place_batch,
    place_model,
    seeded_torch_rng,
    wants_channels_last,
)
from semirobust.empirical.runtime.distributed import (
    ONE_PROCESS,
    BatchShard,
    Processes,
    broadcast_state,
    global_sum,
    rank_zero_decides,
    sum_gradients,
)
from semirobust.empirical.runtime.progress import bar_disabled
from semirobust.empirical.studies.certified_training import (
    BATCH_NORM_CHOICE,
    CERTIFIED_METHODS,
    INITIALISATIONS,
    certified_loss,
)
from semirobust.errors import BadInput

Augment = Callable[[torch.Tensor, torch.Generator], torch.Tensor]


@dataclass(frozen=True)
class TrainRecipe:
    """One training run's settings; stored in the checkpoint's config.json.

    ``amp`` (bfloat16 autocast) and ``channels_last`` (NHWC convolutions) apply on CUDA
    only; on the CPU both are off whatever their value.
    """

    epochs: int = 30
    batch_size: int = 64
    lr: float = 0.01
    momentum: float = 0.9
    weight_decay: float = 5e-4
    milestones: tuple[float, ...] = (1 / 3, 2 / 3)
    adversarial: bool = False
    method: str = "pgd"
    trades_beta: float = 6.0
    norm: str = "linf"
    eps: float = 8 / 255
    steps: int = 10
    step_size: float | None = None
    amp: bool = True
    channels_last: bool = True
    optimizer: str = "sgd"
    warmup: float = 0.15
    ramp: float = 0.5
    kappa_start: float = 1.0
    kappa_end: float = 0.5
    beta_start: float = 1.0
    beta_end: float = 0.0
    initialisation: str = "default"

    def __post_init__(self) -> None:
        if self.epochs < 0 or self.batch_size < 1:
            raise BadInput(f"training needs epochs >= 0 and batch size >= 1 (got {self.epochs}, {self.batch_size})")
        if self.lr <= 0:
            raise BadInput(f"--lr must be > 0, got {self.lr}")
        if self.method not in ADVERSARIAL_LOSSES:
            raise BadInput(f"--method {self.method!r}: expected one of {', '.join(ADVERSARIAL_LOSSES)}")
        if self.trades_beta < 0:
            raise BadInput(f"--trades-beta must be >= 0, got {self.trades_beta}")
        if self.optimizer not in OPTIMIZERS:
            raise BadInput(f"--optimizer {self.optimizer!r}: expected one of {', '.join(OPTIMIZERS)}")
        if not (0 <= self.warmup <= 1 and 0 <= self.ramp <= 1 and self.warmup + self.ramp <= 1):
            raise BadInput(
                f"warmup ({self.warmup}) and ramp ({self.ramp}) are fractions of the run with "
                "warmup + ramp <= 1"
            )
        if self.initialisation not in INITIALISATIONS:
            raise BadInput(
                f"initialisation {self.initialisation!r}: expected one of {', '.join(INITIALISATIONS)}"
            )
        for name in ("kappa_start", "kappa_end", "beta_start", "beta_end"):
            if not 0 <= getattr(self, name) <= 1:
                raise BadInput(f"{name} must lie in [0, 1], got {getattr(self, name)}")
        if self.adversarial:
            self.threat()

    def threat(self) -> ThreatModel:
        return ThreatModel(self.norm, self.eps)

    def attack(self, seed: int, objective: Objective = cross_entropy, shard: BatchShard | None = None) -> PGD:
        """The PGD used to make training batches (step size ``eps/4`` unless given); with
        ``shard``, for that part of a batch split over processes."""
        step = self.step_size if self.step_size is not None else self.eps / 4
        return PGD(self.threat(), objective=objective, steps=self.steps, step_size=step, seed=seed, shard=shard)

    @property
    def certified(self) -> bool:
        return self.adversarial and self.method in CERTIFIED_METHODS

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["milestones"] = list(self.milestones)
        if self.certified:
            data["certified_training"] = {
                "loss": "kappa CE(F(x)) + (1 - kappa) CE(-lower bound of z_y - z_k)",
                "eps_schedule": f"0 for the first {self.warmup:g} of the run, then linear to "
                f"{self.eps:g} over the next {self.ramp:g}, then constant",
                "kappa": f"{self.kappa_start:g} -> {self.kappa_end:g} over the ramp",
                "beta": f"{self.beta_start:g} -> {self.beta_end:g} over the ramp (CROWN-IBP weight)"
                if self.method == "crown-ibp" else "not used (IBP)",
                "batch_norm": BATCH_NORM_CHOICE,
                "initialisation": INITIALISATIONS[self.initialisation],
            }
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainRecipe:
        data = {k: v for k, v in data.items() if k != "certified_training"}
        data["milestones"] = tuple(data.get("milestones", (1 / 3, 2 / 3)))
        return cls(**data)


def freeze_stages(model: nn.Sequential, count: int) -> None:
    """Stop gradients into the first ``count`` stages (their weights and BN statistics)."""
    for stage in model[:count]:
        for parameter in stage.parameters():
            parameter.requires_grad_(False)


def set_train_mode(model: nn.Sequential, frozen_stages: int) -> None:
    """Train mode for the trainable stages, eval mode for the frozen prefix."""
    model.train()
    for stage in model[:frozen_stages]:
        stage.eval()


EpochCallback = Callable[[int, nn.Module], bool]
# ``loss(model, x, y, recipe, seed, frozen_stages, progress, shard)``: ``progress`` is the
# fraction of the run's steps done (the certified methods' schedules read it); ``shard``
# says which part of the global batch ``x`` is under data parallelism (None: all of it).
BatchLoss = Callable[[nn.Sequential, torch.Tensor, torch.Tensor, "TrainRecipe", int, int, float,
                      "BatchShard | None"], tuple[torch.Tensor, torch.Tensor]]


def standard_loss(model: nn.Sequential, x: torch.Tensor, y: torch.Tensor, recipe: TrainRecipe,
                  seed: int, frozen_stages: int, progress: float = 0.0,
                  shard: BatchShard | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """``CE(F(x), y)`` on the clean batch; returns the loss and the logits."""
    set_train_mode(model, frozen_stages)
    logits = model(x)
    return F.cross_entropy(logits.float(), y), logits


def pgd_loss(model: nn.Sequential, x: torch.Tensor, y: torch.Tensor, recipe: TrainRecipe,
             seed: int, frozen_stages: int, progress: float = 0.0,
             shard: BatchShard | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Madry et al.: ``CE(F(x'), y)`` with ``x'`` the PGD maximiser of the cross-entropy."""
    x_adv = recipe.attack(seed, shard=shard)(model, x, y)
    return standard_loss(model, x_adv, y, recipe, seed, frozen_stages)


def trades_loss(model: nn.Sequential, x: torch.Tensor, y: torch.Tensor, recipe: TrainRecipe,
                seed: int, frozen_stages: int, progress: float = 0.0,
                shard: BatchShard | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """TRADES: ``CE(F(x), y) + beta * KL(p(x) || p(x'))``, ``x'`` maximising the KL term by
    PGD from a uniform random start (the original starts at ``x + 0.001 N(0, I)``)."""
    with torch.no_grad():
        model.eval()
        clean_probabilities = F.softmax(model(x).float(), dim=1)
    x_adv = recipe.attack(seed, objective=kl_from(clean_probabilities), shard=shard)(model, x, y)
    set_train_mode(model, frozen_stages)
    logits = model(x)
    divergence = F.kl_div(F.log_softmax(model(x_adv).float(), dim=1), F.softmax(logits.float(), dim=1),
                          reduction="batchmean")
    return F.cross_entropy(logits.float(), y) + recipe.trades_beta * divergence, logits


def kl_from(reference_probabilities: torch.Tensor) -> Objective:
    """Per-sample ``KL(p_ref || softmax(z))``: TRADES' inner objective."""
    def divergence(logits: torch.Tensor, _y: torch.Tensor) -> torch.Tensor:
        log_q = F.log_softmax(logits.float(), dim=1)
        return F.kl_div(log_q, reference_probabilities, reduction="none").sum(dim=1)

    return divergence


ADVERSARIAL_LOSSES: dict[str, BatchLoss] = {
    "pgd": pgd_loss,
    "trades": trades_loss,
    **dict.fromkeys(CERTIFIED_METHODS, certified_loss),
}


def _sgd(parameters: list[nn.Parameter], recipe: TrainRecipe) -> torch.optim.Optimizer:
    return torch.optim.SGD(parameters, lr=recipe.lr, momentum=recipe.momentum,
                           weight_decay=recipe.weight_decay)


def _adam(parameters: list[nn.Parameter], recipe: TrainRecipe) -> torch.optim.Optimizer:
    return torch.optim.Adam(parameters, lr=recipe.lr, weight_decay=recipe.weight_decay)


OPTIMIZERS: dict[str, Callable[[list[nn.Parameter], TrainRecipe], torch.optim.Optimizer]] = {
    "sgd": _sgd,
    "adam": _adam,
}


def train(
    model: nn.Sequential,
    dataset: Dataset,
    recipe: TrainRecipe,
    *,
    seed: int = 0,
    device: torch.device | str = "cpu",
    frozen_stages: int = 0,
    augment: Augment | None = None,
    after_epoch: EpochCallback | None = None,
    progress: bool = True,
    description: str = "train",
    processes: Processes = ONE_PROCESS,
) -> list[dict[str, float]]:
    """Train ``model`` in place; return per-epoch history (loss, train accuracy).

    ``after_epoch(epoch, model)`` runs after every epoch (1-based); returning ``True``
    stops training early (used by Algorithm 1's finetuning, which stops once the target
    robust accuracy is reached). With several ``processes`` each trains on its part of
    every batch (module docstring); the result is the single-process run's up to
    floating-point summation order, and the same model on every process.
    """
    device = torch.device(device)
    samples = dataset.x_train.shape[0]
    _check_data_parallel(model, recipe, samples, processes)
    channels_last = recipe.channels_last and wants_channels_last(model, device)
    place_model(model, device, channels_last=channels_last)
    broadcast_state(processes, model)
    freeze_stages(model, frozen_stages)
    parameters = [p for p in model.parameters() if p.requires_grad]
    optimizer = OPTIMIZERS[recipe.optimizer](parameters, recipe)
    milestones = sorted({max(1, round(m * recipe.epochs)) for m in recipe.milestones})
    scheduler = torch.optim.lr_scheduler.MultiStepLR(optimizer, milestones=milestones, gamma=0.1)
    generator = torch.Generator().manual_seed(seed)
    use_amp = recipe.amp and device.type == "cuda"
    history: list[dict[str, float]] = []
    batches = -(-samples // recipe.batch_size)
    bar_off = bar_disabled(progress and processes.writes)
    # draws without a generator (dropout) follow the seed, each process's own
    with seeded_torch_rng(processes.seed(seed), device):
        for epoch in tqdm(range(1, recipe.epochs + 1), desc=description, disable=bar_off, leave=False):
            order = torch.randperm(samples, generator=generator)
            totals = torch.zeros(3, dtype=torch.float64, device=device)  # loss sum, correct, seen
            # BatchNorm over the global batch while training; the plain modules for after_epoch
            with global_batch_norm(model, processes):
                for batch, start in enumerate(range(0, order.numel(), recipe.batch_size)):
                    done = ((epoch - 1) * batches + batch) / max(1, recipe.epochs * batches)
                    x, y, shard = _batch(dataset, order[start:start + recipe.batch_size], augment, generator,
                                         processes)
                    x, y = place_batch(x, device, channels_last=channels_last), y.to(device)
                    if recipe.adversarial:
                        attack_seed = int(torch.randint(0, 2**31 - 1, (1,), generator=generator))
                        loss_of_batch = ADVERSARIAL_LOSSES[recipe.method]
                    else:
                        attack_seed, loss_of_batch = 0, standard_loss
                    with amp_context(device, use_amp):
                        loss, logits = loss_of_batch(model, x, y, recipe, attack_seed, frozen_stages, done, shard)
                    optimizer.zero_grad(set_to_none=True)
                    (loss if shard is None else loss * shard.weight).backward()
                    sum_gradients(processes, parameters)
                    optimizer.step()
                    step = global_sum(processes, torch.stack([
                        loss.detach().double() * y.numel(),
                        (logits.argmax(dim=1) == y).sum().double(),
                        torch.tensor(float(y.numel()), dtype=torch.float64, device=device),
                    ]))
                    batch_loss = float(step[0] / step[2])
                    if not math.isfinite(batch_loss):
                        raise BadInput(
                            f"training diverged: the loss is {batch_loss} at epoch {epoch}, batch {batch + 1} "
                            f"(learning rate {recipe.lr}); lower --lr"
                        )
                    totals += step
            scheduler.step()
            loss_sum, correct, seen = totals.tolist()
            history.append({"epoch": epoch, "loss": loss_sum / seen, "train_accuracy": correct / seen})
            model.eval()
            if after_epoch is not None and rank_zero_decides(processes, after_epoch(epoch, model)):
                break
    model.eval()
    return history


def _batch(dataset: Dataset, index: torch.Tensor, augment: Augment | None, generator: torch.Generator,
           processes: Processes) -> tuple[torch.Tensor, torch.Tensor, BatchShard | None]:
    """The samples ``index`` (augmented), or this process's part of them and which part it
    is. The whole batch is augmented on every process, so that every process's generator
    makes the same draws as one process's would."""
    x, y = dataset.x_train[index], dataset.y_train[index]
    if augment is not None:
        x = augment(x, generator)
    if not processes.parallel:
        return x, y, None
    shard = processes.shard(index.numel())
    return x[shard.rows], y[shard.rows], shard


def _check_data_parallel(model: nn.Module, recipe: TrainRecipe, samples: int, processes: Processes) -> None:
    """Refuse what several processes cannot train as one: a batch size that does not split
    into equal parts, a last batch with fewer samples than processes, certified training
    of a network with BatchNorm (its bounds use each part's own batch statistics)."""
    if not processes.parallel:
        return
    world = processes.world_size
    if recipe.batch_size % world:
        raise BadInput(
            f"--batch-size {recipe.batch_size} does not split into {world} equal parts, one per "
            f"process: choose a multiple of the world size {world}"
        )
    last = samples % recipe.batch_size
    if 0 < last < world:
        raise BadInput(
            f"the last batch holds {last} of the {samples} training samples (batch size "
            f"{recipe.batch_size}), fewer than the {world} processes: choose another --batch-size"
        )
    if recipe.certified and has_batch_norm(model):
        raise BadInput(
            f"--method {recipe.method} on several processes: the certified bounds normalise "
            "BatchNorm with each process's part of the batch, not the global batch; train "
            "a network without BatchNorm or on one process"
        )
