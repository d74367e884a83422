"""Figures for reports (matplotlib, Agg backend: no display needed).

Each plot is readable without the text: a title, axis labels with units, a legend. Every
figure is written twice: ``NAME.png`` (for the Markdown report) and ``NAME.pdf`` (vector,
for papers); the functions return the PNG's path.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from matplotlib.patches import Patch
from matplotlib.ticker import MaxNLocator

from semirobust.empirical.bounds.lipschitz import LayerLipschitz
from semirobust.empirical.studies.layer_pairs import LayerPairRho
from semirobust.theory.measurement import Measurement

if TYPE_CHECKING:
    from semirobust.empirical.studies.algorithm1 import Algorithm1Result
    from semirobust.empirical.studies.check import SplitBounds


FORMATS = ("png", "pdf")


def _save(fig: plt.Figure, path: Path) -> Path:
    """``path`` as PNG and beside it as PDF, each through a temporary file and a rename;
    the bounding box takes in every label and a legend placed outside the axes."""
    path = Path(path).with_suffix(".png")
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    for suffix in FORMATS:
        target = path.with_suffix(f".{suffix}")
        tmp = target.with_name(f".{target.stem}.tmp.{suffix}")
        fig.savefig(tmp, dpi=120, bbox_inches="tight", format=suffix)
        tmp.replace(target)
    plt.close(fig)
    return path


def plot_finetuning_curves(result: Algorithm1Result, path: Path) -> Path:
    """Robust accuracy across finetuning epochs per trial, against Acc*, Acc*-k, Acc and
    each trial's Acc_sr (epoch 0), with 95% Wilson intervals as bands."""
    fig, ax = plt.subplots(figsize=(7, 4.5))
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for index, trial in enumerate(result.trials):
        colour = colours[index % len(colours)]
        points = [(0, trial.acc_sr)] + [(p.epoch, p.robust_accuracy) for p in trial.curve]
        epochs = [e for e, _ in points]
        ax.plot(epochs, [m.value for _, m in points], marker="o", color=colour,
                label=f"trial {trial.trial}: (f*_a, f_b) finetuned (epoch 0 = Acc_sr)")
        ax.fill_between(epochs, [m.interval[0] for _, m in points],
                        [m.interval[1] for _, m in points], color=colour, alpha=0.15)
    acc_star, acc, tolerance = result.acc_star, result.acc, result.summary.tolerance
    ax.axhline(acc_star.value, color="black", linestyle="-", label=f"Acc* (robust model) = {acc_star.value:.3f}")
    ax.axhline(acc_star.value - tolerance, color="black", linestyle=":",
               label=f"target Acc* - k (k = {tolerance})")
    ax.axhline(acc.value, color="grey", linestyle="--", label=f"Acc (normal model) = {acc.value:.3f}")
    cfg = result.config
    ax.set_title(f"Algorithm 1: finetuning f_b under frozen f*_a ({cfg.attack}, {cfg.norm} eps={cfg.eps:g})")
    ax.set_xlabel("finetuning epoch")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylabel("robust accuracy on the test set (attack estimate)")
    ax.set_ylim(0, 1)
    ax.legend(fontsize=7, loc="lower right")
    return _save(fig, path)


def plot_rho_per_pair(series: Sequence[tuple[str, Sequence[LayerPairRho]]], path: Path) -> Path:
    """rho_j per consecutive layer pair (j-1, j) with its confidence interval, one bar
    series per label, and the estimator's reading at independence as black ticks."""
    fig, ax = plt.subplots(figsize=(7, 4.5))
    width = 0.8 / max(1, len(series))
    for index, (label, rhos) in enumerate(series):
        xs = [k + index * width for k in range(len(rhos))]
        values = [r.rho.value for r in rhos]
        errors = [[r.rho.value - r.rho.interval[0] for r in rhos], [r.rho.interval[1] - r.rho.value for r in rhos]]
        ax.bar(xs, values, width=width, yerr=errors, capsize=3, label=label)
        baseline = [(x, r.independent.value) for x, r in zip(xs, rhos) if r.independent is not None]
        if baseline:
            ax.scatter(*zip(*baseline), marker="_", s=300, color="black", zorder=3,
                       label="same estimator at independence" if index == 0 else None)
    first = series[0][1]
    ax.set_xticks([k + 0.4 - width / 2 for k in range(len(first))])
    ax.set_xticklabels([f"({r.pair[0]},{r.pair[1]})" for r in first])
    ax.set_xlabel("consecutive weight layers (j-1, j)")
    ax.set_ylabel(f"rho_j [{first[0].rho.unit}] (statistical estimate, 95% interval)")
    ax.set_title(f"Mutual dependency on attacked test data ({first[0].rho.estimator})")
    ax.legend(fontsize=8)
    return _save(fig, path)


