"""Input checks and per-class preprocessing shared by every estimator.

* :func:`validate_activations`: finite 2-D tensors with one row per label, int labels.
* :func:`standardise`: per feature, ``(x - mean) / std`` within the class (MI is
  invariant to per-feature affine maps, and kNN/hashing estimators need comparable
  scales); features constant within the class are removed: a constant carries no
  information, so a variable with no non-constant feature has MI 0 with anything.
"""

from __future__ import annotations

import torch

from semirobust.errors import BadInput

#: a feature whose standard deviation is below this times ``1 + |mean|`` is constant.
CONSTANT_TOLERANCE = 1e-9


def validate_activations(tensors: list[torch.Tensor], labels: torch.Tensor, names: list[str]) -> None:
    """Raise :class:`BadInput` unless every tensor is (n, d>=1), finite, and ``labels`` is (n,) int."""
    if not isinstance(labels, torch.Tensor) or labels.dim() != 1:
        raise BadInput(f"labels: expected a 1-D integer tensor, got {_describe(labels)}")
    if labels.dtype.is_floating_point or labels.dtype == torch.bool or labels.dtype.is_complex:
        raise BadInput(f"labels: expected an integer tensor, got dtype {labels.dtype}")
    n = labels.shape[0]
    if n == 0:
        raise BadInput("labels: no samples")
    for tensor, name in zip(tensors, names):
        if not isinstance(tensor, torch.Tensor) or tensor.dim() != 2 or tensor.shape[1] < 1:
            raise BadInput(f"{name}: expected a 2-D tensor (n, features), got {_describe(tensor)}")
        if tensor.shape[0] != n:
            raise BadInput(f"{name}: {tensor.shape[0]} rows but {n} labels; rows must pair with labels")
        if not tensor.dtype.is_floating_point:
            raise BadInput(f"{name}: expected floating-point activations, got dtype {tensor.dtype}")
        bad = (~torch.isfinite(tensor)).any(dim=1)
        if bad.any():
            raise BadInput(
                f"{name}: {int(bad.sum())} of {n} samples hold NaN or infinite activations "
                f"(first at row {int(bad.nonzero()[0])})"
            )


def standardise(x: torch.Tensor) -> torch.Tensor:
    """Float64 ``(x - mean) / std`` per feature, constant features dropped (may leave 0 columns).

    ``std = sqrt(mean((x - mean)^2))`` in two passes (the population standard deviation);
    the kept columns are gathered, which is several times faster than boolean indexing.
    """
    x = x.to(torch.float64)
    mean = x.mean(dim=0)
    centred = x - mean
    std = centred.square().mean(dim=0).sqrt()
    keep = std > CONSTANT_TOLERANCE * (1.0 + mean.abs())
    z = centred / torch.where(keep, std, 1.0)
    if bool(keep.all()):
        return z
    columns = keep.nonzero().squeeze(1)
    return z.gather(1, columns.unsqueeze(0).expand(z.shape[0], -1))


def _describe(value: object) -> str:
    if isinstance(value, torch.Tensor):
        return f"tensor of shape {tuple(value.shape)}"
    return type(value).__name__
