"""Algorithm S1: a linear readout of the robust first part's layers (THEORY.md 6, and L2 of 3).

On the frozen robust ``f*_a`` the readout of layers ``I`` (a subset of ``1..a``) is

    G(x) = [h_i(x) for i in I, 1] Lambda,       Lambda in R^{(sum_i d_i + 1) x K},

with ``h_i`` the flattened activations of weight layer ``i`` (``network.layer_activations``).
``Lambda`` solves, per batch ``B`` of fit inputs, the least-squares problem

    min_Lambda ||H_B Lambda - F*(x_B)||_F^2 + ridge * ||W||_F^2    (W: Lambda less its bias row)

against the robust network's logits ``F*(x_B)``; the per-batch solutions are averaged with
equal weights, as the paper does. The bias is never penalised, so it is
``b = mean(F*) - mean(H) W`` and ``W`` solves the problem on the batch-centred ``Hc``, ``Yc``.
Each batch is solved in float64 on the CPU through the thin SVD ``Hc = U S V^T``:

    W = V diag(s / (s^2 + ridge)) U^T Yc,   singular values s <= rcond * s_max dropped,

which is the pseudo-inverse solution (the minimum-norm ``W`` among all minimisers) when
``ridge = 0``, also for a batch with fewer inputs than features, and costs one SVD of an
``inputs x features`` matrix whatever the ridge.

``G`` is an ``nn.Module`` over the input ``x``: the whole map ``x -> f*_a -> G`` is
differentiable, so the attack suite attacks it end to end. Its expected worst-case margin
is a gamma of ``f_a`` with a *named, fixed* readout (caveat C1): the fit to ``F*``'s logits
fixes its scale, and the readout's norms are reported with it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from semirobust.empirical.attacks.evaluation import predict_logits
from semirobust.empirical.measure.statistics import wilson_interval
from semirobust.empirical.model.stages import count_weight_layers, layer_activations
from semirobust.errors import BadInput
from semirobust.theory.measurement import Kind, Measurement


@dataclass(frozen=True)
class LeastSquaresSettings:
    """How ``Lambda`` is solved: batch size, SVD cutoff ``rcond``, ridge penalty on ``W``."""

    batch_size: int = 256
    rcond: float = 1e-6
    ridge: float = 0.0

    def __post_init__(self) -> None:
        if not isinstance(self.batch_size, int) or self.batch_size < 1:
            raise BadInput(f"--fit-batch-size {self.batch_size}: expected an integer >= 1")
        if not math.isfinite(self.rcond) or not 0 <= self.rcond < 1:
            raise BadInput(f"--rcond {self.rcond}: expected a number in [0, 1)")
        if not math.isfinite(self.ridge) or self.ridge < 0:
            raise BadInput(f"--ridge {self.ridge}: expected a finite number >= 0")

    def to_dict(self) -> dict:
        return {
            "fit_batch_size": self.batch_size,
            "rcond": self.rcond,
            "ridge": self.ridge,
            "solver": "SVD of the batch-centred features (float64), bias unpenalised, "
            "per batch, equal-weight average",
        }


class LinearReadout(nn.Module):
    """``G(x) = [h_i(x) for i in layers, 1] Lambda`` on the frozen first part ``f_a``.

    ``weight`` is ``(sum_i d_i, K)`` with ``feature_sizes = (d_i for i in layers)`` and
    ``bias`` is ``(K,)``; both are buffers (the readout is fixed, never trained). ``f_a``
    is shared with the network, not copied.
    """

    def __init__(
        self,
        f_a: nn.Sequential,
        layers: Sequence[int],
        feature_sizes: Sequence[int],
        weight: torch.Tensor,
        bias: torch.Tensor,
        name: str,
    ) -> None:
        super().__init__()
        if len(layers) != len(feature_sizes) or sum(feature_sizes) != weight.shape[0]:
            raise BadInput(
                f"readout {name!r}: feature sizes {list(feature_sizes)} of layers "
                f"{list(layers)} do not match the weight's {weight.shape[0]} rows"
            )
        self.f_a = f_a
        self.layers = tuple(layers)
        self.feature_sizes = tuple(int(d) for d in feature_sizes)
        self.name = name
        self.register_buffer("weight", weight.detach().float())
        self.register_buffer("bias", bias.detach().float())

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """``[h_i(x) for i in layers]``, concatenated per sample: ``(batch, sum_i d_i)``."""
        return readout_features(self.f_a, x, self.layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x) @ self.weight + self.bias

    def frobenius_norm(self) -> float:
        """``||W||_F`` (the bias row excluded: it does not change with the input)."""
        return float(torch.linalg.matrix_norm(self.weight.double(), "fro"))

    def operator_norm(self) -> float:
        """``||W||_2``, the largest singular value: the readout's l2 Lipschitz constant."""
        return float(torch.linalg.matrix_norm(self.weight.double(), 2))

    def description(self) -> dict:
        """The readout's name, layers and norms, for ``settings['readout']`` of its gammas (C1)."""
        return {
            "readout": self.name,
            "readout_layers": list(self.layers),
            "readout_frobenius_norm": self.frobenius_norm(),
            "readout_operator_norm": self.operator_norm(),
        }


