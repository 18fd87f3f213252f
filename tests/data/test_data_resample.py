"""The bit-stable resampler agrees with torch's own kernels to float32 rounding."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from racecar_study.data import resample


def test_rotation_matches_grid_sample():
    x = torch.rand(4, 3, 28, 28, generator=torch.Generator().manual_seed(0))
    angles = [30.0, -10.0, 5.0, 100.0]
    ours = resample.rotate(x, angles)
    for i, a in enumerate(angles):
        c, s = math.cos(math.radians(a)), math.sin(math.radians(a))
        theta = torch.tensor([[[c, -s, 0.0], [s, c, 0.0]]])
        grid = F.affine_grid(theta, (1, 3, 28, 28), align_corners=False)
        assert torch.allclose(ours[i], F.grid_sample(x[i : i + 1], grid, align_corners=False)[0], atol=1e-5)


@pytest.mark.parametrize(
    "size_in, size_out",
    [((8, 8), (28, 28)), ((60, 45), (28, 20)), ((28, 28), (14, 40))],
)
def test_resize_matches_interpolate_with_antialias(size_in, size_out):
    x = torch.rand(3, 2, *size_in, generator=torch.Generator().manual_seed(1))
    ref = F.interpolate(x, size=size_out, mode="bilinear", align_corners=False, antialias=True)
    assert torch.allclose(resample.resize(x, size_out), ref, atol=1e-5)


def test_shift_moves_content_and_fills_zero():
    x = torch.rand(2, 1, 9, 9)
    s = resample.shift(x, 2, -3)
    assert torch.equal(s[..., 2:, :-3], x[..., :-2, 3:])
    assert float(s[..., :2, :].abs().max()) == 0 and float(s[..., -3:].abs().max()) == 0
    half = resample.shift(x, 0.5, 0)
    assert torch.allclose(half[..., 1:, :], (x[..., 1:, :] + x[..., :-1, :]) / 2)
    assert float(resample.shift(x, 40, 0).abs().max()) == 0


def test_empty_batches():
    assert resample.rotate(torch.zeros(0, 1, 5, 5), []).shape == (0, 1, 5, 5)
    assert resample.resize(torch.zeros(0, 3, 8, 8), (4, 4)).shape == (0, 3, 4, 4)
    assert resample.shift(torch.zeros(0, 1, 5, 5), 1, 1).shape == (0, 1, 5, 5)
