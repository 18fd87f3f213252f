"""Image grids written as PNG without pyplot (an explicit Agg canvas: thread-safe, no global state)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure


def minmax_rescale(images: np.ndarray) -> np.ndarray:
    """Per-image min-max to [0, 1] over all of each image's pixels; a constant image becomes 0.5."""
    images = np.asarray(images, dtype=np.float64)
    flat = images.reshape(len(images), -1)
    lo = flat.min(axis=1, keepdims=True)
    span = flat.max(axis=1, keepdims=True) - lo
    out = np.where(span > 0, (flat - lo) / np.where(span > 0, span, 1.0), 0.5)
    return out.reshape(images.shape)


def save_image_grid(
    images: np.ndarray,
    path: str | Path,
    ncols: int | None = None,
    titles: Sequence[str] | None = None,
    cell_inches: float = 1.5,
    dpi: int = 100,
) -> Path:
    """Write images (k, H, W) grey or (k, H, W, 3) RGB, values in [0, 1], as a PNG grid.

    The PNG is exactly (rows * cell_inches * dpi) x (ncols * cell_inches * dpi) pixels.
    """
    images = np.clip(np.asarray(images, dtype=np.float64), 0.0, 1.0)
    if images.ndim not in (3, 4) or (images.ndim == 4 and images.shape[-1] != 3):
        raise ValueError(f"images must be (k, H, W) or (k, H, W, 3), got shape {images.shape}")
    k = len(images)
    if k == 0:
        raise ValueError("no images to write")
    if titles is not None and len(titles) != k:
        raise ValueError(f"{len(titles)} titles for {k} images")
    ncols = ncols or math.ceil(math.sqrt(k))
    nrows = math.ceil(k / ncols)
    fig = Figure(figsize=(ncols * cell_inches, nrows * cell_inches), dpi=dpi)
    FigureCanvasAgg(fig)
    axes = fig.subplots(nrows, ncols, squeeze=False)
    for i, ax in enumerate(axes.flat):
        ax.set_axis_off()
        if i >= k:
            continue
        ax.imshow(
            images[i], cmap="gray" if images.ndim == 3 else None, vmin=0.0, vmax=1.0, interpolation="nearest"
        )
        if titles is not None and titles[i]:
            ax.set_title(titles[i], fontsize=8)
    fig.subplots_adjust(
        left=0.02,
        right=0.98,
        bottom=0.02,
        top=0.9 if titles else 0.98,
        wspace=0.05,
        hspace=0.2 if titles else 0.05,
    )
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="png", dpi=dpi)
    return path
