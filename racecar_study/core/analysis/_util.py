"""Helpers shared by the analysis modules: a side-effect-free evaluation mode and image reshaping."""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator

import numpy as np
import torch
from torch import nn


@contextlib.contextmanager
def analysis_mode(net: nn.Module) -> Iterator[None]:
    """Eval mode and no_grad for the duration; every submodule's own training flag is restored
    afterwards (a net in training mode with a frozen, eval-mode norm stays that way)."""
    flags = [(m, m.training) for m in net.modules()]
    net.eval()
    try:
        with torch.no_grad():
            yield
    finally:
        for m, flag in flags:
            m.training = flag


def guess_image_shape(n: int) -> tuple[int, int, int]:
    """(C, H, W) for a flat vector of length n: square grey, else square RGB, else a 1-pixel strip."""
    side = math.isqrt(n)
    if side * side == n:
        return (1, side, side)
    if n % 3 == 0:
        side = math.isqrt(n // 3)
        if 3 * side * side == n:
            return (3, side, side)
    return (1, 1, n)


def normalise_image_shape(shape: tuple[int, ...] | torch.Size) -> tuple[int, int, int]:
    shape = tuple(int(s) for s in shape)
    if len(shape) == 2:
        return (1, *shape)
    if len(shape) == 3:
        return shape  # type: ignore[return-value]
    raise ValueError(f"image shape must be (H, W) or (C, H, W), got {shape}")


def to_display(flat: np.ndarray, image_shape: tuple[int, ...]) -> np.ndarray:
    """(k, C*H*W) -> (k, H, W) for one channel, (k, H, W, 3) for three; other channel counts are
    laid side by side as (k, H, C*W)."""
    c, h, w = normalise_image_shape(image_shape)
    if flat.shape[1] != c * h * w:
        raise ValueError(f"vectors of length {flat.shape[1]} do not fit image shape {(c, h, w)}")
    imgs = flat.reshape(len(flat), c, h, w)
    if c == 1:
        return imgs[:, 0]
    if c == 3:
        return imgs.transpose(0, 2, 3, 1)
    return imgs.transpose(0, 2, 1, 3).reshape(len(flat), h, c * w)
