"""Algorithm 1 of the paper (THEORY.md section 6), resumable.

1. Train ``F`` normally -> ``(f_a, f_b)``; ``Acc`` = its accuracy under the attack.
2. Train ``F*`` adversarially -> ``(f*_a, f*_b)``; ``Acc*``.
3. Per trial: ``(f*_a, f_b)`` -> ``Acc_sr``; freeze ``f*_a`` (weights and normalisation
   statistics), adversarially finetune ``f_b`` for up to ``E`` epochs, stop once robust
   accuracy ``>= Acc* - k``; record the best accuracy ``gAcc`` and the epochs used.
4. Per trial: attack the test set and estimate ``rho_j`` for every consecutive pair of
   weight layers ``(j-1, j)``, ``j = a+1..n``, on the attacked inputs.

Every accuracy is measured on the same test set under the same attack. Besides the
paper's columns we record the attack-based margins ``gamma_a`` (the robust first part
read out by its own trained rest, ``f*_b``) and ``gamma_b`` (the finetuned network), so
that T2 can be judged with fixed readouts (caveat C1). Finished phases and trials are
written atomically under the output folder; ``resume=True`` reuses them.

With several ``processes`` (a torchrun launch) every process runs the whole algorithm on
the same seeds and only the training (steps 1, 2 and the finetuning of step 3) is split
between them (:func:`~semirobust.empirical.studies.training.train`); evaluations, attacks
and rho estimates run whole on each (the same numbers), and rank 0 alone writes and logs,
each write between two barriers so that every process sees the same files at the same
point (:func:`~semirobust.empirical.runtime.distributed.written_by_rank_zero`).
"""

from __future__ import annotations

import copy
import json
import warnings
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import torch
from torch import nn

from semirobust.empirical.attacks import AttackSettings, attack_names, build_attack
from semirobust.empirical.attacks.diagnostics import DOCS, AttackReliabilityWarning
from semirobust.empirical.attacks.evaluation import AttackEvaluation, evaluate_attack
from semirobust.empirical.attacks.objectives import cross_entropy, negative_margin
from semirobust.empirical.attacks.threat import ThreatModel
from semirobust.empirical.data import Dataset
from semirobust.empirical.data.augment import augmentation_for
from semirobust.empirical.dependency import ESTIMATORS, dependency_per_layer_pair
from semirobust.empirical.measure.readouts import measured_gap
from semirobust.empirical.model import ArchitectureSpec, build_model, build_seeded_model
from semirobust.empirical.model.checkpoint import CheckpointConfig, load_checkpoint, save_checkpoint
from semirobust.empirical.model.stages import (
    count_weight_layers,
    fa_layers_from,
    layer_activations,
    split_stage_index,
)
from semirobust.empirical.reports.writers import environment_metadata, write_json_atomic
from semirobust.empirical.runtime.distributed import ONE_PROCESS, Processes, written_by_rank_zero
from semirobust.empirical.studies.canonical_readouts import canonical_a2_measurements, renamed
from semirobust.empirical.studies.certified_training import CERTIFIED_METHODS, ibp_scale
from semirobust.empirical.studies.layer_pairs import LayerPairRho, layer_pair_rhos
from semirobust.empirical.studies.training import TrainRecipe, train
from semirobust.empirical.studies.warning_summary import summarize_warnings
from semirobust.errors import BadInput
from semirobust.theory import judge
from semirobust.theory.measurement import Measurement
from semirobust.theory.verdict import Verdict

INIT_CHOICES = ("shared", "independent")
DEPENDENCY_PERMUTATIONS = 5


