"""Figures for reports (matplotlib, Agg backend: no display needed).

Each plot is readable without the text: a title, axis labels with units, a legend.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def _save(fig: plt.Figure, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.tmp{path.suffix}")
    fig.tight_layout()
    fig.savefig(tmp, dpi=120)
    plt.close(fig)
    tmp.replace(path)
    return path


def plot_finetuning_curves(results: dict[str, Any], path: Path) -> Path:
    """Robust accuracy across finetuning epochs per trial, against Acc*, Acc*-k, Acc and
    each trial's Acc_sr (epoch 0), with 95% Wilson intervals as bands."""
    fig, ax = plt.subplots(figsize=(7, 4.5))
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for index, trial in enumerate(results["trials"]):
        colour = colours[index % len(colours)]
        points = [(0, trial["Acc_sr"])] + [(p["epoch"], p["robust_accuracy"]) for p in trial["curve"]]
        epochs = [e for e, _ in points]
        ax.plot(epochs, [m["value"] for _, m in points], marker="o", color=colour,
                label=f"trial {trial['trial']}: (f*_a, f_b) finetuned (epoch 0 = Acc_sr)")
        ax.fill_between(epochs, [m["interval"][0] for _, m in points],
                        [m["interval"][1] for _, m in points], color=colour, alpha=0.15)
    acc_star, acc = results["Acc*"], results["Acc"]
    ax.axhline(acc_star["value"], color="black", linestyle="-", label=f"Acc* (robust model) = {acc_star['value']:.3f}")
    ax.axhline(acc_star["value"] - results["summary"]["tolerance"], color="black", linestyle=":",
               label=f"target Acc* - k (k = {results['summary']['tolerance']})")
    ax.axhline(acc["value"], color="grey", linestyle="--", label=f"Acc (normal model) = {acc['value']:.3f}")
    cfg = results["config"]
    ax.set_title(f"Algorithm 1: finetuning f_b under frozen f*_a ({cfg['attack']}, {cfg['norm']} eps={cfg['eps']:g})")
    ax.set_xlabel("finetuning epoch")
    ax.set_ylabel("robust accuracy on the test set (attack estimate)")
    ax.set_ylim(0, 1)
    ax.legend(fontsize=7, loc="lower right")
    return _save(fig, path)


def plot_rho_per_pair(trials: Sequence[dict[str, Any]], path: Path) -> Path:
    """rho_j per consecutive layer pair (j-1, j) with its confidence interval, per trial."""
    fig, ax = plt.subplots(figsize=(7, 4.5))
    width = 0.8 / max(1, len(trials))
    for index, trial in enumerate(trials):
        rhos = trial["rho"]
        xs = [k + index * width for k in range(len(rhos))]
        values = [r["value"] for r in rhos]
        errors = [[r["value"] - r["interval"][0] for r in rhos], [r["interval"][1] - r["value"] for r in rhos]]
        ax.bar(xs, values, width=width, yerr=errors, capsize=3, label=f"trial {trial['trial']}")
    first = trials[0]["rho"]
    ax.set_xticks([k + 0.4 - width / 2 for k in range(len(first))])
    ax.set_xticklabels([f"({r['pair'][0]},{r['pair'][1]})" for r in first])
    ax.set_xlabel("consecutive weight layers (j-1, j) in f_b")
    ax.set_ylabel(f"rho_j [{first[0]['unit']}] (statistical estimate)")
    ax.set_title(f"Mutual dependency on attacked test data ({first[0]['estimator']})")
    ax.legend(fontsize=8)
    return _save(fig, path)
