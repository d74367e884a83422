"""``report.md``, plots and the printed summary of an Algorithm 1 run."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Sequence

from semirobust.empirical.reports.plots import plot_finetuning_curves, plot_rho_per_pair
from semirobust.empirical.reports.tables import (
    KIND_MEANING,
    MEASUREMENT_HEADER,
    markdown_table,
    measurement_rows,
    plain_table,
)
from semirobust.empirical.reports.writers import write_text_atomic
from semirobust.empirical.studies.algorithm1 import Algorithm1Result
from semirobust.theory.render import verdict_row


def paper_row(result: Algorithm1Result) -> tuple[list[str], list[str]]:
    """The paper's table columns for this run (supplement, THEORY.md section 6)."""
    summary = result.summary
    header = ["Acc", "Acc*", "Acc_sr", "gAcc", "Diff", "epochs"]
    best = result.best_trial()
    row = [f"{result.acc.value:.3f}", f"{result.acc_star.value:.3f}",
           f"{best.acc_sr.value:.3f}", f"{best.gacc.value:.3f}",
           f"{summary.diff:+.3f}", str(best.epochs)]
    for name, rho in sorted(summary.lowest_rho.items(), key=lambda kv: -int(kv[0].split("_")[1])):
        header.append(name)
        row.append(f"{rho.value:.2f}")
    return header, row


#: LaTeX for the paper's column names; rho columns are ``rho_J`` -> ``$\rho_{J}$``
LATEX_COLUMNS = {"Acc": "Acc", "Acc*": "Acc$^*$", "Acc_sr": "Acc$_{\\mathrm{sr}}$", "gAcc": "gAcc",
                 "Diff": "Diff", "epochs": "epochs"}


def paper_latex(result: Algorithm1Result) -> str:
    """The paper's table as a LaTeX ``tabular`` with booktabs rules (``\\toprule``,
    ``\\midrule``, ``\\bottomrule``; needs ``\\usepackage{booktabs}``)."""
    header, row = paper_row(result)
    names = [LATEX_COLUMNS.get(name) or f"$\\rho_{{{name.split('_', 1)[1]}}}$" for name in header]
    values = [value.replace("+", "$+$", 1) if value.startswith("+") else
              value.replace("-", "$-$", 1) if value.startswith("-") else value for value in row]
    config = result.config
    return "\n".join([
        f"% semirobust Algorithm 1: {config.architecture} on {config.dataset}, {config.attack} "
        f"{config.norm} eps={config.eps:g}; rho in {_rho_unit(result)}",
        "\\begin{tabular}{" + "r" * len(header) + "}",
        "\\toprule",
        " & ".join(names) + " \\\\",
        "\\midrule",
        " & ".join(values) + " \\\\",
        "\\bottomrule",
        "\\end{tabular}",
        "",
    ])


def _rho_unit(result: Algorithm1Result) -> str:
    units = sorted({rho.unit for rho in result.summary.lowest_rho.values()})
    return ", ".join(units) or "no pair"


def write_paper_table(result: Algorithm1Result, out: Path) -> list[Path]:
    """The paper's columns as ``table.csv``, ``table.md`` and ``table.tex`` under ``out``."""
    header, row = paper_row(result)
    buffer = io.StringIO()
    csv.writer(buffer).writerows([header, row])
    return [write_text_atomic(Path(out) / "table.csv", buffer.getvalue()),
            write_text_atomic(Path(out) / "table.md", markdown_table(header, [row]) + "\n"),
            write_text_atomic(Path(out) / "table.tex", paper_latex(result))]


def write_algorithm1_report(result: Algorithm1Result, out: Path, *, elapsed_seconds: float,
                            device: str, extra_sections: Sequence[str] = ()) -> str:
    """Write ``report.md`` and ``plots/*.png`` under ``out``; return the stdout summary.

    ``extra_sections`` (Markdown) go after the verdicts."""
    out = Path(out)
    plots = [
        plot_finetuning_curves(result, out / "plots" / "finetuning.png"),
        plot_rho_per_pair([(f"trial {t.trial}", t.rho) for t in result.trials],
                          out / "plots" / "rho_per_pair.png"),
    ]
    config, split = result.config, result.split
    header, row = paper_row(result)
    rows = measurement_rows(result.headline_measurements())
    lines = [
        "# Algorithm 1 report",
        "",
        f"{config.architecture} on {config.dataset}; attack {config.attack} "
        f"({config.norm}, eps = {config.eps:g}, {config.attack_steps} steps"
        f"{'' if config.train_attack_steps is None else f'; {config.train_attack_steps} in training'}); "
        f"split a = {split.a} of n = {split.n} weight layers ({split.fb_layers} in f_b); "
        f"initial weights of the normal and robust models: **{config.init}**; "
        f"{config.trials} trials of at most {config.finetune_epochs} finetuning epochs, "
        f"stopping at Acc* - k with k = {config.tolerance}. Seed {config.seed}, device {device}, "
        f"{elapsed_seconds:.0f} s.",
        "",
        "## The paper's columns",
        "",
        markdown_table(header, [row]),
        "",
        "Acc, Acc*, Acc_sr and gAcc are robust accuracies on the same test set under the same attack; "
        "Diff = gAcc - Acc*; rho columns are the lowest value among trials that reached the target "
        f"({result.summary.rho_from}).",
        "",
        "## Every measurement",
        "",
        markdown_table(MEASUREMENT_HEADER, rows),
        "",
        "Kinds: " + "; ".join(f"**{k}** = {v}" for k, v in KIND_MEANING.items()) + ".",
        "gamma_a is the robust model's own expected margin under a margin-minimising attack "
        "(readout: its trained rest f*_b); gamma_b the finetuned network's. rho is estimated on "
        "activations of attacked test inputs and is a property of its estimator (THEORY.md caveat C2); "
        "`rho_j_independent` is the same estimator on class-wise shuffled pairs, i.e. its reading "
        "where the true dependency is zero.",
        "",
        "## Diagnostics",
        "",
        *(_diagnostics(result) or ["No estimator or attack warnings."]),
        "",
        "## Verdicts",
        "",
        *[verdict.describe(label) + "\n" for label, verdict in result.verdicts.items()],
        *extra_sections,
        "## Plots",
        "",
        *[f"![{p.stem}](plots/{p.name})" for p in plots],
        "",
    ]
    write_text_atomic(out / "report.md", "\n".join(lines))
    verdicts = [f"{name}: {row[1]} (decided by {row[2]})" for name, verdict in result.verdicts.items()
                for row in [verdict_row(name, verdict)]]
    return "\n".join([
        plain_table(header, [row]),
        "",
        plain_table(MEASUREMENT_HEADER, rows),
        "",
        *verdicts,
        "",
        f"results: {out / 'results.json'}  report: {out / 'report.md'}  plots: {out / 'plots'}  "
        f"({elapsed_seconds:.0f} s on {device})",
    ])


def _diagnostics(result: Algorithm1Result) -> list[str]:
    """One bullet per distinct warning, naming the trials it came from."""
    trials_by_message: dict[str, list[int]] = {}
    for trial in result.trials:
        for message in trial.dependency_warnings:
            trials_by_message.setdefault(message, []).append(trial.trial)
    return [f"- trials {', '.join(map(str, t))}: {m}" for m, t in trials_by_message.items()]