@dataclass(frozen=True)
class Algorithm1Config:
    """Settings of one Algorithm 1 run (stored in ``algorithm1_config.json``)."""

    architecture: str = "digits-cnn"
    architecture_kwargs: dict[str, Any] = field(default_factory=dict)
    dataset: str = "digits"
    fb_layers: int = 3
    attack: str = "pgd"
    norm: str = "linf"
    eps: float = 0.1
    attack_steps: int = 10
    train_attack_steps: int | None = None
    trials: int = 2
    finetune_epochs: int = 10
    tolerance: float = 0.02
    init: str = "shared"
    estimator: str = "ksg"
    recipe: TrainRecipe = field(default_factory=TrainRecipe)
    seed: int = 0

    def __post_init__(self) -> None:
        if self.init not in INIT_CHOICES:
            raise BadInput(f"--init {self.init!r}: expected one of {', '.join(INIT_CHOICES)}")
        if self.train_attack_steps is not None and self.train_attack_steps < 1:
            raise BadInput(f"--train-steps {self.train_attack_steps}: expected >= 1")
        if self.trials < 1 or self.finetune_epochs < 1:
            raise BadInput("--trials and --epochs must be >= 1")
        if not 0 <= self.tolerance < 1:
            raise BadInput(f"--tolerance {self.tolerance}: expected a fraction in [0, 1)")
        if self.attack not in attack_names():
            raise BadInput(f"unknown attack {self.attack!r}; known: {', '.join(attack_names())}")
        if self.estimator not in ESTIMATORS:
            raise BadInput(f"unknown estimator {self.estimator!r}; known: {', '.join(sorted(ESTIMATORS))}")
        self.threat()

    def threat(self) -> ThreatModel:
        return ThreatModel(self.norm, self.eps)

    def normal_recipe(self) -> TrainRecipe:
        """Step 1's recipe: the recipe with the adversarial method's own fields at their
        defaults (they do not act on normal training), so that runs differing only in the
        method share their normal model."""
        return replace(self.recipe, method=TrainRecipe.method, trades_beta=TrainRecipe.trades_beta)

    def adversarial_recipe(self) -> TrainRecipe:
        """Step 2's adversarial training recipe: the normal one with the attack's threat
        model; with a certified method (``ibp``, ``crown-ibp``) the robust model starts from
        its initial draw at Shi et al. 2021's IBP spread (``initialisation="ibp-scaled"``,
        :func:`~semirobust.empirical.studies.certified_training.ibp_scale`), as
        ``semirobust train --method`` starts from the IBP initialisation."""
        certified = self.recipe.method in CERTIFIED_METHODS
        steps = self.attack_steps if self.train_attack_steps is None else self.train_attack_steps
        return replace(self.recipe, adversarial=True, norm=self.norm, eps=self.eps, steps=steps,
                       initialisation="ibp-scaled" if certified else self.recipe.initialisation)

    def finetuning_recipe(self) -> TrainRecipe:
        """Step 3's recipe: adversarial training for at most ``E`` epochs at a constant
        learning rate (no decay: the stopping rule, not a schedule, decides the length).
        ``f_b`` starts from the normal model's trained weights: no initialisation is applied."""
        return replace(self.adversarial_recipe(), epochs=self.finetune_epochs, milestones=(),
                       initialisation=TrainRecipe.initialisation)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["recipe"] = self.recipe.to_dict()
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Algorithm1Config:
        """The config ``to_dict`` wrote (recipe fields added later read as their defaults)."""
        return cls(**{**data, "recipe": TrainRecipe.from_dict(data["recipe"])})


@dataclass(frozen=True)
class CurvePoint:
    """Robust accuracy after one finetuning epoch."""

    epoch: int
    robust_accuracy: Measurement

    def to_dict(self) -> dict[str, Any]:
        return {"epoch": self.epoch, "robust_accuracy": self.robust_accuracy.to_dict()}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CurvePoint:
        return cls(int(data["epoch"]), Measurement.from_dict(data["robust_accuracy"]))


@dataclass(frozen=True)
class Trial:
    """Steps 3 and 4 of one trial: ``Acc_sr``, the finetuning curve and its best point
    ``gAcc`` (reached at ``gacc_epoch``), ``gamma_b`` and rho per layer pair of f_b."""

    trial: int
    seed: int
    acc_sr: Measurement
    gacc: Measurement
    gacc_epoch: int
    epochs: int
    reached_target: bool
    target: float
    curve: tuple[CurvePoint, ...]
    final_robust_accuracy: Measurement
    gamma_b: Measurement
    rho: tuple[LayerPairRho, ...]
    dependency_warnings: tuple[str, ...]
    margin_gap_first: tuple[Measurement, ...] = ()  # A2's gap at j = a+1: certified, attacked

    def to_dict(self) -> dict[str, Any]:
        """The form of ``trials/trial_NNN.json``."""
        return {
            "trial": self.trial,
            "seed": self.seed,
            "Acc_sr": self.acc_sr.to_dict(),
            "gAcc": {**self.gacc.to_dict(), "epoch": self.gacc_epoch},
            "epochs": self.epochs,
            "reached_target": self.reached_target,
            "target": self.target,
            "curve": [point.to_dict() for point in self.curve],
            "final_robust_accuracy": self.final_robust_accuracy.to_dict(),
            "gamma_b": self.gamma_b.to_dict(),
            "rho": [pair.to_dict() for pair in self.rho],
            "dependency_warnings": list(self.dependency_warnings),
            "margin_gap_first": [m.to_dict() for m in self.margin_gap_first],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Trial:
        """A finished trial read back from its JSON (resume)."""
        return cls(
            trial=int(data["trial"]),
            seed=int(data["seed"]),
            acc_sr=Measurement.from_dict(data["Acc_sr"]),
            gacc=Measurement.from_dict(data["gAcc"]),
            gacc_epoch=int(data["gAcc"]["epoch"]),
            epochs=int(data["epochs"]),
            reached_target=bool(data["reached_target"]),
            target=float(data["target"]),
            curve=tuple(CurvePoint.from_dict(point) for point in data["curve"]),
            final_robust_accuracy=Measurement.from_dict(data["final_robust_accuracy"]),
            gamma_b=Measurement.from_dict(data["gamma_b"]),
            rho=tuple(LayerPairRho.from_dict(rho) for rho in data["rho"]),
            dependency_warnings=tuple(data.get("dependency_warnings", ())),
            margin_gap_first=tuple(Measurement.from_dict(m) for m in data.get("margin_gap_first", ())),
        )


@dataclass(frozen=True)
class LowestRho:
    """The lowest ``rho_j`` among the trials the summary reads, and which trial gave it."""

    value: float
    interval: tuple[float, float]
    trial: int
    unit: str

    def to_dict(self) -> dict[str, Any]:
        return {"value": self.value, "interval": list(self.interval), "trial": self.trial, "unit": self.unit}


@dataclass(frozen=True)
class Algorithm1Summary:
    """The paper's row: ``Diff = gAcc - Acc*`` of the best trial, and the lowest rho per
    pair among the trials that reached the target (all trials when none did, said so)."""

    trials_reaching_target: int
    rho_from: str
    best_gacc: float
    diff: float
    lowest_rho: Mapping[str, LowestRho]
    tolerance: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "trials_reaching_target": self.trials_reaching_target,
            "rho_from": self.rho_from,
            "best_gAcc": self.best_gacc,
            "Diff": self.diff,
            "lowest_rho": {name: rho.to_dict() for name, rho in self.lowest_rho.items()},
            "tolerance": self.tolerance,
        }


