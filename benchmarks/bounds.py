"""The gamma sandwich, the Lipschitz transfer bound and Lipschitz constants of checkpoints.

Usage: ``OMP_NUM_THREADS=1 python benchmarks/bounds.py CKPT [CKPT ...] [--eps 0.1 0.03]
[--n 256] [--fb-layers 3] [--crown-n 16]``. For each checkpoint and radius (l-inf) on the
first ``--n`` test inputs: clean margin, PGD-margin upper estimate (20 steps, 2 restarts),
certified lower bounds (IBP, CROWN-IBP, Lipschitz margin; full CROWN on the first
``--crown-n``), certified and attacked robust accuracy, the section-5 transfer bound at
the split with ``--fb-layers`` layers in ``f_b``, and seconds per method. Prints Markdown.

``--methods-only`` prints instead, per checkpoint and radius, one row per bound method
(IBP, CROWN-IBP, CROWN, alpha-CROWN) on the first ``--crown-n`` inputs: certified
accuracy (bound > 0), mean certified margin against the attacked one (per-target margin
PGD), PGD-50 accuracy (cross-entropy, step eps/4) on the same inputs, and seconds per
input; and alpha-CROWN's gain over CROWN (mean, and minimum over inputs, which must be
>= 0). ``--methods ibp crown-ibp`` keeps only those methods (the cheap ones, for every
test input: ``--crown-n 899`` on digits).
"""

from __future__ import annotations

import argparse
import time

from semirobust.empirical.attacks.base import margins_of
from semirobust.empirical.attacks.gradient import PGD
from semirobust.empirical.attacks.threat import ThreatModel
from semirobust.empirical.bounds.lipschitz import lipschitz_upper, split_lipschitz
from semirobust.empirical.data import load_dataset
from semirobust.empirical.measure.local_lipschitz import local_lipschitz_lower
from semirobust.empirical.measure.sandwich import gamma_sandwich
from semirobust.empirical.measure.transfer import lipschitz_transfer_bound
from semirobust.empirical.model.checkpoint import load_checkpoint
from semirobust.empirical.model.stages import fa_layers_from, split_network


def timed(fn, *args, **kwargs):
    """``(fn(*args, **kwargs), seconds)``."""
    start = time.perf_counter()
    value = fn(*args, **kwargs)
    return value, time.perf_counter() - start


BOUND_METHODS = ("ibp", "crown-ibp", "crown", "alpha-crown")


