"""Operator norms ``||A||_2`` of the linear maps inside a network (THEORY.md section 5).

* :func:`unrolled_operator_norm`: exact, from the unrolled matrix of the map on its actual
  input shape (``sqrt(lambda_max(A A^T))``, float64);
* :func:`circular_conv_bound`: a certified upper bound of a zero-padded conv's norm from the
  FFT of its kernel on a circular grid;
* :func:`power_iteration_norm`: power iteration on ``J^T J``, converging from below (an
  estimate, never a certificate);
* :func:`conv_operator_norm`, :func:`linear_map_norm`: the choice between them, by input size.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import nn

from semirobust.errors import BadInput


@dataclass(frozen=True)
class OperatorNormSettings:
    """How operator norms of linear maps other than ``nn.Linear`` are computed."""

    exact_input_limit: int = 1024
    power_iterations: int = 1000
    tolerance: float = 1e-8
    seed: int = 0

    def __post_init__(self) -> None:
        if self.exact_input_limit < 0 or self.power_iterations < 1 or not self.tolerance > 0:
            raise BadInput(
                f"operator norm settings {self}: need exact_input_limit >= 0, "
                "power_iterations >= 1 and tolerance > 0"
            )



# ---- operator norms of linear maps -------------------------------------------------------

LinearMap = Callable[[torch.Tensor], torch.Tensor]


def unrolled_operator_norm(
    linear_map: LinearMap, input_shape: Sequence[int], *, device: torch.device | str = "cpu"
) -> float:
    """Exact ``||J||_2`` of a linear map on ``d`` inputs: with ``A = J^T`` (row ``i`` the image
    of basis vector ``e_i``), ``||J||_2 = sqrt(lambda_max(A A^T))``, a ``d x d`` symmetric
    eigenvalue problem (cheaper than an SVD of ``A``)."""
    d = math.prod(input_shape)
    basis = torch.eye(d, dtype=torch.float64, device=device).view(d, *input_shape)
    images = linear_map(basis).reshape(d, -1).detach()
    gram = images @ images.T
    return math.sqrt(max(float(torch.linalg.eigvalsh(gram)[-1]), 0.0))


def power_iteration_norm(
    linear_map: LinearMap,
    input_shape: Sequence[int],
    settings: OperatorNormSettings = OperatorNormSettings(),
    *,
    device: torch.device | str = "cpu",
) -> float:
    """``||J||_2`` by power iteration on ``J^T J`` (``J^T`` by a vector-Jacobian product):
    ``v <- J^T J v / ||J^T J v||``, ``sigma = ||J v||``, until the relative change is below
    ``settings.tolerance``. Approaches the largest singular value from below."""
    generator = torch.Generator().manual_seed(settings.seed)
    v = torch.randn((1, *input_shape), generator=generator, dtype=torch.float64).to(device)
    v = v / v.norm()
    _, transpose = torch.func.vjp(linear_map, torch.zeros_like(v))
    sigma = 0.0
    for _ in range(settings.power_iterations):
        image = linear_map(v)
        previous, sigma = sigma, float(image.norm())
        (back,) = transpose(image)
        size = back.norm()
        if size == 0:
            return 0.0
        v = back / size
        if abs(sigma - previous) <= settings.tolerance * sigma:
            break
    return sigma


def linear_map_norm(
    linear_map: LinearMap,
    input_shape: Sequence[int],
    settings: OperatorNormSettings,
    device: torch.device,
) -> tuple[float, str, bool]:
    """``(norm, method, exact)``: unrolled SVD for small inputs, else power iteration."""
    if math.prod(input_shape) <= settings.exact_input_limit:
        return (
            unrolled_operator_norm(linear_map, input_shape, device=device),
            "exact: largest eigenvalue of the unrolled operator's Gram matrix",
            True,
        )
    return (
        power_iteration_norm(linear_map, input_shape, settings, device=device),
        f"power iteration (<= {settings.power_iterations} steps, tol {settings.tolerance:g})",
        False,
    )


CIRCULAR_METHOD = (
    "bound: largest singular value of the circular conv on the zero-padded input (FFT)"
)


def circular_conv_bound(conv: nn.Conv2d, weight: torch.Tensor, input_shape: Sequence[int]) -> float:
    """A certified upper bound of ``||conv||_2`` (zero padding, bias excluded).

    The zero-padded convolution's outputs are a subset of those of the *circular*
    convolution on the padded ``N x N`` input (no window wraps around), and striding only
    drops outputs, so ``||conv|| <= ||circular conv||``. The circular convolution is
    block-diagonalised by the 2-D DFT (Sedghi, Gupta & Long 2019): its singular values are
    those of the ``c_out x c_in`` matrices ``sum_{a,b} K[:, :, a, b] w^(a u + b v)`` over
    frequencies ``(u, v)``. Groups are block-diagonal: the max over groups.
    """
    _, height, width = input_shape
    pad_h, pad_w = nn.modules.utils._pair(conv.padding)
    size = (height + 2 * pad_h, width + 2 * pad_w)
    dil_h, dil_w = nn.modules.utils._pair(conv.dilation)
    c_out, c_in_group, k_h, k_w = weight.shape
    spread = torch.zeros(
        (c_out, c_in_group, (k_h - 1) * dil_h + 1, (k_w - 1) * dil_w + 1), dtype=weight.dtype
    )
    spread[:, :, ::dil_h, ::dil_w] = weight.detach().cpu()
    spectrum = torch.fft.fft2(spread, s=size)  # (c_out, c_in_group, N_h, N_w)
    norms = [
        torch.linalg.matrix_norm(block.permute(2, 3, 0, 1), ord=2).max()
        for block in spectrum.chunk(conv.groups, dim=0)
    ]
    return float(torch.stack(norms).max())


def conv_operator_norm(
    conv: nn.Conv2d,
    input_shape: Sequence[int],
    settings: OperatorNormSettings = OperatorNormSettings(),
) -> float:
    """``||conv||_2`` (bias excluded) on inputs of ``input_shape`` by power iteration,
    honouring stride, padding (and padding mode), dilation and groups."""
    weight = conv.weight.detach()
    return power_iteration_norm(
        lambda v: conv._conv_forward(v.to(weight.dtype), weight, None),
        input_shape,
        settings,
        device=weight.device,
    )