@dataclass(frozen=True)
class Algorithm1Split:
    """Where the run splits: ``a`` weight layers in f_a of ``n``; ``first_fb_stage`` is the
    index of f_b's first stage in the sequential model."""

    a: int
    n: int
    fb_layers: int
    first_fb_stage: int

    def to_dict(self) -> dict[str, int]:
        return {"a": self.a, "n": self.n, "fb_layers": self.fb_layers, "first_fb_stage": self.first_fb_stage}


@dataclass(frozen=True)
class Algorithm1Result:
    """One finished run: the normal model's ``Acc``, the robust model's ``Acc*`` and
    ``gamma_a``, every trial, the paper's summary and T2 judged per trial."""

    config: Algorithm1Config
    split: Algorithm1Split
    acc: Measurement
    acc_clean: Measurement
    acc_star: Measurement
    acc_star_clean: Measurement
    gamma_a: Measurement
    trials: tuple[Trial, ...]
    summary: Algorithm1Summary
    verdicts: Mapping[str, Verdict]

    def best_trial(self) -> Trial:
        """The trial with the highest ``gAcc`` (the first of equals)."""
        return max(self.trials, key=lambda t: t.gacc.value)

    def headline_measurements(self) -> list[Measurement]:
        """The run's measurements in reading order: Acc, Acc*, gamma_a, then per trial
        Acc_sr, gAcc, gamma_b and every rho_j with its value at independence, each trial's
        named with its number."""
        items = [self.acc_clean, self.acc, self.acc_star_clean, self.acc_star, self.gamma_a]
        for trial in self.trials:
            suffix = f" (trial {trial.trial})"
            items += [replace(m, name=m.name + suffix) for m in (trial.acc_sr, trial.gacc, trial.gamma_b)]
            for pair in trial.rho:
                items.append(replace(pair.rho, name=pair.rho.name + suffix))
                if pair.independent is not None:
                    items.append(replace(pair.independent, name=pair.independent.name + suffix))
        return items

    def to_dict(self) -> dict[str, Any]:
        """The form of ``results.json`` (without the environment metadata)."""
        return {
            "config": self.config.to_dict(),
            "split": self.split.to_dict(),
            "Acc": self.acc.to_dict(),
            "Acc_clean": self.acc_clean.to_dict(),
            "Acc*": self.acc_star.to_dict(),
            "Acc*_clean": self.acc_star_clean.to_dict(),
            "gamma_a": self.gamma_a.to_dict(),
            "trials": [trial.to_dict() for trial in self.trials],
            "summary": self.summary.to_dict(),
            "verdicts": {label: {**v.to_dict(), "markdown": v.describe(label)} for label, v in self.verdicts.items()},
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Algorithm1Result:
        """A run read back from its ``results.json``: the verdicts are judged again from
        the measurements (the judge is deterministic)."""
        config = Algorithm1Config.from_dict(data["config"])
        gamma_a = Measurement.from_dict(data["gamma_a"])
        acc_star = Measurement.from_dict(data["Acc*"])
        trials = tuple(Trial.from_dict(trial) for trial in data["trials"])
        return cls(
            config=config,
            split=Algorithm1Split(**data["split"]),
            acc=Measurement.from_dict(data["Acc"]),
            acc_clean=Measurement.from_dict(data["Acc_clean"]),
            acc_star=acc_star,
            acc_star_clean=Measurement.from_dict(data["Acc*_clean"]),
            gamma_a=gamma_a,
            trials=trials,
            summary=_summary(trials, acc_star.value, config.tolerance),
            verdicts=_t2_verdicts(gamma_a, trials),
        )


@dataclass(frozen=True)
class TrainingOutcome:
    """Steps 1-3 of Algorithm 1 for one training seed and initialisation, trial 1: what
    training noise moves (THEORY.md section 6): ``Acc``, ``Acc*``, ``Acc_sr``, ``gAcc``
    and the finetuning epochs used."""

    seed: int
    init: str
    acc: Measurement
    acc_star: Measurement
    acc_sr: Measurement
    gacc: Measurement
    epochs: int
    reached_target: bool

    def to_dict(self) -> dict[str, Any]:
        """The form of ``outcome.json``."""
        return {"seed": self.seed, "init": self.init, "Acc": self.acc.to_dict(),
                "Acc*": self.acc_star.to_dict(), "Acc_sr": self.acc_sr.to_dict(),
                "gAcc": self.gacc.to_dict(), "epochs": self.epochs,
                "reached_target": self.reached_target}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TrainingOutcome:
        return cls(int(data["seed"]), str(data["init"]), Measurement.from_dict(data["Acc"]),
                   Measurement.from_dict(data["Acc*"]), Measurement.from_dict(data["Acc_sr"]),
                   Measurement.from_dict(data["gAcc"]), int(data["epochs"]),
                   bool(data["reached_target"]))

    @classmethod
    def of_run(cls, result: Algorithm1Result) -> TrainingOutcome:
        """The outcome a full run measured (its trial 1): the same numbers
        :func:`run_training_outcome` gives for the same settings."""
        trial = result.trials[0]
        return cls(result.config.seed, result.config.init, result.acc, result.acc_star,
                   trial.acc_sr, trial.gacc, trial.epochs, trial.reached_target)


@dataclass
class Algorithm1Run:
    """Paths and helpers of one run folder, and the reliability flags its attack
    evaluations raised (counted per flag, logged once by :meth:`log_flags`)."""

    out: Path
    config: Algorithm1Config
    dataset: Dataset
    device: torch.device
    progress: bool = True
    log: Callable[[str], None] = print
    processes: Processes = ONE_PROCESS
    evaluations: int = 0
    flags: Counter[str] = field(default_factory=Counter)

    def write(self, write: Callable[[], object]) -> None:
        """Run ``write`` on rank 0 only (:func:`written_by_rank_zero`)."""
        written_by_rank_zero(self.processes, write)

    def evaluate(self, model: nn.Module, seed: int, *, margin: bool = False,
                 keep_adversarial: bool = False) -> AttackEvaluation:
        """The run's attack on the test set (cross-entropy objective, or the margin): the
        run's steps, one restart, and ``seed`` (each evaluation of the run has its own).
        An evaluation for robust accuracy alone (neither ``margin`` nor the adversarial
        inputs kept) stops each input at its first misclassified iterate
        (``until_misclassified``: at least as strong, and cheaper)."""
        settings = AttackSettings(steps=self.config.attack_steps, restarts=1, seed=seed)
        attack = build_attack(self.config.attack, replace(
            settings.config(self.config.threat(), negative_margin if margin else cross_entropy),
            until_misclassified=not (margin or keep_adversarial)))
        with warnings.catch_warnings():  # each flag stays in its measurements' settings
            warnings.simplefilter("ignore", AttackReliabilityWarning)
            evaluation = evaluate_attack(
                model, self.dataset.x_test, self.dataset.y_test, attack,
                device=self.device, keep_adversarial=keep_adversarial, progress=self.progress,
            )
        self.evaluations += 1
        self.flags.update({flag.code for flag in evaluation.flags})
        return evaluation

    def log_flags(self) -> None:
        """One line for the run's reliability flags: each flag and how many of the run's
        attack evaluations raised it."""
        if self.flags:
            counts = ", ".join(f"{code} in {count}" for code, count in sorted(self.flags.items()))
            self.log(f"[algorithm1] {self.out}: reliability flags of {self.evaluations} attack evaluations: "
                     f"{counts} (each measurement's settings list its flags; see {DOCS})")


def run_algorithm1(
    config: Algorithm1Config,
    dataset: Dataset,
    out: str | Path,
    *,
    device: torch.device,
    resume: bool = False,
    progress: bool = True,
    log: Callable[[str], None] = print,
    metadata: Mapping[str, Any] | None = None,
    processes: Processes = ONE_PROCESS,
) -> Algorithm1Result:
    """Run (or resume) Algorithm 1; return the result also written to ``results.json``,
    after ``metadata`` (the command's arguments and seed) or else the environment's, and
    the processes that trained (world size, backend)."""
    run = Algorithm1Run(Path(out), config, dataset, device, progress and processes.writes,
                        log if processes.writes else _silent, processes)
    spec, n, a, boundary = _structure(config, dataset)
    _prepare_folder(run, resume)
    normal, robust = _trained_models(run, spec)
    normal_eval = run.evaluate(normal, _model_seed(config, "normal") + 100)
    robust_eval = run.evaluate(robust, _model_seed(config, "robust") + 100)
    acc_star = robust_eval.robust_accuracy("Acc*")
    gamma_a = run.evaluate(robust, config.seed + 17, margin=True).expected_adversarial_margin("gamma_a")
    trials = tuple(
        _trial(run, t, normal, robust, boundary, a, acc_star.value)
        for t in range(1, config.trials + 1)
    )
    result = Algorithm1Result(
        config=config,
        split=Algorithm1Split(a, n, config.fb_layers, boundary),
        acc=normal_eval.robust_accuracy("Acc"),
        acc_clean=normal_eval.clean_accuracy("Acc_clean"),
        acc_star=acc_star,
        acc_star_clean=robust_eval.clean_accuracy("Acc*_clean"),
        gamma_a=gamma_a,
        trials=trials,
        summary=_summary(trials, acc_star.value, config.tolerance),
        verdicts=_t2_verdicts(gamma_a, trials),
    )
    run.write(lambda: write_json_atomic(run.out / "results.json", {
        **(environment_metadata() if metadata is None else metadata),
        "training_processes": processes.to_dict(), **result.to_dict(),
    }))
    run.log_flags()
    return result


def run_training_outcome(
    config: Algorithm1Config,
    dataset: Dataset,
    out: str | Path,
    *,
    device: torch.device,
    resume: bool = False,
    progress: bool = True,
    log: Callable[[str], None] = print,
) -> TrainingOutcome:
    """Steps 1-3 of trial 1 alone (no step 4, no margins): the numbers
    :func:`run_algorithm1` measures for them, seed for seed, at a fraction of its cost.
    Written to ``outcome.json`` under ``out``; ``resume=True`` reuses what is finished."""
    run = Algorithm1Run(Path(out), replace(config, trials=1), dataset, device, progress, log)
    path = run.out / "outcome.json"
    spec, _, _, boundary = _structure(run.config, dataset)
    _prepare_folder(run, resume)
    if path.exists():
        run.log(f"[algorithm1] reusing the finished outcome {path}")
        return _read_finished(path, TrainingOutcome.from_dict, "outcome", "delete it and --resume redoes it")
    normal, robust = _trained_models(run, spec)
    acc = run.evaluate(normal, _model_seed(config, "normal") + 100).robust_accuracy("Acc")
    acc_star = run.evaluate(robust, _model_seed(config, "robust") + 100).robust_accuracy("Acc*")
    finetuning = _finetune(run, 1, normal, robust, boundary, acc_star.value)
    outcome = TrainingOutcome(config.seed, config.init, acc, acc_star, finetuning.acc_sr,
                              replace(finetuning.best().robust_accuracy, name="gAcc"),
                              len(finetuning.curve), finetuning.reached_target())
    run.write(lambda: write_json_atomic(path, outcome.to_dict()))
    run.log_flags()
    return outcome


def _silent(_line: str) -> None:
    """The log of every process but rank 0."""


def _prepare_folder(run: Algorithm1Run, resume: bool) -> None:
    config_path = run.out / "algorithm1_config.json"
    wanted = run.config.to_dict()
    if config_path.exists():
        stored = _read_run_file(config_path, "the run's settings: delete it, or choose another --out")
        if not resume:
            raise BadInput(f"{run.out} already holds an Algorithm 1 run: pass --resume to continue it or choose another --out")
        if _with_defaults(stored) != json.loads(json.dumps(wanted)):
            raise BadInput(f"--resume: {config_path} was written with other settings; use the same arguments or another --out")
    run.write(lambda: write_json_atomic(config_path, wanted))


def _with_defaults(stored: Any) -> Any:
    """Stored settings with the fields added to the settings (or the recipe) since they
    were written at their defaults; settings that do not parse are returned as they are."""
    try:
        return json.loads(json.dumps(Algorithm1Config.from_dict(stored).to_dict()))
    except (TypeError, KeyError, AttributeError, BadInput):
        return stored


def _read_run_file(path: Path, remedy: str) -> Any:
    """A JSON file of the run folder, or :class:`BadInput` naming it and ``remedy`` when it
    is not valid JSON (damaged outside semirobust: its own writes are atomic)."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as error:
        raise BadInput(f"{path} is corrupt ({type(error).__name__}: {error}): {remedy}") from None


def _read_finished(path: Path, parse: Callable[[Any], Any], what: str, remedy: str) -> Any:
    """A finished result of the run folder read back with ``parse``, or :class:`BadInput`
    naming the file and ``remedy`` when it is not valid JSON or not a finished ``what``."""
    try:
        return parse(_read_run_file(path, remedy))
    except (KeyError, TypeError, ValueError) as error:
        if isinstance(error, BadInput):
            raise
        raise BadInput(f"{path} is not a finished {what} ({type(error).__name__}: {error}): {remedy}") from None


def _initial_weights(spec: ArchitectureSpec, config: Algorithm1Config) -> tuple[dict, dict]:
    """Initial weights of the normal and robust models: the same draw (``shared``, as the
    authors' code allows) or two independent draws (``independent``), from generators
    seeded with ``seed`` and ``seed + 1``. A certified method's robust model starts from its
    draw at the IBP spread (:meth:`Algorithm1Config.adversarial_recipe`): under ``shared``
    the normal model's draw, every Linear/Conv2d weight multiplied by one positive number
    per layer, so both models start from the same directions."""
    normal = build_seeded_model(spec, config.seed)
    normal_init = copy.deepcopy(normal.state_dict())
    robust = normal if config.init == "shared" else build_seeded_model(spec, config.seed + 1)
    if config.adversarial_recipe().initialisation == "ibp-scaled":
        ibp_scale(robust)
    elif robust is normal:
        return normal_init, normal_init
    return normal_init, copy.deepcopy(robust.state_dict())


def _structure(config: Algorithm1Config, dataset: Dataset) -> tuple[ArchitectureSpec, int, int, int]:
    """The architecture, its weight-layer count ``n``, the split ``a`` and the index of
    f_b's first stage (read from a weightless model on the meta device)."""
    spec = ArchitectureSpec(
        config.architecture, dataset.input_shape, dataset.num_classes,
        dataset.mean, dataset.std, dict(config.architecture_kwargs),
    )
    with torch.device("meta"):  # only its structure is read: no weights drawn
        probe = build_model(spec)
    a = fa_layers_from(probe, split=None, fb_layers=config.fb_layers)
    return spec, count_weight_layers(probe), a, split_stage_index(probe, a)


def _model_seed(config: Algorithm1Config, role: str) -> int:
    return config.seed + (0 if role == "normal" else 1)


def _trained_models(run: Algorithm1Run, spec: ArchitectureSpec) -> tuple[nn.Sequential, nn.Sequential]:
    """Steps 1 and 2: the normal and the robust model of the run folder, trained or reused."""
    normal_init, robust_init = _initial_weights(spec, run.config)
    return (_train_or_reuse(run, "normal", run.out / "normal", spec, normal_init),
            _train_or_reuse(run, "robust", run.out / "robust", spec, robust_init))


def _train_or_reuse(run: Algorithm1Run, role: str, path: Path, spec: ArchitectureSpec,
                    init: dict) -> nn.Sequential:
    """Step 1 (``normal``) or 2 (``robust``): train into ``path``, or reuse the finished
    checkpoint there when this run would have trained the same model."""
    recipe = run.config.normal_recipe() if role == "normal" else run.config.adversarial_recipe()
    seed = _model_seed(run.config, role)
    if (path / "config.json").exists():
        run.log(f"[algorithm1] reusing the trained {role} model in {path}")
        model, stored = load_checkpoint(path, run.device)
        _require_same_training(path, stored, CheckpointConfig(
            architecture=spec, dataset=run.config.dataset, seed=seed, recipe=recipe.to_dict(),
            notes={"init": run.config.init} if role == "robust" else {},
        ))
        return model
    model = build_model(spec)
    model.load_state_dict(init)
    history = train(model, run.dataset, recipe, seed=seed, device=run.device,
                    augment=augmentation_for(run.dataset.name),
                    progress=run.progress, description=f"train {role}", processes=run.processes)
    run.write(lambda: save_checkpoint(path, model, CheckpointConfig(
        architecture=spec, dataset=run.config.dataset, seed=seed,
        recipe=recipe.to_dict(), metrics={"history": history},
        notes={"algorithm1_role": role, "init": run.config.init,
               "training_processes": run.processes.to_dict()},
    )))
    return model


def train_role(config: Algorithm1Config, dataset: Dataset, path: str | Path, role: str, *,
               device: torch.device, progress: bool = True, log: Callable[[str], None] = print) -> None:
    """Step 1 (``role = "normal"``) or step 2 (``"robust"``) alone, into the checkpoint folder
    ``path``: what a sweep shares between the settings that train the same model."""
    if role not in ("normal", "robust"):
        raise BadInput(f"role {role!r}: expected normal or robust")
    run = Algorithm1Run(Path(path).parent, config, dataset, device, progress, log)
    spec, *_ = _structure(config, dataset)
    normal_init, robust_init = _initial_weights(spec, config)
    _train_or_reuse(run, role, Path(path), spec, normal_init if role == "normal" else robust_init)


def run_trial(config: Algorithm1Config, dataset: Dataset, out: str | Path, t: int, *,
              device: torch.device, progress: bool = True, log: Callable[[str], None] = print) -> Trial:
    """Steps 3 and 4 of trial ``t`` alone, in the run folder ``out`` (its models trained or
    reused as :func:`run_algorithm1` would): the same trial, number for number, as the one
    :func:`run_algorithm1` runs, which later reuses it."""
    if not 1 <= t <= config.trials:
        raise BadInput(f"trial {t}: the run has trials 1..{config.trials}")
    run = Algorithm1Run(Path(out), config, dataset, device, progress, log)
    spec, _, a, boundary = _structure(config, dataset)
    _prepare_folder(run, resume=True)
    normal, robust = _trained_models(run, spec)
    acc_star = run.evaluate(robust, _model_seed(config, "robust") + 100).robust_accuracy("Acc*")
    return _trial(run, t, normal, robust, boundary, a, acc_star.value)


def _require_same_training(path: Path, stored: CheckpointConfig, wanted: CheckpointConfig) -> None:
    """A checkpoint is reused only if this run would have trained it: same architecture,
    dataset, seed, recipe (missing fields read as their defaults) and, for the robust
    model, initialisation (the normal model's initial weights are the same either way)."""
    checks = [
        ("architecture", stored.architecture.to_dict(), wanted.architecture.to_dict()),
        ("dataset", stored.dataset, wanted.dataset),
        ("seed", stored.seed, wanted.seed),
        ("recipe", TrainRecipe.from_dict(stored.recipe).to_dict(), wanted.recipe),
    ]
    if "init" in wanted.notes:
        checks.append(("init", stored.notes.get("init"), wanted.notes["init"]))
    for name, found, expected in checks:
        if found != expected:
            if isinstance(found, dict) and isinstance(expected, dict):
                key = next(k for k in sorted({*found, *expected}) if found.get(k) != expected.get(k))
                name, found, expected = f"{name}.{key}", found.get(key), expected.get(key)
            raise BadInput(
                f"{path} holds a model trained with {name} = {found!r}, but this run trains "
                f"{name} = {expected!r}: remove that directory or choose another --out"
            )


def _trial(run: Algorithm1Run, t: int, normal: nn.Sequential, robust: nn.Sequential,
           boundary: int, a: int, acc_star: float) -> Trial:
    """Steps 3 and 4 for trial ``t`` (read back from disk when already finished)."""
    path = run.out / "trials" / f"trial_{t:03d}.json"
    if path.exists():
        run.log(f"[algorithm1] trial {t}: reusing finished result {path}")
        return _read_finished(path, Trial.from_dict, "trial", "delete it and --resume redoes that trial")
    finetuning = _finetune(run, t, normal, robust, boundary, acc_star)
    config, seed, model, best = run.config, finetuning.seed, finetuning.model, finetuning.best()
    final = run.evaluate(model, seed + 500, keep_adversarial=True)
    gamma_b = run.evaluate(model, seed + 501, margin=True).expected_adversarial_margin("gamma_b")
    rhos, dependency_warnings = _dependencies(run, model, final, a, seed)
    first_gap = measured_gap(robust, ROBUST_READOUT, model, FINETUNED_READOUT, run.dataset.x_test,
                             run.dataset.y_test, config.threat(), f"margin_gap_{a + 1}",
                             steps=config.attack_steps, seed=seed + 502)
    trial = Trial(
        trial=t,
        seed=seed,
        acc_sr=finetuning.acc_sr,
        gacc=replace(best.robust_accuracy, name="gAcc"),
        gacc_epoch=best.epoch,
        epochs=len(finetuning.curve),
        reached_target=finetuning.reached_target(),
        target=finetuning.target,
        curve=finetuning.curve,
        final_robust_accuracy=final.robust_accuracy("final_robust_accuracy"),
        gamma_b=gamma_b,
        rho=rhos,
        dependency_warnings=tuple(dependency_warnings),
        margin_gap_first=tuple(first_gap),
    )
    run.write(lambda: write_json_atomic(path, trial.to_dict()))
    return trial


@dataclass(frozen=True)
class Finetuning:
    """Step 3 of one trial: ``Acc_sr`` of ``(f*_a, f_b)``, the robust accuracy after each
    finetuning epoch, the stopping target ``Acc* - k`` and the finetuned network."""

    seed: int
    acc_sr: Measurement
    curve: tuple[CurvePoint, ...]
    target: float
    model: nn.Sequential

    def best(self) -> CurvePoint:
        """The epoch of the highest robust accuracy (``gAcc``; the first of equals)."""
        return max(self.curve, key=lambda point: point.robust_accuracy.value)

    def reached_target(self) -> bool:
        return self.best().robust_accuracy.value >= self.target


def robust_part_under_normal_rest(normal: nn.Sequential, robust: nn.Sequential, boundary: int) -> nn.Sequential:
    """``(f*_a, f_b)``: copies of the robust model's stages before ``boundary`` (f_b's first
    stage) followed by the normal model's from it (step 3's starting network)."""
    return nn.Sequential(*copy.deepcopy(robust[:boundary]), *copy.deepcopy(normal[boundary:]))


def _finetune(run: Algorithm1Run, t: int, normal: nn.Sequential, robust: nn.Sequential,
              boundary: int, acc_star: float) -> Finetuning:
    """Step 3 of trial ``t``: ``(f*_a, f_b)`` measured (``Acc_sr``), then ``f_b`` finetuned
    adversarially with ``f*_a`` frozen until the robust accuracy reaches ``Acc* - k`` or
    ``E`` epochs pass; every attack of the trial is seeded from ``seed + 1000 t``."""
    config = run.config
    seed = config.seed + 1000 * t
    model = robust_part_under_normal_rest(normal, robust, boundary)
    start = run.evaluate(model, seed)
    target = acc_star - config.tolerance
    curve: list[CurvePoint] = []

    def after_epoch(epoch: int, trained: nn.Module) -> bool:
        accuracy = run.evaluate(trained, seed + epoch).robust_accuracy("robust_accuracy")
        curve.append(CurvePoint(epoch, accuracy))
        return accuracy.value >= target

    train(model, run.dataset, config.finetuning_recipe(), seed=seed,
          device=run.device, frozen_stages=boundary, after_epoch=after_epoch,
          augment=augmentation_for(run.dataset.name),
          progress=run.progress, description=f"finetune f_b, trial {t}", processes=run.processes)
    return Finetuning(seed, start.robust_accuracy("Acc_sr"), tuple(curve), target, model)


def _dependencies(run: Algorithm1Run, model: nn.Module, attacked: AttackEvaluation,
                  a: int, seed: int) -> tuple[tuple[LayerPairRho, ...], list[str]]:
    """Step 4: ``rho_j`` for ``j = a+1..n`` on the attacked test inputs (THEORY.md section 2),
    each with the estimator's value on class-wise shuffled pairs (its bias at independence).
    Returns the pairs and the estimator's warnings (e.g. dimension too high for the
    samples per class), which travel into the results and the report."""
    with torch.no_grad():
        activations, _ = layer_activations(model.eval(), attacked.x_adv.to(run.device))
    layers = activations[a - 1:]  # the estimators run where the activations live
    names = [f"rho_{j}" for j in range(a + 1, len(activations) + 1)]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        pairs = dependency_per_layer_pair(
            layers, run.dataset.y_test, run.config.estimator, names=names, seed=seed,
            permutations=DEPENDENCY_PERMUTATIONS,
        )
    return layer_pair_rhos(pairs, first_j=a + 1), summarize_warnings(caught)


def _summary(trials: tuple[Trial, ...], acc_star: float, tolerance: float) -> Algorithm1Summary:
    """The paper's row: ``Diff = gAcc - Acc*``, and the lowest rho per pair among the
    trials that reached the target (all trials when none did, said so)."""
    reached = [t for t in trials if t.reached_target] or list(trials)
    lowest: dict[str, LowestRho] = {}
    for trial in reached:
        for pair in trial.rho:
            rho = pair.rho
            if rho.name not in lowest or rho.value < lowest[rho.name].value:
                lowest[rho.name] = LowestRho(rho.value, rho.interval, trial.trial, rho.unit)
    best = max(trials, key=lambda t: t.gacc.value)
    return Algorithm1Summary(
        trials_reaching_target=sum(t.reached_target for t in trials),
        rho_from="trials that reached the target" if any(t.reached_target for t in trials)
        else "all trials (none reached the target)",
        best_gacc=best.gacc.value,
        diff=best.gacc.value - acc_star,
        lowest_rho=lowest,
        tolerance=tolerance,
    )


ROBUST_READOUT = "f*_b (the robust model's own trained rest), logits"
FINETUNED_READOUT = "the finetuned network's logits"


def t2_measurements(gamma_a: Measurement, trial: Trial) -> dict[str, Measurement | list[Measurement]]:
    """The named measurements T2 reads for one trial, readouts named (caveat C1):
    ``gamma_a`` reads the robust first part ``f*_a`` with its own trained rest ``f*_b``;
    ``gamma_b`` reads the finetuned network ``(f*_a, f_b')`` with its logits. A2's gap at
    ``j = a+1`` compares those two different readouts and is measured (certified and
    attacked, ``margin_gap_first``); for ``j > a+1`` both sides are ``f_b'``'s trained rest
    and the canonical identity applies (:mod:`semirobust.empirical.studies.canonical_readouts`)."""
    measurements: dict[str, Measurement | list[Measurement]] = {
        "gamma_a": renamed(gamma_a, "gamma_a", readout=ROBUST_READOUT),
        "gamma_b": renamed(trial.gamma_b, "gamma_b", readout=FINETUNED_READOUT),
    }
    for pair in trial.rho:
        measurements[f"rho_{pair.j}"] = pair.rho
        measurements.update(canonical_a2_measurements(
            pair.j, "canonical: the trained rest of the network after each layer"))
    if trial.margin_gap_first:
        measurements[trial.margin_gap_first[0].name] = list(trial.margin_gap_first)
    return measurements


def _t2_verdicts(gamma_a: Measurement, trials: tuple[Trial, ...]) -> dict[str, Verdict]:
    return {f"T2 (trial {t.trial})": judge("T2", t2_measurements(gamma_a, t)) for t in trials}
