"""The paper's tables from a finished (or partly finished) sweep (THEORY.md section 6).

One table per architecture and dataset, one row per setting (the other axes): ``Acc`` and
``Acc*`` (attack estimates, Wilson 95% over test inputs), and across the setting's trials the
mean and a Student-t 95% interval of ``Acc_sr``, ``gAcc``, ``Diff = gAcc - Acc*``, the
epochs used and each ``rho_j`` (the interval covers trial-to-trial variation: finetuning
seeds; it is absent with one trial). Written as CSV, Markdown and LaTeX (booktabs) beside
one figure per table (PNG and PDF); ``semirobust sweep --report DIR`` rebuilds them from the
results on disk.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from semirobust.empirical.measure.statistics import mean_interval
from semirobust.empirical.reports.plots import plot_grouped_accuracies
from semirobust.empirical.reports.tables import markdown_table, value_with_interval
from semirobust.empirical.reports.writers import write_text_atomic
from semirobust.empirical.studies.algorithm1 import Algorithm1Result
from semirobust.errors import BadInput

GROUP_AXES = ("architecture", "dataset")


@dataclass(frozen=True)
class AcrossTrials:
    """A per-trial quantity over a setting's trials: mean and Student-t 95% interval."""

    values: tuple[float, ...]

    @property
    def mean(self) -> float:
        return float(np.mean(self.values))

    @property
    def interval(self) -> tuple[float, float] | None:
        return mean_interval(np.array(self.values)) if len(self.values) >= 2 else None

    def text(self, digits: int = 3) -> str:
        interval = self.interval
        if interval is None:
            return f"{self.mean:.{digits}f}"
        return f"{self.mean:.{digits}f} [{interval[0]:.{digits}f}, {interval[1]:.{digits}f}]"


@dataclass(frozen=True)
class SweepRow:
    """One setting's line of the paper's table."""

    axes: dict[str, object]
    result: Algorithm1Result

    def cells(self, rho_names: Sequence[str]) -> dict[str, str]:
        trials = self.result.trials
        acc_star = self.result.acc_star.value
        across = {
            "Acc_sr": AcrossTrials(tuple(t.acc_sr.value for t in trials)),
            "gAcc": AcrossTrials(tuple(t.gacc.value for t in trials)),
            "Diff": AcrossTrials(tuple(t.gacc.value - acc_star for t in trials)),
            "epochs": AcrossTrials(tuple(float(t.epochs) for t in trials)),
        }
        for name in rho_names:
            values = tuple(p.rho.value for t in trials for p in t.rho if p.rho.name == name)
            across[name] = AcrossTrials(values) if values else None
        cells = {key: str(value) for key, value in self.axes.items() if key not in GROUP_AXES}
        cells["Acc"] = value_with_interval(self.result.acc)
        cells["Acc*"] = value_with_interval(self.result.acc_star)
        cells.update({key: ("" if value is None else value.text(1 if key == "epochs" else 3))
                      for key, value in across.items()})
        cells["trials"] = f"{sum(t.reached_target for t in trials)}/{len(trials)}"
        return cells


def load_rows(out: Path) -> list[SweepRow]:
    """Every finished setting of the sweep in ``out`` (unfinished ones are skipped)."""
    manifest = Path(out) / "sweep.json"
    if not manifest.is_file():
        raise BadInput(f"{out}: no sweep.json here; run semirobust sweep SPEC --out {out} first")
    try:
        settings = json.loads(manifest.read_text(encoding="utf-8"))["settings"]
    except (ValueError, KeyError):
        raise BadInput(f"{manifest} is not a sweep manifest: delete it and run the sweep again") from None
    rows = []
    for setting in settings:
        results = Path(out) / "settings" / setting["name"] / "results.json"
        if results.is_file():
            try:
                result = Algorithm1Result.from_dict(json.loads(results.read_text(encoding="utf-8")))
            except (ValueError, KeyError, TypeError):
                raise BadInput(f"{results} is corrupt: delete it and rerun the sweep with --resume") from None
            rows.append(SweepRow(dict(setting["axes"]), result))
    return rows


