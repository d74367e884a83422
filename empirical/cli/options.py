"""Options and helpers shared by the subcommands (``--device``, ``--seed``, validators).

Imports of torch-backed modules happen inside the functions that need them, so that a
command which uses only ``--device``/``--seed`` (``theory``) starts without torch.
"""

from __future__ import annotations

import argparse
import json
import math
from typing import Any

from semirobust.empirical.runtime.device_names import DEVICE_CHOICES
from semirobust.errors import BadInput


def add_common_options(parser: argparse.ArgumentParser) -> None:
    """``--device auto|cpu|cuda`` and ``--seed`` (DESIGN.md: every command has both)."""
    parser.add_argument(
        "--device", choices=DEVICE_CHOICES, default="auto",
        help="where to compute; auto = CUDA when available, else CPU (default: auto)",
    )
    parser.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")


def add_split_options(parser: argparse.ArgumentParser) -> None:
    """``--split A`` (weight layers in f_a) or ``--fb-layers N`` (weight layers in f_b)."""
    group = parser.add_mutually_exclusive_group(required=True)
    group.add_argument("--split", type=int, metavar="A", help="weight layers in f_a")
    group.add_argument("--fb-layers", type=int, metavar="N", help="weight layers in f_b (paper's convention)")


def non_negative_float(text: str) -> float:
    """argparse type: a finite float >= 0."""
    value = _finite_float(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {text}")
    return value


def positive_float(text: str) -> float:
    """argparse type: a finite float > 0."""
    value = _finite_float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
    return value


def positive_int(text: str) -> int:
    """argparse type: an integer >= 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be an integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {text}")
    return value


def _finite_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number, got {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be finite, got {text}")
    return value


def add_model_options(parser: argparse.ArgumentParser, *, arch_default: str | None = None,
                      dataset_default: str | None = None) -> None:
    """``--arch``, ``--arch-kwargs``, ``--dataset``, ``--data-root`` (required without defaults)."""
    from semirobust.empirical.data import dataset_names
    from semirobust.empirical.model import architecture_names

    parser.add_argument("--arch", default=arch_default, required=arch_default is None,
                        help=f"architecture ({', '.join(architecture_names())})")
    parser.add_argument("--arch-kwargs", default="{}", help='builder options as JSON, e.g. \'{"width": 8}\'')
    parser.add_argument("--dataset", default=dataset_default, required=dataset_default is None,
                        help=f"dataset ({', '.join(dataset_names())})")
    parser.add_argument("--data-root", default=None, help="folder of an on-disk dataset")


def architecture_kwargs(text: str) -> dict[str, Any]:
    """``--arch-kwargs`` parsed (the builders validate the options themselves)."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise BadInput(f"--arch-kwargs is not JSON: {error.msg}") from None


def add_adversarial_training_options(parser: argparse.ArgumentParser) -> None:
    """``--method pgd|trades`` and ``--trades-beta`` (THEORY.md section 6: both are used)."""
    from semirobust.empirical.studies.training import ADVERSARIAL_LOSSES

    parser.add_argument("--method", choices=sorted(ADVERSARIAL_LOSSES), default="pgd",
                        help="adversarial training: PGD (Madry et al.) or TRADES (default: pgd)")
    parser.add_argument("--trades-beta", type=non_negative_float, default=6.0,
                        help="TRADES' weight of the KL term (default 6)")
