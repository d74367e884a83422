"""The printed table and the JSON file of ``semirobust s1``, from its typed study."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from semirobust.empirical.reports.writers import write_json_atomic
from semirobust.empirical.studies.s1 import S1Study


def write_s1_json(study: S1Study, path: str | os.PathLike, metadata: Mapping[str, Any]) -> Path:
    """The command's metadata and every readout's measurements and both L2 verdicts."""
    return write_json_atomic(path, {**metadata, **study.to_dict()})


def s1_table(study: S1Study) -> str:
    """Every number with its interval, kind and estimator, readout by readout; the verdicts."""
    row = "{:<34} {:<16} {:>9}  {:<20} {:<9} {}"
    header = row.format("readout", "quantity", "value", "interval", "kind", "estimator")
    title = (
        f"S1 on split a={study.a} of n={study.n}: readouts fitted on {study.fit_inputs} "
        f"inputs, every number on {study.held_out_inputs} held-out inputs"
    )
    lines = [title, header, "-" * len(header)]
    for report in study.reports():
        for quantity, m in report.labelled():
            interval = f"[{m.interval[0]:.4g}, {m.interval[1]:.4g}]"
            lines.append(
                row.format(
                    report.readout["readout"],
                    quantity,
                    f"{m.value:.4g}",
                    interval,
                    m.kind.value,
                    m.estimator,
                )
            )
    for label, check in (
        ("the combined readout's blocks", study.l2_blocks),
        ("the separately fitted per-layer readouts", study.l2_per_layer),
    ):
        conclusion = check.verdict.conclusion[0]
        lines.append(
            f"L2 with {label}: {check.verdict.status.value}; conclusion "
            f"{conclusion.statement}: {conclusion.measured:.4g} >= "
            f"{conclusion.threshold:.4g} {conclusion.status.value}"
        )
    return "\n".join(lines)
