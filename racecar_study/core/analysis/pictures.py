"""The pictures every trained model leaves: first-layer singular vectors and reverse-pass
reconstructions (used by the `train` command and by MLflow tracking alike)."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from racecar_study.core.analysis.images import save_image_grid
from racecar_study.core.analysis.reconstruction import save_reconstruction_grid
from racecar_study.core.analysis.svd import SvdResult, first_layer_svd, vectors_to_images

MAX_VECTORS = 16
MAX_RECONSTRUCTIONS = 8


def save_model_pictures(
    net: nn.Module, out: str | Path, input_shape: tuple[int, ...] | None = None, x: torch.Tensor | None = None
) -> SvdResult:
    """`out/svd/vectors.png` (top singular vectors, titled with their values) and, given two or
    more inputs, `out/reconstructions.png`. Returns the SVD so callers can keep its arrays."""
    out = Path(out)
    svd = first_layer_svd(net, input_shape=input_shape)
    k = min(MAX_VECTORS, len(svd.right_vectors))
    titles = [f"s={v:.3g}" for v in svd.singular_values[:k]]
    images = vectors_to_images(svd.right_vectors[:k], svd.image_shape)
    save_image_grid(images, out / "svd" / "vectors.png", titles=titles)
    if x is not None and len(x) >= 2:
        x = x[:MAX_RECONSTRUCTIONS]
        shape = input_shape if x.dim() == 2 else None
        save_reconstruction_grid(net, x, out / "reconstructions.png", n=len(x), image_shape=shape)
    return svd
