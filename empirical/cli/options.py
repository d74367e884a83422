"""The option groups every subcommand shares, each declared once, and their validators.

Groups: ``--device --seed --threads`` (every command), the split (``--split A`` |
``--fb-layers N``), the threat model (``--eps --norm``), the attack settings (``--attack
--steps --restarts``), the samples (``--samples``, also spelled ``--limit``), the data root,
the model options of the training commands, and output paths (``--json`` files, ``--out``
folders). Every numeric option is validated at parse time by an argparse ``type=``
validator, so bad input ends as one line and exit 2 before any work starts; so do output
paths that could not be written (a directory given as ``--json``, an existing file given
as ``--out``, a folder that is not writable).

Defaults agree across commands: ``--eps`` defaults to the checkpoint's training eps where a
checkpoint is given (:func:`threat_model` records where the value came from) and to
:data:`DEFAULT_EPS` otherwise; ``--threads`` defaults to ``SEMIROBUST_THREADS``, else
:data:`DEFAULT_THREADS` (BENCHMARKS.md, "Threads": one thread was faster on the shared
2-core machine and gives the same numbers run to run whatever the load).

Imports of torch-backed modules happen inside the functions that need them, so that a
command which uses only the common options (``theory``) starts without torch.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from semirobust.empirical.runtime.device_names import DEVICE_CHOICES
from semirobust.errors import BadInput

# The threat radius where no checkpoint records one (training, Algorithm 1): 8/255, the
# CIFAR convention, which is also TrainRecipe.eps.
DEFAULT_EPS = 8 / 255
DEFAULT_NORM = "linf"
NORM_CHOICES = ("l2", "linf")
# torch's intra-op threads where neither --threads nor SEMIROBUST_THREADS is given.
DEFAULT_THREADS = 1
THREADS_VARIABLE = "SEMIROBUST_THREADS"
# Seeds are stored as signed 64-bit integers (torch.Generator.manual_seed, numpy).
SEED_MAX = 2**63 - 1


# ---- validators (argparse ``type=``): one-line errors naming the value -------------------

def _finite_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number, got {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be finite, got {text}")
    return value


def _integer(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be an integer, got {text!r}") from None


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


def open_unit_float(text: str) -> float:
    """argparse type: a float strictly between 0 and 1 (a level, a fraction)."""
    value = _finite_float(text)
    if not 0 < value < 1:
        raise argparse.ArgumentTypeError(f"must lie strictly between 0 and 1, got {text}")
    return value


def positive_int(text: str) -> int:
    """argparse type: an integer >= 1."""
    value = _integer(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {text}")
    return value


def non_negative_int(text: str) -> int:
    """argparse type: an integer >= 0."""
    value = _integer(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {text}")
    return value


def seed_value(text: str) -> int:
    """argparse type: a seed, an integer in ``0 .. 2**63 - 1`` (it must fit a signed 64-bit
    integer, as torch and numpy store it)."""
    value = _integer(text)
    if not 0 <= value <= SEED_MAX:
        raise argparse.ArgumentTypeError(f"must be an integer in 0..2**63-1, got {text}")
    return value


def one_of(names: Sequence[str]) -> Callable[[str], str]:
    """argparse type: one of ``names`` (listed in the error; for registries whose names
    are known when the parser is built but which argparse's ``choices`` would print as a
    Python list)."""
    def check(text: str) -> str:
        if text not in names:
            raise argparse.ArgumentTypeError(f"{text!r}: expected one of {', '.join(names)}")
        return text

    return check


def output_file(text: str) -> str:
    """argparse type: a file the command can write at the end (checked before any work):
    not a directory, not an unwritable file, below a folder that exists or can be created."""
    path = Path(text)
    if path.is_dir():
        raise argparse.ArgumentTypeError(f"{text} is a directory; give the path of a file to write")
    if path.exists() and not os.access(path, os.W_OK):
        raise argparse.ArgumentTypeError(f"{text} exists and is not writable")
    _check_creatable(path.parent, text)
    return text


def output_folder(text: str) -> str:
    """argparse type: a folder the command can write into (checked before any work): an
    existing folder, or a new one below a writable folder; never an existing file."""
    path = Path(text)
    if path.exists() and not path.is_dir():
        raise argparse.ArgumentTypeError(f"{text} is an existing file; give a folder")
    if path.is_dir():
        if not os.access(path, os.W_OK | os.X_OK):
            raise argparse.ArgumentTypeError(f"folder {text} is not writable")
        return text
    _check_creatable(path.parent, text)
    return text


def _check_creatable(folder: Path, text: str) -> None:
    """The nearest existing ancestor of ``folder`` must be a writable folder."""
    existing = folder if str(folder) else Path(".")
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir():
        raise argparse.ArgumentTypeError(f"{text}: {existing} is a file, not a folder")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise argparse.ArgumentTypeError(f"{text}: folder {existing} is not writable")


# ---- option groups ------------------------------------------------------------------------

def add_common_options(parser: argparse.ArgumentParser) -> None:
    """``--device auto|cpu|cuda``, ``--seed`` and ``--threads`` (every command has them).

    ``--seed`` drives the attacks and estimators (random starts, resampling); a dataset
    drawn at random is drawn with the checkpoint's recorded seed, never with ``--seed``."""
    parser.add_argument(
        "--device", choices=DEVICE_CHOICES, default="auto",
        help="where to compute; auto = CUDA when available, else CPU (default: auto)",
    )
    parser.add_argument("--seed", type=seed_value, default=0,
                        help="seed of attacks and estimators, 0..2**63-1 (default: 0)")
    parser.add_argument(
        "--threads", type=positive_int, default=None, metavar="N",
        help=f"torch CPU threads (default: ${THREADS_VARIABLE}, else {DEFAULT_THREADS}; "
             "more threads change float summation order, so numbers may differ by thread count)",
    )


