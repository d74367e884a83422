"""``results.json``, ``report.md``, plots and the printed summary of ``semirobust demo``."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from semirobust.empirical.reports.algorithm1 import write_algorithm1_report, write_paper_table
from semirobust.empirical.reports.check import write_check_report
from semirobust.empirical.reports.seed_spread import seed_section
from semirobust.empirical.reports.tables import markdown_table, value_with_interval
from semirobust.empirical.reports.writers import write_json_atomic
from semirobust.empirical.studies.algorithm1 import Algorithm1Result, TrainingOutcome
from semirobust.empirical.studies.demo import (
    CHECK_FOLDER,
    INDEPENDENT_FOLDER,
    ROBUST_FOLDER,
    SEEDS_FOLDER,
    DemoResult,
)
from semirobust.theory.render import VERDICT_HEADER, verdict_row


def write_demo_report(result: DemoResult, out: Path, *, metadata: Mapping[str, Any],
                      elapsed_seconds: float, device: str) -> str:
    """Write the check report under ``out/check``, then ``results.json`` (the shared run
    with the init comparison and the check's verdicts), the paper's table, ``report.md``
    and ``plots/`` under ``out``; return the stdout summary."""
    out = Path(out)
    write_check_report(result.check, out / CHECK_FOLDER, out / ROBUST_FOLDER, metadata)
    write_json_atomic(out / "results.json", {
        **metadata,
        **result.shared.to_dict(),
        "init_comparison": init_comparison(result.shared, result.independent),
        "check": check_summary(result),
        "seed_spread": {**result.seeds.to_dict(), "runs": SEEDS_FOLDER},
    })
    write_paper_table(result.shared, out)
    return write_algorithm1_report(
        result.shared, out, elapsed_seconds=elapsed_seconds, device=device,
        extra_sections=[init_section(result.shared, result.independent), seed_section(result.seeds, SEEDS_FOLDER),
                        check_section(result)],
    )


def check_summary(result: DemoResult) -> dict[str, Any]:
    """Where the check report is, and each verdict's status and what decided it."""
    rows = [verdict_row(name, verdict, result.check.population.get(name))
            for name, verdict in result.check.verdicts.items()]
    return {"report": f"{CHECK_FOLDER}/report.md",
            "verdicts": {row[0]: dict(zip(VERDICT_HEADER[1:], row[1:])) for row in rows}}


def check_section(result: DemoResult) -> str:
    rows = [verdict_row(name, verdict, result.check.population.get(name))
            for name, verdict in result.check.verdicts.items()]
    return "\n".join([
        "## Every result on the robust model (`semirobust check`)",
        "",
        markdown_table(VERDICT_HEADER, rows),
        "",
        f"Evidence, the gamma sandwich and the bound-versus-measured plots: `{CHECK_FOLDER}/report.md`.",
        "",
    ])


def init_comparison(shared: Algorithm1Result, independent: TrainingOutcome) -> dict[str, Any]:
    """Acc*, Acc_sr, gAcc and epochs of trial 1 under both initialisations."""
    def row(outcome: TrainingOutcome) -> dict[str, Any]:
        return {"Acc*": outcome.acc_star.to_dict(), "Acc_sr": outcome.acc_sr.to_dict(),
                "gAcc": outcome.gacc.to_dict(), "epochs": outcome.epochs,
                "reached_target": outcome.reached_target}

    return {"shared": row(TrainingOutcome.of_run(shared)), "independent": row(independent),
            "independent_run": INDEPENDENT_FOLDER}


def init_section(shared: Algorithm1Result, independent: TrainingOutcome) -> str:
    rows = []
    for init, outcome in (("shared", TrainingOutcome.of_run(shared)), ("independent", independent)):
        rows.append([init, *(value_with_interval(m) for m in (outcome.acc_star, outcome.acc_sr, outcome.gacc)),
                     str(outcome.epochs), "yes" if outcome.reached_target else "no"])
    return "\n".join([
        "## Shared versus independent initial weights (trial 1)",
        "",
        markdown_table(["init", "Acc*", "Acc_sr", "gAcc", "epochs", "reached Acc* - k"], rows),
        "",
        ("Same normal model; the robust model starts from the normal model's initial weights "
         "(shared, as the authors' code allows) or from an independent draw. Robust accuracies "
         f"(PGD, attack estimates) with Wilson 95% intervals; steps 1-3 of the independent run "
         f"are in `{INDEPENDENT_FOLDER}/`."),
        "",
    ])

