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
"""

from __future__ import annotations

import copy
import json
import warnings
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Callable

import torch
from torch import nn

from semirobust import __version__
from semirobust.empirical.attacks import AttackConfig, attack_names, build_attack
from semirobust.empirical.attacks.evaluation import AttackEvaluation, evaluate_attack
from semirobust.empirical.attacks.objectives import negative_margin
from semirobust.empirical.attacks.threat import ThreatModel
from semirobust.empirical.data import Dataset
from semirobust.empirical.data.augment import augmentation_for
from semirobust.empirical.dependency import ESTIMATORS, dependency_per_layer_pair
from semirobust.empirical.model import ArchitectureSpec, build_model
from semirobust.empirical.model.checkpoint import CheckpointConfig, load_checkpoint, save_checkpoint
from semirobust.empirical.model.stages import (
    count_weight_layers,
    fa_layers_from,
    layer_activations,
    split_stage_index,
)
from semirobust.empirical.reports.tables import summarize_warnings
from semirobust.empirical.reports.writers import write_json_atomic
from semirobust.empirical.measure.readouts import measured_gap
from semirobust.empirical.studies.algorithm1_verdicts import FINETUNED_READOUT, ROBUST_READOUT, t2_verdict
from semirobust.empirical.studies.training import TrainRecipe, train
from semirobust.errors import BadInput

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

    def adversarial_recipe(self) -> TrainRecipe:
        """Step 2's PGD training recipe: the normal one with the attack's threat model."""
        return replace(self.recipe, adversarial=True, norm=self.norm, eps=self.eps, steps=self.attack_steps)

    def finetuning_recipe(self) -> TrainRecipe:
        """Step 3's recipe: PGD training for at most ``E`` epochs at a constant learning
        rate (no decay: the stopping rule, not a schedule, decides the length)."""
        return replace(self.adversarial_recipe(), epochs=self.finetune_epochs, milestones=())

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["recipe"] = self.recipe.to_dict()
        return data


@dataclass
class Algorithm1Run:
    """Paths and helpers of one run folder."""

    out: Path
    config: Algorithm1Config
    dataset: Dataset
    device: torch.device
    progress: bool = True
    log: Callable[[str], None] = print

    def evaluate(self, model: nn.Module, seed: int, *, margin: bool = False,
                 keep_adversarial: bool = False) -> AttackEvaluation:
        """The run's attack on the test set (cross-entropy objective, or the margin)."""
        attack = build_attack(self.config.attack, AttackConfig(
            threat=self.config.threat(), steps=self.config.attack_steps, seed=seed,
            **({"objective": negative_margin} if margin else {}),
        ))
        return evaluate_attack(
            model, self.dataset.x_test, self.dataset.y_test, attack,
            device=self.device, keep_adversarial=keep_adversarial,
        )