def add_split_options(parser: argparse.ArgumentParser, *, required: bool = True,
                      missing: str = "") -> None:
    """``--split A`` (weight layers in f_a) or ``--fb-layers N`` (weight layers in f_b);
    ``missing`` says in the help what happens when neither is given (``required=False``)."""
    group = parser.add_mutually_exclusive_group(required=required)
    group.add_argument("--split", type=positive_int, metavar="A", help=f"weight layers in f_a{missing}")
    group.add_argument("--fb-layers", type=positive_int, metavar="N",
                       help="weight layers in f_b (paper's convention)")


def add_threat_options(parser: argparse.ArgumentParser, *, from_checkpoint: bool) -> None:
    """``--eps`` and ``--norm``, resolved after parsing by :func:`threat_model`: with a
    checkpoint both default to its training threat model, without one to
    :data:`DEFAULT_EPS` and linf (``from_checkpoint`` only changes the help)."""
    if from_checkpoint:
        eps_help = f"threat radius >= 0 (default: the checkpoint's training eps, else 8/255 = {DEFAULT_EPS:.4g})"
        norm_help = f"threat norm (default: the checkpoint's training norm, else {DEFAULT_NORM})"
    else:
        eps_help = f"threat radius >= 0 (default: 8/255 = {DEFAULT_EPS:.4g})"
        norm_help = f"threat norm (default: {DEFAULT_NORM})"
    parser.add_argument("--eps", type=non_negative_float, default=None, help=eps_help)
    parser.add_argument("--norm", choices=NORM_CHOICES, default=None, help=norm_help)


