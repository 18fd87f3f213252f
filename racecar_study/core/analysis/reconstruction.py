"""The reverse pass's reconstruction d'_1 of the input, next to the input, as images."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from racecar_study.core.analysis._util import analysis_mode, guess_image_shape, to_display
from racecar_study.core.analysis.images import minmax_rescale, save_image_grid

__all__ = ["reconstruction_images", "save_reconstruction_grid"]


def _as_images(t: torch.Tensor, image_shape: tuple[int, ...] | None) -> np.ndarray:
    a = t.detach().cpu().double().numpy()
    if image_shape is None:
        image_shape = a.shape[1:] if a.ndim in (3, 4) else guess_image_shape(int(np.prod(a.shape[1:])))
    return minmax_rescale(to_display(a.reshape(len(a), -1), tuple(image_shape)))


def reconstruction_images(
    net, x: torch.Tensor, n: int = 8, image_shape: tuple[int, ...] | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """(originals, reconstructions) of the first n inputs, each (n, H, W) or (n, H, W, 3), min-max
    rescaled per image to [0, 1].

    The net runs in eval mode under no_grad, on all of `x` (the reverse batch norm normalises with
    the batch's own statistics, so the batch matters), and its training flags are restored. Pass
    `image_shape` ((C,H,W) or (H,W)) for flat inputs; otherwise a square is guessed.
    """
    with analysis_mode(net):
        recon = net.racecar(x).reconstructions[0]
    n = min(n, len(x))
    return _as_images(x[:n], image_shape), _as_images(recon[:n], image_shape)


def save_reconstruction_grid(
    net, x: torch.Tensor, path: str | Path, n: int = 8, image_shape: tuple[int, ...] | None = None
) -> Path:
    """A 2-row PNG: inputs on top, their reverse-pass reconstructions d'_1 below."""
    originals, recons = reconstruction_images(net, x, n=n, image_shape=image_shape)
    k = len(originals)
    titles = ["input"] + [""] * (k - 1) + ["d'_1"] + [""] * (k - 1)
    return save_image_grid(np.concatenate([originals, recons]), path, ncols=k, titles=titles)