def readout_features(f_a: nn.Sequential, x: torch.Tensor, layers: Sequence[int]) -> torch.Tensor:
    """``[h_i(x) for i in layers]`` of ``f_a``'s weight layers (1-based), concatenated."""
    return torch.cat(layer_features(f_a, x, layers), dim=1)


def layer_features(
    f_a: nn.Sequential, x: torch.Tensor, layers: Sequence[int]
) -> list[torch.Tensor]:
    """``[h_i(x) for i in layers]``, each flattened per sample (``network.layer_activations``)."""
    activations, _ = layer_activations(f_a, x)
    return [activations[i - 1] for i in layers]


def validate_layers(f_a: nn.Sequential, layers: Sequence[int]) -> tuple[int, ...]:
    """``layers`` as a tuple if each lies in ``1..a`` (the weight layers of ``f_a``);
    else :class:`BadInput`."""
    a = count_weight_layers(f_a)
    layers = tuple(layers)
    if not layers or any(not isinstance(i, int) or not 1 <= i <= a for i in layers):
        raise BadInput(
            f"readout layers {list(layers)}: expected a non-empty list of layers in 1..{a}"
        )
    return layers


def solve_least_squares(
    h: torch.Tensor, target: torch.Tensor, settings: LeastSquaresSettings
) -> torch.Tensor:
    """``Lambda = [W; b]`` minimising ``||[h, 1] Lambda - target||_F^2 + ridge ||W||_F^2``
    (the minimum-norm ``W`` among minimisers), shape ``(d + 1, K)``.

    ``b = mean(target) - mean(h) W``; ``W = V diag(s / (s^2 + ridge)) U^T Yc`` from the thin
    SVD of the centred ``h``, singular values ``s <= rcond * s_max`` dropped. Float64, CPU.
    """
    h = h.detach().double().cpu()
    target = target.detach().double().cpu()
    h_mean, target_mean = h.mean(dim=0), target.mean(dim=0)
    u, singular, vh = torch.linalg.svd(h - h_mean, full_matrices=False)
    kept = singular > settings.rcond * singular.max()
    gain = torch.where(kept, singular / (singular**2 + settings.ridge), torch.zeros_like(singular))
    weight = vh.T @ (gain[:, None] * (u.T @ (target - target_mean)))
    return torch.cat([weight, (target_mean - h_mean @ weight)[None]])


def fit_linear_readout(
    f_a: nn.Sequential,
    target: nn.Module,
    x: torch.Tensor,
    layers: Sequence[int],
    settings: LeastSquaresSettings = LeastSquaresSettings(),
    *,
    name: str,
    device: torch.device | str = "cpu",
) -> LinearReadout:
    """Algorithm S1's fit: per batch ``B`` of ``x``, ``Lambda_B`` solves
    ``[h_i, 1] Lambda = target(x_B)`` (least squares); ``Lambda`` is their equal-weight mean. Batches are ``ceil(N / batch_size)`` near-equal parts
    of ``x`` (no small remainder batch). Both modules are evaluated in eval mode, without grad."""
    layers = validate_layers(f_a, layers)
    if x.shape[0] < 1:
        raise BadInput("the linear readout needs at least one fit input")
    device = torch.device(device)
    parts = math.ceil(x.shape[0] / settings.batch_size)
    solutions, sizes = [], ()
    modes = (f_a.training, target.training)
    f_a.eval()
    target.eval()
    try:
        with torch.no_grad():
            for xb in torch.tensor_split(x, parts):
                xb = xb.to(device)
                features = layer_features(f_a, xb, layers)
                sizes = tuple(h.shape[1] for h in features)
                solutions.append(
                    solve_least_squares(
                        torch.cat(features, dim=1).float(), target(xb).float(), settings
                    )
                )
    finally:
        f_a.train(modes[0])
        target.train(modes[1])
    lam = torch.stack(solutions).mean(dim=0)
    return LinearReadout(f_a, layers, sizes, lam[:-1].to(device), lam[-1].to(device), name).to(
        device
    )