def add_attack_options(parser: argparse.ArgumentParser, *, attack: str | None = None,
                       attack_names: Sequence[str] = (), steps: int | None, restarts: int | None = None,
                       steps_help: str = "attack iterations") -> None:
    """``--attack`` (offered when ``attack_names`` is given; ``attack`` its default, None:
    required), ``--steps`` (default ``steps``; None: the attack's own) and ``--restarts``
    (offered when ``restarts`` is given)."""
    if attack_names:
        parser.add_argument("--attack", type=one_of(attack_names), default=attack, required=attack is None,
                            help=f"attack ({', '.join(attack_names)})"
                                 + ("" if attack is None else f" (default: {attack})"))
    default = "the attack's own" if steps is None else str(steps)
    parser.add_argument("--steps", type=positive_int, default=steps, help=f"{steps_help} (default: {default})")
    if restarts is not None:
        parser.add_argument("--restarts", type=positive_int, default=restarts,
                            help=f"random restarts (default: {restarts})")


def add_samples_option(parser: argparse.ArgumentParser, *, default: int | None, allow_zero: bool = False,
                       help: str = "use the first N test inputs") -> None:
    """``--samples N`` (also spelled ``--limit N``): the first N test inputs; ``default``
    None means all of them."""
    shown = "all" if default is None else str(default)
    parser.add_argument("--samples", "--limit", dest="samples", metavar="N", default=default,
                        type=non_negative_int if allow_zero else positive_int,
                        help=f"{help} (default: {shown})")


def add_data_root_option(parser: argparse.ArgumentParser) -> None:
    """``--data-root``: the folder of an on-disk dataset (CIFAR, TinyImageNet)."""
    parser.add_argument("--data-root", default=None, help="folder of an on-disk dataset")


def add_checkpoint_options(parser: argparse.ArgumentParser, *, help: str = "checkpoint directory") -> None:
    """``--checkpoint``, or a user's model ``--model [--model-kwargs] --weights --dataset``,
    and ``--data-root``: what
    :func:`~semirobust.empirical.cli.checkpoint_input.open_checkpoint_and_data` opens (which
    checks that ``--weights`` and ``--dataset`` come with ``--model`` and only with it)."""
    from semirobust.empirical.data import dataset_names

    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--checkpoint", help=f"{help} (config.json + weights)")
    source.add_argument(
        "--model", metavar="MODULE:CALLABLE",
        help="your own model instead of a checkpoint: the class or function that builds it, as "
             "package.module:callable, imported from the current directory first, then PYTHONPATH "
             "(as python -m finds modules); it takes inputs in [0,1] and normalises them itself. "
             "Importing it runs its code. Needs --weights and --dataset",
    )
    parser.add_argument("--model-kwargs", metavar="JSON", default=None,
                        help='keyword arguments of --model as a JSON object, e.g. \'{"width": 8}\' (default: none)')
    parser.add_argument("--weights", metavar="FILE", default=None,
                        help="weights of --model: a .safetensors file, or a state dict saved with "
                             "torch.save(model.state_dict(), FILE), loaded with weights_only=True (never runs code)")
    parser.add_argument("--dataset", type=one_of(dataset_names()), default=None,
                        help=f"dataset to check --model on ({', '.join(dataset_names())}); "
                             "a checkpoint names its own")
    add_data_root_option(parser)


def add_json_output(parser: argparse.ArgumentParser, *, required: bool = True) -> None:
    """``--json OUT``: the result file, checked writable at parse time."""
    parser.add_argument("--json", type=output_file, required=required, metavar="OUT",
                        help="write the result JSON here")


def add_out_folder(parser: argparse.ArgumentParser, *, help: str, default: str | None = None) -> None:
    """``--out DIR``: the output folder, checked at parse time (never an existing file)."""
    parser.add_argument("--out", type=output_folder, required=default is None, default=default,
                        help=help if default is None else f"{help} (default: {default})")


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
    add_data_root_option(parser)


def add_adversarial_training_options(parser: argparse.ArgumentParser) -> None:
    """``--method pgd|trades`` and ``--trades-beta`` (THEORY.md section 6: both are used)."""
    from semirobust.empirical.studies.training import ADVERSARIAL_LOSSES

    parser.add_argument("--method", choices=sorted(ADVERSARIAL_LOSSES), default="pgd",
                        help="adversarial training: PGD (Madry et al.) or TRADES (default: pgd)")
    parser.add_argument("--trades-beta", type=non_negative_float, default=6.0,
                        help="TRADES' weight of the KL term (default 6)")


