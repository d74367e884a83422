"""Small models and data for the attack tests: random networks, affine binary models with
a closed-form infimum (THEORY.md section 2), and a few-second trained digits model."""

from __future__ import annotations

import torch
from torch import nn

from semirobust.empirical.data import load_dataset
from semirobust.empirical.model import ArchitectureSpec, build_model
from semirobust.empirical.studies.training import TrainRecipe, train


def random_network(
    input_shape: tuple[int, ...], classes: int, seed: int, *, conv: bool
) -> nn.Sequential:
    """A randomly initialised ReLU network (conv + linear for images, MLP otherwise)."""
    torch.manual_seed(seed)
    d = 1
    for size in input_shape:
        d *= size
    if conv and len(input_shape) == 3:
        c, h, w = input_shape
        return nn.Sequential(
            nn.Conv2d(c, 3, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(3 * h * w, classes)
        ).eval()
    return nn.Sequential(nn.Flatten(), nn.Linear(d, 8), nn.ReLU(), nn.Linear(8, classes)).eval()


class BinaryAffine(nn.Module):
    """Logits ``(-s/2, s/2)`` with ``s = w.x + b``: the margin of label 1 is ``s``, of label 0 ``-s``."""

    def __init__(self, w: torch.Tensor, b: float) -> None:
        super().__init__()
        self.w = nn.Parameter(w.clone())
        self.b = nn.Parameter(torch.tensor(float(b), dtype=w.dtype))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = x.flatten(start_dim=1) @ self.w + self.b
        return torch.stack([-s / 2, s / 2], dim=1)


def signed(y: torch.Tensor) -> torch.Tensor:
    """Label 1 -> +1, label 0 -> -1."""
    return (2 * y - 1).to(torch.float64)


def exact_linf_infimum(
    model: BinaryAffine, x: torch.Tensor, y: torch.Tensor, eps: float
) -> torch.Tensor:
    """``inf y*(w.(x+delta) + b)`` over ``||delta||_inf <= eps``, ``x + delta`` in ``[0,1]``:
    coordinate-wise, each ``delta_i`` goes to the end of ``[max(-eps, -x_i), min(eps, 1 - x_i)]``
    that lowers ``y w_i delta_i``."""
    with torch.no_grad():
        coefficient = signed(y)[:, None] * model.w[None, :]
        low, high = (-x).clamp(min=-eps), (1 - x).clamp(max=eps)
        delta = torch.where(coefficient > 0, low, high)
        return signed(y) * (x @ model.w + model.b) + (coefficient * delta).sum(dim=1)


def exact_l2_infimum_interior(
    model: BinaryAffine, x: torch.Tensor, y: torch.Tensor, eps: float
) -> torch.Tensor:
    """``y*(w.x + b) - eps*||w||_2`` (valid when the minimiser stays inside ``[0,1]^d``)."""
    with torch.no_grad():
        return signed(y) * (x @ model.w + model.b) - eps * model.w.norm()


def trained_digits_model(arch: str = "digits-cnn", epochs: int = 2, seed: int = 0, **kwargs):
    """A digits model trained for a couple of epochs (a few seconds on 2 cores)."""
    data = load_dataset("digits")
    spec = ArchitectureSpec(arch, data.input_shape, 10, data.mean, data.std, kwargs or {"width": 4})
    torch.manual_seed(seed)
    model = build_model(spec)
    train(
        model, data, TrainRecipe(epochs=epochs, lr=0.05, batch_size=32), seed=seed, progress=False
    )
    return model.eval(), spec, data