def write_sweep_tables(out: Path) -> list[Path]:
    """The tables and figures of the sweep in ``out``, under ``out/tables/``; their paths."""
    rows = load_rows(out)
    if not rows:
        raise BadInput(f"{out}: no setting has finished yet; nothing to tabulate")
    written = []
    groups: dict[tuple[str, ...], list[SweepRow]] = {}
    for row in rows:
        key = tuple(str(getattr(row.result.config, axis)) for axis in GROUP_AXES)
        groups.setdefault(key, []).append(row)
    for key, members in groups.items():
        stem = Path(out) / "tables" / "_".join(key)
        header, lines = table(members)
        written += [
            write_text_atomic(stem.with_suffix(".csv"), _csv(header, lines)),
            write_text_atomic(stem.with_suffix(".md"), _markdown(key, header, lines, members)),
            write_text_atomic(stem.with_suffix(".tex"), _latex(key, header, lines)),
            plot_grouped_accuracies(f"Algorithm 1 sweep: {' / '.join(key)}", [_label(m) for m in members],
                                    _accuracy_series(members), stem.with_suffix(".png")),
        ]
    return written


def _label(row: SweepRow) -> str:
    return ", ".join(f"{k}={v}" for k, v in row.axes.items() if k not in GROUP_AXES) or "default"


def _accuracy_series(rows: Sequence[SweepRow]) -> dict[str, list[tuple[float, float, float] | None]]:
    """Acc and Acc* with their Wilson intervals; Acc_sr and gAcc as means over trials with
    their across-trial intervals (the mean alone with one trial)."""
    def measured(m) -> tuple[float, float, float]:
        return m.value, m.interval[0], m.interval[1]

    def across(values: tuple[float, ...]) -> tuple[float, float, float]:
        summary = AcrossTrials(values)
        low, high = summary.interval or (summary.mean, summary.mean)
        return summary.mean, low, high

    return {
        "Acc": [measured(r.result.acc) for r in rows],
        "Acc*": [measured(r.result.acc_star) for r in rows],
        "Acc_sr (mean over trials)": [across(tuple(t.acc_sr.value for t in r.result.trials)) for r in rows],
        "gAcc (mean over trials)": [across(tuple(t.gacc.value for t in r.result.trials)) for r in rows],
    }


def table(rows: Sequence[SweepRow]) -> tuple[list[str], list[list[str]]]:
    """Header and lines of one table (the rho columns of the deepest split present)."""
    rho_names = sorted({p.rho.name for row in rows for t in row.result.trials for p in t.rho},
                       key=lambda name: -int(name.split("_")[-1]))
    cells = [row.cells(rho_names) for row in rows]
    axes = [key for key in rows[0].axes if key not in GROUP_AXES]
    header = [*axes, "Acc", "Acc*", "Acc_sr", "gAcc", "Diff", "epochs", *rho_names, "trials"]
    return header, [[c.get(column, "") for column in header] for c in cells]


def _csv(header: list[str], lines: list[list[str]]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(lines)
    return buffer.getvalue()


def _markdown(key: tuple[str, ...], header: list[str], lines: list[list[str]],
              rows: Sequence[SweepRow]) -> str:
    unit = next((p.rho.unit for row in rows for t in row.result.trials for p in t.rho), "bits")
    return (
        f"# {' / '.join(key)}\n\n"
        "Acc, Acc*: attack estimates over the test inputs, Wilson 95%. Acc_sr, gAcc, Diff "
        "(gAcc - Acc*), epochs and rho_j: mean over trials with a Student-t 95% interval across "
        f"trials (none with one trial); rho_j in {unit}. trials: how many reached Acc* - k.\n\n"
        + markdown_table(header, lines) + "\n\n"
        f"![{' / '.join(key)}]({'_'.join(key)}.png)\n"
    )


def _latex(key: tuple[str, ...], header: list[str], lines: list[list[str]]) -> str:
    def escape(text: str) -> str:
        return text.replace("_", r"\_").replace("*", r"$^*$").replace("%", r"\%")

    body = [" & ".join(escape(cell) for cell in line) + r" \\" for line in lines]
    return "\n".join([
        f"% {' / '.join(key)}: semirobust sweep; needs \\usepackage{{booktabs}}",
        r"\begin{tabular}{" + "l" * len(header) + "}",
        r"\toprule",
        " & ".join(escape(h) for h in header) + r" \\",
        r"\midrule",
        *body,
        r"\bottomrule",
        r"\end{tabular}",
        "",
    ])
