"""``report.md``, ``report.json`` and plots of ``semirobust check``, from its typed result."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

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
from semirobust.empirical.studies.algorithm1 import Algorithm1Result
from semirobust.empirical.studies.check import CheckResult, SplitBounds
from semirobust.theory.render import VERDICT_HEADER, verdict_row

#: the measurements at the split shown in the table, in this order
SHOWN = ("clean_margin", "gamma_whole", "gamma_transfer", "L_b", "Delta_a")
CANONICAL_TEXT = "Readouts: the trained rest of the network after each layer (canonical, caveat C1)."


def algorithm1_run_of(checkpoint: Path) -> Algorithm1Result | None:
    """The Algorithm 1 run next to a checkpoint made by it (``RUN/robust``), if any."""
    results = Path(checkpoint).parent / "results.json"
    if Path(checkpoint).is_dir() and results.is_file():
        data = json.loads(results.read_text())
        if "trials" in data and "Acc*" in data:
            return Algorithm1Result.from_dict(data)
    return None


def check_json(result: CheckResult, metadata: Mapping[str, Any], checkpoint: Path) -> dict[str, Any]:
    """``report.json``: the command's metadata, the checkpoint and the result (every verdict
    with its population and per-sample judgements and its Markdown description)."""
    return {**metadata, "checkpoint": str(checkpoint), **result.to_dict()}


def write_check_report(result: CheckResult, out: Path, checkpoint: Path,
                       metadata: Mapping[str, Any], *, source: str | None = None) -> str:
    """Write ``report.json``, ``report.md`` and ``plots/`` under ``out``; return the stdout
    summary. ``source`` says in ``report.md`` what was checked (default: the checkpoint)."""
    out = Path(out)
    plots = [
        plot_bounds_across_splits(result.per_split, result.measurements["gamma_whole"][::-1],
                                  out / "plots" / "bounds_across_splits.png"),
        plot_rho_per_pair([("this network", result.rho)], out / "plots" / "rho_per_pair.png"),
    ]
    if result.lipschitz is not None:
        plots.append(plot_lipschitz_per_layer(result.lipschitz.layers, out / "plots" / "lipschitz_per_layer.png"))
    run = algorithm1_run_of(checkpoint)
    if run is not None:
        plots.append(plot_finetuning_curves(run, out / "plots" / "finetuning.png"))
    write_json_atomic(out / "report.json", check_json(result, metadata, checkpoint))
    rows = measurement_rows(
        [result.clean_accuracy, result.robust_accuracy]
        + [m for name in SHOWN for m in result.measurements.get(name, ())]
        + [m for pair in result.rho for m in (pair.rho, pair.independent) if m is not None]
        + [m for name in _read_through(result) for m in result.measurements[name]]
    )
    settings = result.settings
    statuses = [verdict_row(name, verdict, result.population.get(name)) for name, verdict in result.verdicts.items()]
    lines = [
        "# semirobust check",
        "",
        f"{source or f'Checkpoint `{checkpoint}`'}; split a = {settings.a} of n = {result.n_layers} weight layers "
        f"({result.n_layers - settings.a} in f_b); threat model {settings.threat.norm} "
        f"eps = {settings.threat.eps:g}; first {result.samples} test inputs. "
        + (_readouts_text(result) if result.readouts else CANONICAL_TEXT),
        "",
        *_readouts_section(result),
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
           f"{result.sandwich_violations} violations." if result.certified else
           f"Nothing here is certified: {result.uncertifiable}"),
        "",
        "## Across split points",
        "",
        _across_splits_table(result.per_split, result.certified),
        "",
        "## Diagnostics",
        "",
        *([f"- {w}" for w in result.warnings] or ["No warnings."]),
        "",
        "## Evidence per result",
        "",
        *[verdict.describe(label) + "\n" for label, verdict in result.verdicts.items()],
        "## Plots",
        "",
        *[f"![{p.stem}](plots/{p.name})" for p in plots],
        "",
    ]
    write_text_atomic(out / "report.md", "\n".join(lines))
    return "\n".join([plain_table(MEASUREMENT_HEADER, rows), "", plain_table(VERDICT_HEADER, statuses), "",
                      f"report: {out / 'report.md'}  json: {out / 'report.json'}  plots: {out / 'plots'}"])


def _read_through(result: CheckResult) -> list[str]:
    """The gammas and A2 gaps measured through non-canonical readouts, layer by layer."""
    if not result.readouts:
        return []
    a, n = result.settings.a, result.n_layers
    return (["gamma_a", "gamma_b"] + [f"gamma_{j}" for j in range(a, n + 1)]
            + [f"{q}_{j}" for j in range(a + 1, n + 1) for q in ("margin_gap", "U")])


def _readouts_text(result: CheckResult) -> str:
    readout = result.settings.readout
    return (f"Readouts ({readout.name}, caveat C1): every gamma and A2 margin gap below is "
            f"read through the readout of its layer (listed under Readouts), certified by "
            f"bound propagation through the layers and the readout and attacked through both; "
            f"gamma_whole, the transfer bound, LIP and the T2 level across splits read the "
            f"network's own logits.")


def _readouts_section(result: CheckResult) -> list[str]:
    """One row per layer: the readout's name, constraint, stored norm or Lipschitz
    constant, and the data it was fitted on."""
    if not result.readouts:
        return []
    rows = [[str(r["layer"]), r["readout"], r.get("constraint", "-"),
             f"{r['weight_norm']:.6g}" if "weight_norm" in r else f"L = {r['lipschitz_constant']:.6g}",
             r.get("fit_data", "-")] for r in result.readouts]
    return ["## Readouts", "",
            markdown_table(["layer", "readout", "constraint", "||W||_2 or L", "fitted on"], rows), ""]


def _across_splits_table(per_split: tuple[SplitBounds, ...], certified: bool) -> str:
    """T2's claimed level at every split, and the Lipschitz transfer when there is a bound."""
    if not certified:
        return markdown_table(["a", "T2 level gamma_a + sum rho"],
                              [[str(s.a), f"{s.t2_level.value:.3g}"] for s in per_split])
    columns = ("gamma_transfer_certified", "gamma_transfer_estimate", "L_b", "Delta_a_certified", "Delta_a_attacked")
    return markdown_table(
        ["a", "T2 level gamma_a + sum rho", "transfer certified", "transfer estimate", "L_b", "Delta_a certified", "Delta_a attacked"],
        [[str(s.a), f"{s.t2_level.value:.3g}", *(f"{s.transfer[key].value:.3g}" for key in columns)]
         for s in per_split],
    )
