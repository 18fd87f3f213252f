"""Singular value decomposition of the first layer's weight, and its right singular vectors as images.

With W = U S V^T (out x in), the right singular vectors are the COLUMNS of V: input-space
directions, W v_i = s_i u_i. (The reference code took rows of V; that is wrong.)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from torch import nn

from racecar_study.core.analysis._util import guess_image_shape, normalise_image_shape, to_display
from racecar_study.core.analysis.images import save_image_grid

__all__ = [
    "SvdResult",
    "first_layer_svd",
    "first_linear_layer",
    "save_image_grid",
    "vectors_to_images",
    "weight_matrix",
]


@dataclass(frozen=True)
class SvdResult:
    singular_values: np.ndarray  # (r,), descending, r = min(out, in)
    right_vectors: np.ndarray  # (k, in): row i is v_i, the i-th column of V
    image_shape: tuple[int, int, int]  # (C, H, W) that one right vector reshapes to
    left_vectors: np.ndarray | None = None  # (out, k): column i is u_i, signs matched to v_i


def first_linear_layer(net: nn.Module) -> nn.Linear | nn.Conv2d:
    """The first Linear/Conv2d the input meets (inside a leading residual block, if any)."""
    layer = next((m for m in net.modules() if isinstance(m, (nn.Linear, nn.Conv2d))), None)
    if layer is None:
        raise ValueError("the network has no Linear or Conv2d layer")
    return layer


def weight_matrix(layer: nn.Linear | nn.Conv2d) -> np.ndarray:
    """The layer's linear operator as a float64 matrix: out x in, or out x (in_c/groups * kh * kw)."""
    w = layer.weight.detach().cpu().double()
    return w.reshape(w.shape[0], -1).numpy()


def _flip_signs(v: np.ndarray, u: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    # v: (in, k) columns, u: (out, k) columns; flipping both keeps W v_i = s_i u_i.
    idx = np.argmax(np.abs(v), axis=0)
    signs = np.sign(v[idx, np.arange(v.shape[1])])
    signs[signs == 0] = 1.0
    return v * signs, u * signs


def first_layer_svd(
    net: nn.Module, k: int | None = None, input_shape: tuple[int, ...] | None = None
) -> SvdResult:
    """SVD of the first layer's weight in float64, top-k right singular vectors as rows.

    Each vector is sign-flipped so that its largest-magnitude entry is positive. image_shape is the
    kernel's (in_c/groups, kh, kw) for a Conv2d; for a Linear, `input_shape` ((C,H,W) or (H,W), the
    net input's shape without batch) if given, else a square guess.
    """
    layer = first_linear_layer(net)
    w = weight_matrix(layer)
    u, s, vh = np.linalg.svd(w, full_matrices=False)
    r = len(s)
    k = r if k is None else k
    if not 1 <= k <= r:
        raise ValueError(f"k must be in [1, {r}], got {k}")
    v_cols = vh.T[:, :k]  # columns of V
    v_cols, u_cols = _flip_signs(v_cols, u[:, :k])
    if isinstance(layer, nn.Conv2d):
        image_shape = tuple(int(d) for d in layer.weight.shape[1:])
    elif input_shape is not None:
        image_shape = normalise_image_shape(input_shape)
        if int(np.prod(image_shape)) != w.shape[1]:
            raise ValueError(f"input_shape {tuple(input_shape)} does not have {w.shape[1]} elements")
    else:
        image_shape = guess_image_shape(w.shape[1])
    return SvdResult(s, np.ascontiguousarray(v_cols.T), image_shape, np.ascontiguousarray(u_cols))


def vectors_to_images(vectors: np.ndarray, image_shape: tuple[int, ...]) -> np.ndarray:
    """Vectors (k, D) to display images (k, H, W) or (k, H, W, 3) in [0, 1], each rescaled
    symmetrically around zero: 0.5 + v / (2 max|v|), so 0 is mid-grey and signs stay comparable."""
    v = np.asarray(vectors, dtype=np.float64)
    if v.ndim == 1:
        v = v[None]
    peak = np.abs(v).max(axis=1, keepdims=True)
    scaled = 0.5 + v / (2.0 * np.where(peak > 0, peak, 1.0))
    return to_display(scaled, image_shape)
