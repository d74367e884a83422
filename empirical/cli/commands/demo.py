"""``semirobust demo``: the paper's question on the embedded default, end to end.

Trains a normal and a PGD-robust 7-layer CNN on scikit-learn's digits, runs Algorithm 1
(THEORY.md section 6) with the robust first part under the normally trained rest, measures
the layer-to-layer dependency on attacked data, judges T2, runs ``check`` on the robust model
(every result judged, in ``--out/check``), and writes ``results.json``, ``report.md`` and
``plots/*.png`` under ``--out``. A second, one-trial run in
``--out/independent-init`` starts the robust model from independent initial weights,
since THEORY.md section 6 says ``Acc_sr`` depends strongly on that choice.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch

from semirobust.empirical.cli.commands.check import check_and_report
from semirobust.empirical.cli.options import add_common_options, add_out_folder
from semirobust.empirical.data import Dataset, load_dataset
from semirobust.empirical.model.checkpoint import load_checkpoint
from semirobust.empirical.model.stages import count_weight_layers
from semirobust.empirical.reports.algorithm1 import write_algorithm1_report
from semirobust.empirical.reports.tables import markdown_table
from semirobust.empirical.reports.writers import write_json_atomic
from semirobust.empirical.runtime.device import resolve_device, seed_everything
from semirobust.empirical.studies.algorithm1 import Algorithm1Config, run_algorithm1
from semirobust.empirical.studies.check import CheckSettings
from semirobust.empirical.studies.training import TrainRecipe

DEMO_RECIPE = TrainRecipe(epochs=30, batch_size=64, lr=0.05)
INDEPENDENT_FOLDER = "independent-init"
CHECK_FOLDER = "check"
CHECK_SAMPLES = 200


def demo_config(seed: int) -> Algorithm1Config:
    """digits-cnn (width 16) on digits, 30 training epochs, PGD l-inf eps 0.1 (10 steps),
    3 weight layers in f_b, 2 trials of at most 10 finetuning epochs, stop at Acc* - 0.03,
    shared init."""
    return Algorithm1Config(
        architecture="digits-cnn", dataset="digits", fb_layers=3, attack="pgd", norm="linf",
        eps=0.1, attack_steps=10, trials=2, finetune_epochs=10, tolerance=0.03, init="shared",
        estimator="ksg", recipe=DEMO_RECIPE, seed=seed,
    )


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("demo", description=__doc__)
    add_out_folder(parser, help="output folder", default="runs/demo")
    parser.add_argument("--resume", action="store_true", help="continue (or reuse) the run in --out")
    add_common_options(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    start = time.perf_counter()
    seed_everything(args.seed)
    device = resolve_device(args.device)
    out = Path(args.out)
    dataset = load_dataset("digits")
    log = lambda line: print(line, file=sys.stderr)
    config = demo_config(args.seed)
    results = run_algorithm1(config, dataset, out, device=device, resume=args.resume, log=log)
    independent_out = out / INDEPENDENT_FOLDER
    if not (independent_out / "normal").exists():
        # same seed, same normal initial weights and recipe: the normal model is identical
        shutil.copytree(out / "normal", independent_out / "normal")
    independent = run_algorithm1(
        replace(config, init="independent", trials=1), dataset, independent_out,
        device=device, resume=True, log=log,
    )
    check_summary = check_robust_model(out, config, dataset, device, args)
    results = {**results, "init_comparison": init_comparison(results, independent),
               "check": check_summary}
    write_json_atomic(out / "results.json", results)
    print(write_algorithm1_report(
        results, out, elapsed_seconds=time.perf_counter() - start, device=str(device),
        extra_sections=[init_section(results["init_comparison"]), check_section(check_summary)],
    ))
    return 0


def check_robust_model(out: Path, config: Algorithm1Config, dataset: Dataset, device: torch.device,
                       args: argparse.Namespace) -> dict[str, Any]:
    """``semirobust check`` on the robust model at the demo's split: every verdict, with
    the gamma sandwich and the Lipschitz-transfer bounds at every split."""
    model, _ = load_checkpoint(out / "robust", device)
    settings = CheckSettings(a=count_weight_layers(model) - config.fb_layers, threat=config.threat(),
                             n=CHECK_SAMPLES, estimator=config.estimator, seed=args.seed)
    report, _ = check_and_report(model, dataset, settings, out / "robust", out / CHECK_FOLDER,
                                 device=device, args=args)
    return {"report": f"{CHECK_FOLDER}/report.md",
            "verdicts": {name: verdict["status"] for name, verdict in report["verdicts"].items()}}


def check_section(summary: Mapping[str, Any]) -> str:
    rows = [[name, status] for name, status in summary["verdicts"].items()]
    return "\n".join([
        "## Every result on the robust model (`semirobust check`)",
        "",
        markdown_table(["result", "verdict"], rows),
        "",
        f"Evidence, the gamma sandwich and the bound-versus-measured plots: `{summary['report']}`.",
        "",
    ])


def init_comparison(shared: Mapping[str, Any], independent: Mapping[str, Any]) -> dict[str, Any]:
    """Acc*, Acc_sr, gAcc and epochs of the first trial under both initialisations."""
    def row(results: Mapping[str, Any]) -> dict[str, Any]:
        trial = results["trials"][0]
        return {"Acc*": results["Acc*"], "Acc_sr": trial["Acc_sr"], "gAcc": trial["gAcc"],
                "epochs": trial["epochs"], "reached_target": trial["reached_target"]}

    return {"shared": row(shared), "independent": row(independent),
            "independent_run": INDEPENDENT_FOLDER}


def init_section(comparison: Mapping[str, Any]) -> str:
    rows = []
    for init in ("shared", "independent"):
        entry = comparison[init]
        rows.append([init, *(_fmt(entry[k]) for k in ("Acc*", "Acc_sr", "gAcc")),
                     str(entry["epochs"]), "yes" if entry["reached_target"] else "no"])
    return "\n".join([
        "## Shared versus independent initial weights (trial 1)",
        "",
        markdown_table(["init", "Acc*", "Acc_sr", "gAcc", "epochs", "reached Acc* - k"], rows),
        "",
        "Same normal model; the robust model starts from the normal model's initial weights "
        "(shared, as the authors' code allows) or from an independent draw. Robust accuracies "
        f"(PGD, attack estimates) with Wilson 95% intervals; the independent run is in "
        f"`{comparison['independent_run']}/`.",
        "",
    ])


def _fmt(measurement: Mapping[str, Any]) -> str:
    low, high = measurement["interval"]
    return f"{measurement['value']:.3f} [{low:.3f}, {high:.3f}]"
