"""``report.md``, plots and the printed summary of an Algorithm 1 run."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, Sequence

from semirobust.empirical.reports.plots import plot_finetuning_curves, plot_rho_per_pair
from semirobust.empirical.reports.tables import (
    KIND_MEANING,
    MEASUREMENT_HEADER,
    algorithm1_measurements,
    markdown_table,
    measurement_rows,
    plain_table,
)
from semirobust.empirical.reports.writers import write_text_atomic
from semirobust.theory.render import verdict_row




def paper_row(results: Mapping[str, Any]) -> tuple[list[str], list[str]]:
    """The paper's table columns for this run (supplement, THEORY.md section 6)."""
    summary = results["summary"]
    header = ["Acc", "Acc*", "Acc_sr", "gAcc", "Diff", "epochs"]
    best = max(results["trials"], key=lambda t: t["gAcc"]["value"])
    row = [f"{results['Acc']['value']:.3f}", f"{results['Acc*']['value']:.3f}",
           f"{best['Acc_sr']['value']:.3f}", f"{best['gAcc']['value']:.3f}",
           f"{summary['Diff']:+.3f}", str(best["epochs"])]
    for name, rho in sorted(summary["lowest_rho"].items(), key=lambda kv: -int(kv[0].split("_")[1])):
        header.append(name)
        row.append(f"{rho['value']:.2f}")
    return header, row


def write_algorithm1_report(results: Mapping[str, Any], out: Path, *, elapsed_seconds: float,
                            device: str, extra_sections: Sequence[str] = ()) -> str:
    """Write ``report.md`` and ``plots/*.png`` under ``out``; return the stdout summary.

    ``extra_sections`` (Markdown) go after the verdicts."""
    out = Path(out)
    plots = [
        plot_finetuning_curves(results, out / "plots" / "finetuning.png"),
        plot_rho_per_pair([(f"trial {t['trial']}", t["rho"]) for t in results["trials"]],
                          out / "plots" / "rho_per_pair.png"),
    ]
    config, split = results["config"], results["split"]
    header, row = paper_row(results)
    rows = measurement_rows(algorithm1_measurements(results))
    lines = [
        "# Algorithm 1 report",
        "",
        f"{config['architecture']} on {config['dataset']}; attack {config['attack']} "
        f"({config['norm']}, eps = {config['eps']:g}, {config['attack_steps']} steps); "
        f"split a = {split['a']} of n = {split['n']} weight layers ({split['fb_layers']} in f_b); "
        f"initial weights of the normal and robust models: **{config['init']}**; "
        f"{config['trials']} trials of at most {config['finetune_epochs']} finetuning epochs, "
        f"stopping at Acc* - k with k = {config['tolerance']}. Seed {config['seed']}, device {device}, "
        f"{elapsed_seconds:.0f} s.",
        "",
        "## The paper's columns",
        "",
        markdown_table(header, [row]),
        "",
        "Acc, Acc*, Acc_sr and gAcc are robust accuracies on the same test set under the same attack; "
        "Diff = gAcc - Acc*; rho columns are the lowest value among trials that reached the target "
        f"({results['summary']['rho_from']}).",
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
        *(_diagnostics(results) or ["No estimator or attack warnings."]),
        "",
        "## Verdicts",
        "",
        *[verdict["markdown"] + "\n" for verdict in results["verdicts"].values()],
        *extra_sections,
        "## Plots",
        "",
        *[f"![{p.stem}](plots/{p.name})" for p in plots],
        "",
    ]
    write_text_atomic(out / "report.md", "\n".join(lines))
    verdicts = [f"{name}: {row[1]} (decided by {row[2]})" for name, verdict in results["verdicts"].items()
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


def _diagnostics(results: Mapping[str, Any]) -> list[str]:
    """One bullet per distinct warning, naming the trials it came from."""
    trials_by_message: dict[str, list[int]] = {}
    for trial in results["trials"]:
        for message in trial.get("dependency_warnings", []):
            trials_by_message.setdefault(message, []).append(trial["trial"])
    return [f"- trials {', '.join(map(str, t))}: {m}" for m, t in trials_by_message.items()]
