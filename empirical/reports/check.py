"""``report.md``, ``report.json`` and plots of ``semirobust check``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Mapping

from semirobust.empirical.reports.plots import (
    plot_bounds_across_splits,
    plot_finetuning_curves,
    plot_lipschitz_per_layer,
    plot_rho_per_pair,
)
from semirobust.empirical.reports.tables import (
    KIND_MEANING,
    MEASUREMENT_HEADER,
    markdown_table,
    measurement_rows,
    plain_table,
)
from semirobust.empirical.reports.writers import write_json_atomic, write_text_atomic
from semirobust.theory.render import VERDICT_HEADER, verdict_row


def algorithm1_run_of(checkpoint: Path) -> Mapping[str, Any] | None:
    """The Algorithm 1 results next to a checkpoint made by it (``RUN/robust``), if any."""
    results = Path(checkpoint).parent / "results.json"
    if results.is_file():
        data = json.loads(results.read_text())
        if "trials" in data and "Acc*" in data:
            return data
    return None


def write_check_report(report: dict[str, Any], out: Path, checkpoint: Path) -> str:
    """Write everything under ``out``; return the stdout summary."""
    out = Path(out)
    plots = [
        plot_bounds_across_splits(report["per_split"], report["measurements"]["gamma_whole"][::-1],
                                  out / "plots" / "bounds_across_splits.png"),
        plot_rho_per_pair([("this network", report["rho"])], out / "plots" / "rho_per_pair.png"),
    ]
    certified = bool(report["lipschitz_layers"])
    if certified:
        plots.append(plot_lipschitz_per_layer(report["lipschitz_layers"], out / "plots" / "lipschitz_per_layer.png"))
    run = algorithm1_run_of(checkpoint)
    if run is not None:
        plots.append(plot_finetuning_curves(run, out / "plots" / "finetuning.png"))
    write_json_atomic(out / "report.json", report)
    shown = ["clean_margin", "gamma_whole", "gamma_transfer", "L_b", "Delta_a"]
    rows = measurement_rows(
        [report["clean_accuracy"], report["robust_accuracy"]]
        + [m for name in shown for m in report["measurements"].get(name, [])]
        + [entry for rho in report["rho"] for entry in (rho, rho["independent"]) if entry]
    )
    split, threat = report["split"], report["threat"]
    statuses = [verdict_row(name, verdict) for name, verdict in report["verdicts"].items()]
    lines = [
        "# semirobust check",
        "",
        f"Checkpoint `{checkpoint}`; split a = {split['a']} of n = {split['n']} weight layers "
        f"({split['fb_layers']} in f_b); threat model {threat['norm']} eps = {threat['eps']:g}; "
        f"first {report['samples']} test inputs. Readouts: the trained rest of the network "
        "after each layer (canonical, caveat C1).",
        "",
        "## Verdicts",
        "",
        markdown_table(VERDICT_HEADER, statuses),
        "",
        "Status on the test set: holds / violated only on certified or exact evidence, "
        "supported / contradicted when an attack value or an estimate decides (THEORY.md 7).",
        "",
        "## Measurements at this split",
        "",
        markdown_table(MEASUREMENT_HEADER, rows),
        "",
        "Kinds: " + "; ".join(f"**{k}** = {v}" for k, v in KIND_MEANING.items()) + ". "
        + (f"Certified per-sample margins never exceeded attacked ones: "
           f"{report['sandwich_violations']} violations." if certified else
           f"Nothing here is certified: {report['certification']}"),
        "",
        "## Across split points",
        "",
        _across_splits_table(report["per_split"], certified),
        "",
        "## Diagnostics",
        "",
        *([f"- {w}" for w in report["warnings"]] or ["No warnings."]),
        "",
        "## Evidence per result",
        "",
        *[verdict["markdown"] + "\n" for verdict in report["verdicts"].values()],
        "## Plots",
        "",
        *[f"![{p.stem}](plots/{p.name})" for p in plots],
        "",
    ]
    write_text_atomic(out / "report.md", "\n".join(lines))
    return "\n".join([plain_table(MEASUREMENT_HEADER, rows), "", plain_table(VERDICT_HEADER, statuses), "",
                      f"report: {out / 'report.md'}  json: {out / 'report.json'}  plots: {out / 'plots'}"])


def _across_splits_table(per_split: list[dict[str, Any]], certified: bool) -> str:
    """T2's claimed level at every split, and the Lipschitz transfer when there is a bound."""
    if not certified:
        return markdown_table(["a", "T2 level gamma_a + sum rho"],
                              [[str(s["a"]), f"{s['T2_bound']['value']:.3g}"] for s in per_split])
    return markdown_table(
        ["a", "T2 level gamma_a + sum rho", "transfer certified", "transfer estimate", "L_b", "Delta_a certified", "Delta_a attacked"],
        [[str(s["a"]), f"{s['T2_bound']['value']:.3g}", f"{s['gamma_transfer_certified']['value']:.3g}",
          f"{s['gamma_transfer_estimate']['value']:.3g}", f"{s['L_b']['value']:.3g}",
          f"{s['Delta_a_certified']['value']:.3g}", f"{s['Delta_a_attacked']['value']:.3g}"]
         for s in per_split],
    )