def plot_bounds_across_splits(per_split: Sequence[SplitBounds], gamma: Sequence[Measurement],
                              path: Path) -> Path:
    """Bound versus measured margin at every split ``a``: the measured E[inf m] (attacked
    upper estimate and certified lower bound, flat in ``a``), T2's claimed level
    ``gamma_a + sum rho``, and the Lipschitz-transfer bound, certified and estimated."""
    fig, ax = plt.subplots(figsize=(7.5, 4.8))
    splits = [s.a for s in per_split]
    for measurement, style in zip(gamma, ("-", "--")):
        ax.plot(splits, [measurement.value] * len(splits), style, color="black",
                label=f"measured E[inf m], {measurement.kind.value} ({measurement.estimator})")
    series = [
        ("T2 claims gamma_b >= gamma_a + sum rho (logits + bits)", [s.t2_level for s in per_split], "tab:red", "o"),
        *((label, [s.transfer[key] for s in per_split], colour, marker)
          for label, key, colour, marker in (
              ("Lipschitz transfer, certified", "gamma_transfer_certified", "tab:blue", "s"),
              ("Lipschitz transfer, estimate (attacked Delta_a)", "gamma_transfer_estimate", "tab:green", "^"))
          if per_split[0].transfer),  # no transfer without a Lipschitz bound for this model
    ]
    for label, measurements, colour, marker in series:
        values = [m.value for m in measurements]
        low = [m.interval[0] for m in measurements]
        high = [m.interval[1] for m in measurements]
        ax.plot(splits, values, marker=marker, color=colour, label=label)
        ax.fill_between(splits, low, high, color=colour, alpha=0.15)
    ax.set_yscale("symlog", linthresh=1.0)
    ax.set_xlabel("split a (weight layers in f_a)")
    ax.set_ylabel("expected worst-case margin [logits] (symlog)")
    ax.set_title("Bounds versus the measured margin across split points")
    ax.set_xticks(splits)
    ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.14), ncol=2)
    return _save(fig, path)


def plot_lipschitz_per_layer(layers: Sequence[LayerLipschitz], path: Path) -> Path:
    """Per-layer l2 Lipschitz bounds (log scale), certified ones filled, estimates hatched;
    the product of the factors in the title."""
    fig, ax = plt.subplots(figsize=(max(7.0, 0.45 * len(layers) + 2), 5))
    xs = range(len(layers))
    for x, layer in zip(xs, layers):
        ax.bar(x, layer.bound, color="tab:blue" if layer.certified else "white",
               edgecolor="tab:blue", hatch=None if layer.certified else "//")
    ax.set_xticks(list(xs))
    ax.set_xticklabels([f"{layer.layer} [{layer.path}]" for layer in layers], fontsize=7,
                       rotation=60, ha="right", rotation_mode="anchor")
    ax.set_yscale("log")
    ax.set_xlabel("layer in execution order: type [path in the model]")
    ax.set_ylabel("l2 -> l2 Lipschitz bound (log scale)")
    product = math.prod(layer.bound for layer in layers)
    ax.set_title(f"Lipschitz bound per layer (BatchNorm folded into its conv); product {product:.3g}")
    ax.legend(handles=[
        Patch(facecolor="tab:blue", edgecolor="tab:blue", label="certified (exact norm or proven bound)"),
        Patch(facecolor="white", edgecolor="tab:blue", hatch="//", label="estimate (power iteration)"),
    ], fontsize=8, loc="upper right")
    return _save(fig, path)


def plot_grouped_accuracies(title: str, labels: Sequence[str],
                            series: dict[str, Sequence[tuple[float, float, float] | None]], path: Path) -> Path:
    """Grouped bars: one group per setting (``labels``), one bar per quantity of ``series``
    (value with its interval ``(value, low, high)`` as an error bar; ``None`` draws no bar)."""
    width = 0.8 / max(1, len(series))
    fig, ax = plt.subplots(figsize=(max(6.0, 1.1 * len(labels) * max(1, len(series)) * 0.45), 4.8))
    for index, (name, points) in enumerate(series.items()):
        xs = [i + (index - (len(series) - 1) / 2) * width for i, p in enumerate(points) if p is not None]
        drawn = [p for p in points if p is not None]
        ax.bar(xs, [p[0] for p in drawn], width, label=name,
               yerr=[[p[0] - p[1] for p in drawn], [p[2] - p[0] for p in drawn]], capsize=2)
    ax.set_xticks(range(len(labels)))
    ax.set_xticklabels(labels, rotation=30, ha="right", fontsize=7)
    ax.set_xlabel("setting")
    ax.set_ylabel("robust accuracy (attack estimate)")
    ax.set_ylim(0, 1)
    ax.set_title(title)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    return _save(fig, path)
