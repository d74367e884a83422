"""Crop-with-padding and flip augmentation: every output is a padded shift, mirrored or not."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from torch.nn import functional

from semirobust.empirical.data.augment import CROP_PADDING, augment
from semirobust.errors import BadInput


def candidates(image: torch.Tensor) -> list[torch.Tensor]:
    """Every crop of the zero-padded image at offsets 0..8, flipped and not."""
    _, height, width = image.shape
    padded = functional.pad(image, (CROP_PADDING,) * 4)
    crops = [
        padded[:, i:i + height, j:j + width]
        for i in range(2 * CROP_PADDING + 1)
        for j in range(2 * CROP_PADDING + 1)
    ]
    return crops + [crop.flip(-1) for crop in crops]


@given(
    batch=st.integers(1, 4),
    channels=st.integers(1, 3),
    height=st.integers(1, 9),
    width=st.integers(1, 9),
    seed=st.integers(0, 2**31 - 1),
)
def test_every_output_is_a_padded_crop_of_its_input_maybe_mirrored(batch, channels, height, width, seed) -> None:
    x = torch.rand(batch, channels, height, width, generator=torch.Generator().manual_seed(seed)) + 0.5
    out = augment(x, torch.Generator().manual_seed(seed + 1))
    assert out.shape == x.shape and out.dtype == x.dtype
    for image, result in zip(x, out):
        assert any(torch.equal(result, candidate) for candidate in candidates(image))


def test_offsets_and_flips_are_spread_uniformly() -> None:
    n, side = 4000, 12
    # A ramp of distinct positive values identifies the offset and the flip of each output.
    ramp = torch.arange(1, side * side + 1, dtype=torch.float32).view(1, 1, side, side)
    out = augment(ramp.expand(n, 1, side, side), torch.Generator().manual_seed(0))
    centre = out[:, 0, side // 2, side // 2]  # value = 1 + row * side + col of the source pixel
    source_row = (centre - 1) // side
    source_col = (centre - 1) % side
    di = source_row - side // 2
    flipped_col = side - 1 - side // 2  # the centre column after a mirror
    shift_plain = source_col - side // 2
    shift_flip = source_col - flipped_col
    flipped = (out[:, 0, side // 2, side // 2 + 1] - centre) < 0
    dj = torch.where(flipped, shift_flip, shift_plain)
    assert 0.46 < flipped.float().mean().item() < 0.54
    assert set(di.long().tolist()) == set(range(-CROP_PADDING, CROP_PADDING + 1))
    assert set(dj.long().tolist()) == set(range(-CROP_PADDING, CROP_PADDING + 1))
    counts = torch.bincount((di + CROP_PADDING).long(), minlength=9).float()
    assert (counts / n - 1 / 9).abs().max() < 0.03


def test_same_generator_state_same_result_and_input_untouched() -> None:
    x = torch.rand(8, 3, 32, 32)
    before = x.clone()
    first = augment(x, torch.Generator().manual_seed(5))
    second = augment(x, torch.Generator().manual_seed(5))
    assert torch.equal(first, second) and torch.equal(x, before)
    assert not torch.equal(first, augment(x, torch.Generator().manual_seed(6)))


def test_pixels_stay_in_the_unit_interval() -> None:
    x = torch.rand(16, 3, 32, 32)
    out = augment(x, torch.Generator().manual_seed(0))
    assert out.min() >= 0 and out.max() <= 1


@pytest.mark.parametrize("bad", [torch.rand(3, 32, 32), torch.rand(4, 10), "images"])
def test_only_image_batches_are_accepted(bad) -> None:
    with pytest.raises(BadInput, match=r"augment: x must be an image batch \(N, C, H, W\)"):
        augment(bad, torch.Generator())