# ---- resolution after parsing ---------------------------------------------------------------

def architecture_kwargs(text: str) -> dict[str, Any]:
    """``--arch-kwargs`` parsed (the builders validate the options themselves)."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise BadInput(f"--arch-kwargs is not JSON: {error.msg}") from None


def resolve_threads(args: argparse.Namespace) -> int:
    """The thread count: ``--threads``, else ``$SEMIROBUST_THREADS``, else
    :data:`DEFAULT_THREADS`; stored back in ``args.threads`` (so the JSON outputs, which
    record the arguments, record it) with ``args.threads_source``."""
    if getattr(args, "threads", None) is not None:
        args.threads_source = "--threads"
        return args.threads
    text = os.environ.get(THREADS_VARIABLE)
    if text is None or text == "":
        args.threads, args.threads_source = DEFAULT_THREADS, "default"
        return args.threads
    try:
        args.threads = positive_int(text.strip())
    except argparse.ArgumentTypeError as error:
        raise BadInput(f"{THREADS_VARIABLE}={text!r}: {error}") from None
    args.threads_source = THREADS_VARIABLE
    return args.threads


def apply_threads(threads: int) -> None:
    """``torch.set_num_threads(threads)`` where the chosen command has loaded torch (every
    command but ``theory``, which never imports it, so there is nothing to set)."""
    torch = sys.modules.get("torch")
    if torch is not None:
        torch.set_num_threads(threads)


def threat_model(args: argparse.Namespace, recipe: dict[str, Any] | None, input_shape: Sequence[int]):
    """The :class:`~semirobust.empirical.attacks.threat.ThreatModel` of ``--eps --norm``.

    A value left out comes from the checkpoint's training ``recipe`` (its ``eps`` and
    ``norm``) where one is given (None: no checkpoint) and records them, else from
    :data:`DEFAULT_EPS` and linf.
    ``args.eps``, ``args.norm`` and ``args.eps_source`` are set to what was used (the JSON
    outputs record the arguments). A radius that covers the whole input box ``[0,1]^d``
    gets a warning on stderr (:func:`covers_input_box`)."""
    from semirobust.empirical.attacks.threat import ThreatModel

    if args.eps is not None:
        args.eps_source = "--eps"
    elif recipe is not None and "eps" in recipe:
        trained = "adversarial training" if recipe.get("adversarial") else "the recipe of a normally trained model"
        args.eps, args.eps_source = float(recipe["eps"]), f"checkpoint ({trained})"
    else:
        unrecorded = "" if recipe is None else " (the checkpoint records no training eps)"
        args.eps, args.eps_source = DEFAULT_EPS, f"default 8/255{unrecorded}"
    if args.norm is None:
        args.norm = str((recipe or {}).get("norm", DEFAULT_NORM))
    threat = ThreatModel(args.norm, args.eps)
    if covers_input_box(threat.norm, threat.eps, input_shape):
        print(f"warning: --eps {threat.eps:g} ({threat.norm}) covers the whole input box [0,1]^d "
              f"(d = {math.prod(input_shape)}): any input can be moved to any other, so robust "
              f"numbers say nothing about the model", file=sys.stderr)
    return threat


def covers_input_box(norm: str, eps: float, input_shape: Sequence[int]) -> bool:
    """True when the ``norm`` ball of radius ``eps`` around any point of ``[0,1]^d`` holds
    the whole box: the box's largest distance between two points is ``||1||_p = d^(1/p)``
    (1 in l-inf, ``sqrt(d)`` in l2), reached between opposite corners."""
    d = math.prod(input_shape)
    diameter = {"linf": 1.0, "l2": math.sqrt(d)}[norm]
    return eps >= diameter