def method_rows(path, model, x, y, eps: float, methods=BOUND_METHODS) -> None:
    """One Markdown row per bound method of ``methods`` on ``(x, y)`` at l-inf ``eps``."""
    threat = ThreatModel("linf", eps)
    sandwich = gamma_sandwich(model, x, y, threat, methods=tuple(methods))
    pgd = PGD(threat, steps=50, step_size=eps / 4, seed=0)
    pgd_accuracy = float((margins_of(model, pgd(model, x, y), y) > 0).double().mean())
    clean_ok = sandwich.clean > 0
    for method in methods:
        values = sandwich.certified[method]
        seconds = sandwich.settings["bounds"][method]["seconds"] / x.shape[0]
        row = [
            path,
            f"{eps:g}",
            method,
            str(x.shape[0]),
            f"{float(((values > 0) & clean_ok).double().mean()):.3f}",
            f"{values.mean():.3f}",
            f"{sandwich.attacked.mean():.3f}",
            f"{float(((sandwich.attacked > 0) & clean_ok).double().mean()):.3f}",
            f"{pgd_accuracy:.3f}",
            f"{seconds:.3f}",
        ]
        print("| " + " | ".join(row) + " |")
    assert not sandwich.violations().any()
    if not {"crown", "alpha-crown"} <= set(methods):
        return
    gain = sandwich.certified["alpha-crown"] - sandwich.certified["crown"]
    assert (gain >= 0).all()
    print(
        f"\n{path} eps {eps:g}: alpha-CROWN - CROWN per input: mean {gain.mean():.4g}, "
        f"min {gain.min():.4g}, max {gain.max():.4g} logits "
        f"(alpha: {sandwich.settings['bounds']['alpha-crown']['alpha']})\n"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("checkpoints", nargs="+")
    parser.add_argument("--eps", type=float, nargs="+", default=[0.1, 0.03])
    parser.add_argument("--n", type=int, default=256)
    parser.add_argument("--crown-n", type=int, default=16)
    parser.add_argument("--fb-layers", type=int, default=3)
    parser.add_argument("--methods-only", action="store_true")
    parser.add_argument("--methods", nargs="+", choices=BOUND_METHODS, default=list(BOUND_METHODS))
    args = parser.parse_args()
    if args.methods_only:
        print(
            "| checkpoint | eps | method | n | cert. acc | cert. m | attacked m "
            "| attacked acc (margin) | PGD-50 acc | s / input |"
        )
        print("|---|---|---|---|---|---|---|---|---|---|")
        for path in args.checkpoints:
            model, config = load_checkpoint(path)
            data = load_dataset(config.dataset, seed=config.seed)
            x, y = data.x_test[: args.crown_n], data.y_test[: args.crown_n]
            for eps in args.eps:
                method_rows(path, model, x, y, eps, args.methods)
        return
    print(
        "| checkpoint | eps | clean m | attacked m | IBP | CROWN-IBP | Lipschitz "
        "| CROWN (first n) | cert. rob. acc | PGD rob. acc | transfer cert. | transfer est. "
        "| Delta_a cert / att | seconds |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for path in args.checkpoints:
        model, config = load_checkpoint(path)
        data = load_dataset(config.dataset, seed=config.seed)
        x, y = data.x_test[: args.n], data.y_test[: args.n]
        shape = config.architecture.input_shape
        whole, t_lip = timed(lipschitz_upper, model, shape)
        local = local_lipschitz_lower(model, x[:64])
        a = fa_layers_from(model, split=None, fb_layers=args.fb_layers)
        _, part_b = split_lipschitz(model, whole, a)
        print(
            f"\n{path}: L(F) <= {whole.product:.4g} (certified: {whole.certified}, {t_lip:.1f} s), "
            f"local lower {local.value:.4g}; split a={a}: L(f_b) <= {part_b.product:.4g}\n"
        )
        for eps in args.eps:
            threat = ThreatModel("linf", eps)
            sandwich, t_sandwich = timed(
                gamma_sandwich, model, x, y, threat, methods=("ibp", "crown-ibp"), lipschitz=whole
            )
            first_x, first_y = x[: args.crown_n], y[: args.crown_n]
            crown, t_crown = timed(
                gamma_sandwich, model, first_x, first_y, threat, methods=("crown",)
            )
            transfer, t_transfer = timed(
                lipschitz_transfer_bound, split_network(model, a), x, y, threat, lipschitz_b=part_b
            )
            sensitivity = transfer.sensitivity
            best = sandwich.best_certified
            clean_ok = sandwich.clean > 0
            row = [
                path,
                f"{eps:g}",
                f"{sandwich.clean.mean():.3f}",
                f"{sandwich.attacked.mean():.3f}",
                f"{sandwich.certified['ibp'].mean():.3f}",
                f"{sandwich.certified['crown-ibp'].mean():.3f}",
                f"{sandwich.certified['lipschitz'].mean():.3f}",
                f"{crown.certified['crown'].mean():.3f} (attacked {crown.attacked.mean():.3f})",
                f"{float(((best > 0) & clean_ok).double().mean()):.3f}",
                f"{float(((sandwich.attacked > 0) & clean_ok).double().mean()):.3f}",
                f"{transfer.certified.mean():.3f}",
                f"{transfer.estimate.mean():.3f}",
                f"{sensitivity.certified.mean():.3g} / {sensitivity.attacked.mean():.3g}",
                f"sandwich {t_sandwich:.1f}, crown {t_crown:.1f}, transfer {t_transfer:.1f}",
            ]
            assert not sandwich.violations().any() and not crown.violations().any()
            assert (transfer.certified <= sandwich.attacked + 1e-9).all()
            print("| " + " | ".join(row) + " |")


if __name__ == "__main__":
    main()