def run_algorithm1(
    config: Algorithm1Config,
    dataset: Dataset,
    out: str | Path,
    *,
    device: torch.device,
    resume: bool = False,
    progress: bool = True,
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Run (or resume) Algorithm 1; return the results dict also written to ``results.json``."""
    run = Algorithm1Run(Path(out), config, dataset, device, progress, log)
    spec = ArchitectureSpec(
        config.architecture, dataset.input_shape, dataset.num_classes,
        dataset.mean, dataset.std, dict(config.architecture_kwargs),
    )
    probe = build_model(spec)
    n = count_weight_layers(probe)
    a = fa_layers_from(probe, split=None, fb_layers=config.fb_layers)
    boundary = split_stage_index(probe, a)
    _prepare_folder(run, resume)
    normal_init, robust_init = _initial_weights(spec, config)
    normal, normal_eval = _trained_model(run, "normal", spec, normal_init, config.recipe)
    robust, robust_eval = _trained_model(run, "robust", spec, robust_init, config.adversarial_recipe())
    acc_star = robust_eval.robust_accuracy("Acc*")
    gamma_a = run.evaluate(robust, config.seed + 17, margin=True).expected_adversarial_margin("gamma_a")
    trials = [
        _trial(run, t, normal, robust, boundary, a, acc_star.value)
        for t in range(1, config.trials + 1)
    ]
    results = {
        "semirobust_version": __version__,
        "config": config.to_dict(),
        "split": {"a": a, "n": n, "fb_layers": config.fb_layers, "first_fb_stage": boundary},
        "Acc": normal_eval.robust_accuracy("Acc").to_dict(),
        "Acc_clean": normal_eval.clean_accuracy("Acc_clean").to_dict(),
        "Acc*": acc_star.to_dict(),
        "Acc*_clean": robust_eval.clean_accuracy("Acc*_clean").to_dict(),
        "gamma_a": gamma_a.to_dict(),
        "trials": trials,
        "summary": _summary(trials, acc_star.value, config.tolerance),
    }
    results["verdicts"] = {f"T2 (trial {t['trial']})": t2_verdict(results, t) for t in trials}
    write_json_atomic(run.out / "results.json", results)
    return results


def _prepare_folder(run: Algorithm1Run, resume: bool) -> None:
    config_path = run.out / "algorithm1_config.json"
    wanted = run.config.to_dict()
    if config_path.exists():
        stored = json.loads(config_path.read_text())
        if not resume:
            raise BadInput(f"{run.out} already holds an Algorithm 1 run: pass --resume to continue it or choose another --out")
        if "recipe" in stored:  # fields added to the recipe later read as their defaults
            stored = {**stored, "recipe": TrainRecipe.from_dict(stored["recipe"]).to_dict()}
        if stored != json.loads(json.dumps(wanted)):
            raise BadInput(f"--resume: {config_path} was written with other settings; use the same arguments or another --out")
    write_json_atomic(config_path, wanted)


def _initial_weights(spec: ArchitectureSpec, config: Algorithm1Config) -> tuple[dict, dict]:
    """Initial weights of the normal and robust models: the same ones (``shared``, as the
    authors' code allows) or two independent draws (``independent``)."""
    torch.manual_seed(config.seed)
    normal_init = copy.deepcopy(build_model(spec).state_dict())
    if config.init == "shared":
        return normal_init, normal_init
    torch.manual_seed(config.seed + 1)
    return normal_init, copy.deepcopy(build_model(spec).state_dict())


def _trained_model(run: Algorithm1Run, role: str, spec: ArchitectureSpec, init: dict,
                   recipe: TrainRecipe) -> tuple[nn.Sequential, AttackEvaluation]:
    """Steps 1 and 2: train (or reuse the finished checkpoint), then attack."""
    path = run.out / role
    seed = run.config.seed + (0 if role == "normal" else 1)
    if (path / "config.json").exists():
        run.log(f"[algorithm1] reusing the trained {role} model in {path}")
        model, stored = load_checkpoint(path, run.device)
        _require_same_training(path, stored, CheckpointConfig(
            architecture=spec, dataset=run.config.dataset, seed=seed, recipe=recipe.to_dict(),
            notes={"init": run.config.init} if role == "robust" else {},
        ))
    else:
        model = build_model(spec)
        model.load_state_dict(init)
        history = train(model, run.dataset, recipe, seed=seed, device=run.device,
                        augment=augmentation_for(run.dataset.name),
                        progress=run.progress, description=f"train {role}")
        save_checkpoint(path, model, CheckpointConfig(
            architecture=spec, dataset=run.config.dataset, seed=seed,
            recipe=recipe.to_dict(), metrics={"history": history},
            notes={"algorithm1_role": role, "init": run.config.init},
        ))
    return model, run.evaluate(model, seed + 100)


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
           boundary: int, a: int, acc_star: float) -> dict[str, Any]:
    """Steps 3 and 4 for trial ``t`` (read back from disk when already finished)."""
    path = run.out / "trials" / f"trial_{t:03d}.json"
    if path.exists():
        run.log(f"[algorithm1] trial {t}: reusing finished result {path}")
        return json.loads(path.read_text())
    config = run.config
    seed = config.seed + 1000 * t
    model = nn.Sequential(*copy.deepcopy(robust[:boundary]), *copy.deepcopy(normal[boundary:]))
    start = run.evaluate(model, seed)
    target = acc_star - config.tolerance
    curve: list[dict[str, Any]] = []

    def after_epoch(epoch: int, trained: nn.Module) -> bool:
        accuracy = run.evaluate(trained, seed + epoch).robust_accuracy("robust_accuracy")
        curve.append({"epoch": epoch, "robust_accuracy": accuracy.to_dict()})
        return accuracy.value >= target

    train(model, run.dataset, config.finetuning_recipe(), seed=seed,
          device=run.device, frozen_stages=boundary, after_epoch=after_epoch,
          augment=augmentation_for(run.dataset.name),
          progress=run.progress, description=f"finetune f_b, trial {t}")
    best = max(curve, key=lambda point: point["robust_accuracy"]["value"])
    final = run.evaluate(model, seed + 500, keep_adversarial=True)
    gamma_b = run.evaluate(model, seed + 501, margin=True).expected_adversarial_margin("gamma_b")
    rhos, dependency_warnings = _dependencies(run, model, final, a, seed)
    first_gap = measured_gap(robust, ROBUST_READOUT, model, FINETUNED_READOUT, run.dataset.x_test,
                             run.dataset.y_test, config.threat(), f"margin_gap_{a + 1}",
                             steps=config.attack_steps, seed=seed + 502)
    result = {
        "trial": t,
        "seed": seed,
        "Acc_sr": start.robust_accuracy("Acc_sr").to_dict(),
        "gAcc": {**best["robust_accuracy"], "name": "gAcc", "epoch": best["epoch"]},
        "epochs": len(curve),
        "reached_target": best["robust_accuracy"]["value"] >= target,
        "target": target,
        "curve": curve,
        "final_robust_accuracy": final.robust_accuracy("final_robust_accuracy").to_dict(),
        "gamma_b": gamma_b.to_dict(),
        "margin_gap_first": [m.to_dict() for m in first_gap],
        "rho": rhos,
        "dependency_warnings": dependency_warnings,
    }
    write_json_atomic(path, result)
    return result


def _dependencies(run: Algorithm1Run, model: nn.Module, attacked: AttackEvaluation,
                  a: int, seed: int) -> tuple[list[dict[str, Any]], list[str]]:
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
    rhos = [
        {"pair": [j - 1, j], **pair.rho.to_dict(),
         "independent": pair.independent.to_dict() if pair.independent else None}
        for j, pair in zip(range(a + 1, len(activations) + 1), pairs)
    ]
    return rhos, summarize_warnings(caught)


def _summary(trials: list[dict[str, Any]], acc_star: float, tolerance: float) -> dict[str, Any]:
    """The paper's row: ``Diff = gAcc - Acc*``, and the lowest rho per pair among the
    trials that reached the target (all trials when none did, said so)."""
    reached = [t for t in trials if t["reached_target"]] or trials
    lowest = {}
    for trial in reached:
        for rho in trial["rho"]:
            key = rho["name"]
            if key not in lowest or rho["value"] < lowest[key]["value"]:
                lowest[key] = {"value": rho["value"], "interval": rho["interval"], "trial": trial["trial"], "unit": rho["unit"]}
    best = max(trials, key=lambda t: t["gAcc"]["value"])
    return {
        "trials_reaching_target": sum(t["reached_target"] for t in trials),
        "rho_from": "trials that reached the target" if any(t["reached_target"] for t in trials) else "all trials (none reached the target)",
        "best_gAcc": best["gAcc"]["value"],
        "Diff": best["gAcc"]["value"] - acc_star,
        "lowest_rho": lowest,
        "tolerance": tolerance,
    }
