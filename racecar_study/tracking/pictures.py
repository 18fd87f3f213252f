"""The pictures a trial leaves in MLflow: first-layer singular vectors and reverse-pass reconstructions."""

from __future__ import annotations

from pathlib import Path

import torch

MAX_VECTORS = 16
MAX_RECONSTRUCTIONS = 8


def write_pictures(net, input_shape: tuple[int, ...] | None, x: torch.Tensor | None, out: Path) -> Path:
    """`out/svd/vectors.png` and, given two or more inputs, `out/reconstructions.png`."""
    from racecar_study.core.analysis import (
        first_layer_svd,
        save_image_grid,
        save_reconstruction_grid,
        vectors_to_images,
    )

    out.mkdir(parents=True, exist_ok=True)
    svd = first_layer_svd(net, input_shape=input_shape)
    k = min(MAX_VECTORS, len(svd.right_vectors))
    titles = [f"s={v:.3g}" for v in svd.singular_values[:k]]
    images = vectors_to_images(svd.right_vectors[:k], svd.image_shape)
    save_image_grid(images, out / "svd" / "vectors.png", titles=titles)
    if x is not None and len(x) >= 2:
        shape = input_shape if x.dim() == 2 else None
        save_reconstruction_grid(
            net,
            x[:MAX_RECONSTRUCTIONS],
            out / "reconstructions.png",
            n=MAX_RECONSTRUCTIONS,
            image_shape=shape,
        )
    return out
