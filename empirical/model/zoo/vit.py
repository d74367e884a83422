"""A Vision Transformer (Dosovitskiy et al. 2021) for small images, as ordered stages.

Stages: Normalize; a patch embedding (a ``patch x patch`` conv with stride ``patch``, a
learned class token and learned position embeddings); ``depth`` pre-norm transformer
blocks (multi-head self-attention, then a GELU MLP, each with a residual connection);
a head (LayerNorm, the class token, one linear layer). The default is small enough to
train on a CPU (patch 4, depth 6, width 128, 4 heads, MLP 256); the paper's ViT-B/4 is
``patch=4, depth=12, width=768, heads=12, mlp_width=3072``.

Counting rule: a transformer block is one layer ``f^(j)`` of THEORY.md, so it holds one
counted weight layer, its MLP's output projection (the linear layer that writes the
block's result into the residual stream); the attention's qkv and output projections
and the MLP's first layer are marked not counted. With the patch embedding and the head,
the network has ``depth + 2`` weight layers, every stage boundary is a valid split, and
:func:`~semirobust.empirical.model.stages.layer_activations` records each block's output
tokens. The uncounted linears are still weights: anything that needs every weight
(Lipschitz bounds, say) must walk ``module.modules()``, not the counted layers.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional

from semirobust.empirical.model.normalize import Normalize
from semirobust.empirical.model.registry import ArchitectureSpec
from semirobust.empirical.model.stages import mark_not_counted
from semirobust.empirical.model.zoo.config import config_from_spec, image_shape
from semirobust.errors import BadInput


@dataclass(frozen=True)
class ViTConfig:
    patch: int = 4  # side of a square patch, in pixels
    depth: int = 6  # transformer blocks
    width: int = 128  # token dimension
    heads: int = 4  # attention heads; must divide width
    mlp_width: int = 256  # hidden units of each block's MLP


class PatchEmbedding(nn.Module):
    """Image ``(N, C, H, W)`` -> tokens ``(N, 1 + HW/p^2, width)``: class token first."""

    def __init__(self, channels: int, patches: int, config: ViTConfig) -> None:
        super().__init__()
        self.project = nn.Conv2d(channels, config.width, config.patch, stride=config.patch)
        self.class_token = nn.Parameter(torch.zeros(1, 1, config.width))
        self.position = nn.Parameter(torch.randn(1, 1 + patches, config.width) * 0.02)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        tokens = self.project(x).flatten(start_dim=2).transpose(1, 2)
        class_token = self.class_token.expand(tokens.shape[0], -1, -1)
        return torch.cat([class_token, tokens], dim=1) + self.position


class TransformerBlock(nn.Module):
    """``x + attn(ln(x))`` then ``x + mlp(ln(x))``; one counted weight layer (``mlp_out``)."""

    def __init__(self, config: ViTConfig) -> None:
        super().__init__()
        self.heads = config.heads
        self.attention_norm = nn.LayerNorm(config.width)
        self.qkv = mark_not_counted(nn.Linear(config.width, 3 * config.width))
        self.attention_out = mark_not_counted(nn.Linear(config.width, config.width))
        self.mlp_norm = nn.LayerNorm(config.width)
        self.mlp_in = mark_not_counted(nn.Linear(config.width, config.mlp_width))
        self.mlp_out = nn.Linear(config.mlp_width, config.width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, tokens, width = x.shape
        q, k, v = (
            self.qkv(self.attention_norm(x))
            .view(batch, tokens, 3, self.heads, width // self.heads)
            .permute(2, 0, 3, 1, 4)
        )
        attended = functional.scaled_dot_product_attention(q, k, v)
        x = x + self.attention_out(attended.transpose(1, 2).reshape(batch, tokens, width))
        return x + self.mlp_out(functional.gelu(self.mlp_in(self.mlp_norm(x))))


class ClassTokenHead(nn.Module):
    """Logits from the class token: ``linear(ln(x)[:, 0])``."""

    def __init__(self, width: int, num_classes: int) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(width)
        self.linear = nn.Linear(width, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(self.norm(x)[:, 0])


def vit(spec: ArchitectureSpec) -> nn.Sequential:
    """Stages: Normalize, patch embedding, ``depth`` transformer blocks, class-token head."""
    config = config_from_spec(ViTConfig, spec)
    channels, height, width = image_shape(spec, min_side=config.patch)
    if height % config.patch or width % config.patch:
        raise BadInput(
            f"architecture 'vit': option patch={config.patch} must divide the image sides "
            f"{height}x{width}"
        )
    if config.width % config.heads:
        raise BadInput(
            f"architecture 'vit': option heads={config.heads} must divide width={config.width}"
        )
    patches = (height // config.patch) * (width // config.patch)
    return nn.Sequential(
        Normalize(spec.mean, spec.std),
        PatchEmbedding(channels, patches, config),
        *(TransformerBlock(config) for _ in range(config.depth)),
        ClassTokenHead(config.width, spec.num_classes),
    )
