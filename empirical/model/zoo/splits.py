"""Weight-layer counts and valid splits of each architecture, as a table (docs/zoo.md).

The paper names a split by the number of weight layers in ``f_b`` ("4 or 12 layers in
f_b", THEORY.md section 1). A split must fall on a stage boundary
(:func:`~semirobust.empirical.model.stages.valid_splits`), so on residual networks only some
``f_b`` sizes exist; this module says which, per architecture, from the built models.
Models are built on PyTorch's ``meta`` device: the paper's sizes cost no memory or time.

``python -m semirobust.empirical.model.zoo.splits`` prints the table of ``docs/zoo.md``.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import pairwise

import torch

from semirobust.empirical.model.registry import ArchitectureSpec, build_model
from semirobust.empirical.model.stages import count_weight_layers, stage_weight_counts, valid_splits
from semirobust.empirical.model.zoo import ZOO_ARCHITECTURES

PAPER_FB_LAYERS = (4, 12)
CIFAR_SHAPE = (3, 32, 32)
VIT_B_4 = {"patch": 4, "depth": 12, "width": 768, "heads": 12, "mlp_width": 3072}


@dataclass(frozen=True)
class SplitSummary:
    """Counting facts of one architecture: ``n``, weight layers per stage, valid ``a``."""

    spec: ArchitectureSpec
    weight_layers: int
    stage_weight_counts: tuple[int, ...]
    valid_fa_layers: tuple[int, ...]

    @property
    def valid_fb_layers(self) -> tuple[int, ...]:
        """Valid ``f_b`` sizes ``n - a``, ascending (the paper's way of naming a split)."""
        return tuple(sorted(self.weight_layers - a for a in self.valid_fa_layers))

    def nearest_valid_fb(self, fb_layers: int) -> tuple[int, ...]:
        """``(fb_layers,)`` if valid, else the closest valid ``f_b`` sizes on either side."""
        if fb_layers in self.valid_fb_layers:
            return (fb_layers,)
        below = [fb for fb in self.valid_fb_layers if fb < fb_layers]
        above = [fb for fb in self.valid_fb_layers if fb > fb_layers]
        return tuple(([below[-1]] if below else []) + ([above[0]] if above else []))


def summarize(spec: ArchitectureSpec) -> SplitSummary:
    """Build ``spec`` on the meta device and read its counts and stage boundaries."""
    with torch.device("meta"):
        model = build_model(spec)
    return SplitSummary(
        spec=spec,
        weight_layers=count_weight_layers(model),
        stage_weight_counts=tuple(stage_weight_counts(model)),
        valid_fa_layers=tuple(valid_splits(model)),
    )


def paper_specs() -> list[ArchitectureSpec]:
    """Every zoo architecture at its default (paper) size on CIFAR-10, ViT-B/4 beside the
    small default ViT, and the embedded digits CNN."""

    def cifar(name: str, **kwargs: int) -> ArchitectureSpec:
        return ArchitectureSpec(name, CIFAR_SHAPE, 10, (0.5,) * 3, (0.25,) * 3, kwargs)

    specs = [cifar(name) for name in ZOO_ARCHITECTURES]
    specs.append(cifar("vit", **VIT_B_4))
    specs.append(ArchitectureSpec("digits-cnn", (1, 8, 8), 10, (0.5,), (0.25,)))
    return specs


def _fb_cell(summary: SplitSummary, fb_layers: int) -> str:
    if fb_layers >= summary.weight_layers:
        return f"no (n = {summary.weight_layers})"
    nearest = summary.nearest_valid_fb(fb_layers)
    if nearest == (fb_layers,):
        return f"yes (a = {summary.weight_layers - fb_layers})"
    return "no; nearest " + " or ".join(str(fb) for fb in nearest)


def _compact(values: tuple[int, ...]) -> str:
    """``1, 3, 5, 7`` -> ``1-7 step 2``; lists that are not such a progression stay lists."""
    steps = {b - a for a, b in pairwise(values)}
    if len(values) < 3 or len(steps) != 1:
        return ", ".join(str(v) for v in values)
    step = steps.pop()
    return f"{values[0]}-{values[-1]}" + ("" if step == 1 else f" step {step}")


def split_table_markdown(summaries: list[SplitSummary]) -> str:
    """The Markdown table of ``docs/zoo.md``: one row per architecture."""
    header = (
        "| architecture | options | weight layers n | weight layers per stage | valid f_b sizes "
        "(--fb-layers) | " + " | ".join(f"f_b = {fb}" for fb in PAPER_FB_LAYERS) + " |"
    )
    lines = [header, "|" + "---|" * (5 + len(PAPER_FB_LAYERS))]
    for summary in summaries:
        options = ", ".join(f"{k}={v}" for k, v in summary.spec.kwargs.items()) or "defaults"
        per_stage = _compact_counts(summary.stage_weight_counts)
        cells = [
            summary.spec.name, options, str(summary.weight_layers), per_stage,
            _compact(summary.valid_fb_layers),
            *(_fb_cell(summary, fb) for fb in PAPER_FB_LAYERS),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _compact_counts(counts: tuple[int, ...]) -> str:
    """``0, 1, 2, 2, 2, 1`` -> ``0, 1, 2x3, 1``."""
    parts: list[str] = []
    index = 0
    while index < len(counts):
        end = index
        while end + 1 < len(counts) and counts[end + 1] == counts[index]:
            end += 1
        repeat = end - index + 1
        parts.append(str(counts[index]) if repeat == 1 else f"{counts[index]}x{repeat}")
        index = end + 1
    return ", ".join(parts)


if __name__ == "__main__":
    print(split_table_markdown([summarize(spec) for spec in paper_specs()]), end="")