def block_readouts(readout: LinearReadout) -> list[LinearReadout]:
    """The combined readout cut into one readout per layer: ``G = sum_i G_i`` exactly.

    ``G_i(x) = h_i(x) W_i + b / |layers|`` with ``W_i`` the rows of ``W`` that read ``h_i``
    and the bias shared equally; these are L2's ``lambda_i^T`` for ``f^(n) = G``.
    """
    blocks = torch.split(readout.weight, list(readout.feature_sizes), dim=0)
    share = readout.bias / len(readout.layers)
    return [
        LinearReadout(
            readout.f_a, (layer,), (size,), block, share, f"block h_{layer} of {readout.name}"
        )
        for layer, size, block in zip(readout.layers, readout.feature_sizes, blocks)
    ]


@dataclass(frozen=True)
class FitQuality:
    """How well the readout reproduces ``F*`` on held-out inputs."""

    r2: Measurement
    agreement: Measurement

    def to_dict(self) -> dict:
        return {"r2": self.r2.to_dict(), "agreement": self.agreement.to_dict()}


def fit_quality(
    readout: nn.Module,
    target: nn.Module,
    x: torch.Tensor,
    *,
    name: str,
    seed: int = 0,
    resamples: int = 200,
    device: torch.device | str = "cpu",
) -> FitQuality:
    """``R^2 = 1 - sum ||F*(x) - G(x)||^2 / sum ||F*(x) - mean F*||^2`` over held-out ``x``
    (bootstrap 95% percentile interval over inputs, seeded), and the argmax agreement
    ``P(argmax G = argmax F*)`` (Wilson 95%). Both are statistical estimates."""
    predicted = predict_logits(readout, x, device=device).double()
    reference = predict_logits(target, x, device=device).double()
    residual = ((reference - predicted) ** 2).sum(dim=1).numpy()
    spread = ((reference - reference.mean(dim=0)) ** 2).sum(dim=1).numpy()
    r2 = _r2(residual, spread)
    generator = np.random.default_rng(seed)
    draws = [
        _r2(residual[i], spread[i])
        for i in (generator.integers(0, residual.size, residual.size) for _ in range(resamples))
    ]
    low, high = np.percentile(draws, [2.5, 97.5]) if residual.size > 1 else (r2, r2)
    agree = int((predicted.argmax(dim=1) == reference.argmax(dim=1)).sum())
    n = int(residual.size)
    wilson_low, wilson_high = wilson_interval(agree, n)
    return FitQuality(
        r2=Measurement(
            name=f"r2_{name}",
            value=r2,
            interval=(min(low, r2), max(high, r2)),
            kind=Kind.ESTIMATE,
            estimator="coefficient of determination against F* logits",
            unit="dimensionless",
            settings={
                "n": n,
                "interval": f"bootstrap 95% percentile, {resamples} resamples",
                "seed": seed,
            },
        ),
        agreement=Measurement(
            name=f"agreement_{name}",
            value=agree / n,
            # Wilson's ends can round past the proportion at 0 and 1 (0.9999999999999998 at 60/60).
            interval=(min(wilson_low, agree / n), max(wilson_high, agree / n)),
            kind=Kind.ESTIMATE,
            estimator="argmax agreement with F*",
            unit="fraction",
            settings={"n": n, "interval": "Wilson 95%"},
        ),
    )


def _r2(residual: np.ndarray, spread: np.ndarray) -> float:
    total = float(spread.sum())
    if total <= 0:
        raise BadInput("R^2 is undefined: F*'s logits are constant on the held-out inputs")
    return 1.0 - float(residual.sum()) / total
