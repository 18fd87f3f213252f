"""Bilinear resampling (rotate, shift, resize) that gives the same bits on every machine.

torch's grid_sample/interpolate pick SIMD kernels per CPU and may round differently; these use
only elementwise float32 multiply/add (each exactly rounded by IEEE 754), floor and gathers in a
fixed order, so the result depends on the inputs alone. numpy rather than torch: single-threaded,
so no thread pool to stall on a busy machine. Pixel centres sit at integer coordinates; outside
the image is zero.
"""

from __future__ import annotations

import math

import numpy as np
import torch

_F = np.float32  # float64 doubled the time and gained nothing visible in [0, 1] pixels
_PIXELS_PER_PASS = 1 << 17  # keeps the temporaries of a pass in cache (measured: ~2x faster)


def _sample(x: np.ndarray, sy: np.ndarray, sx: np.ndarray) -> np.ndarray:
    """x (N,C,H,W) at source coordinates sy, sx of shape (N or 1, Ho, Wo); zero outside."""
    n, c, h, w = x.shape
    out_hw, m, size = sy.shape[1:], sy.shape[1] * sy.shape[2], (h + 2) * (w + 2)
    padded = np.zeros((n, c, h + 2, w + 2), dtype=_F)  # a zero ring stands for "outside"
    padded[:, :, 1:-1, 1:-1] = x
    # Beyond one pixel outside, every tap is zero anyway: clamp so all taps index the padded image.
    sy, sx = np.clip(sy, _F(-1), _F(h)), np.clip(sx, _F(-1), _F(w))
    y0, x0 = np.minimum(np.floor(sy), _F(h - 1)), np.minimum(np.floor(sx), _F(w - 1))
    fy, fx = (sy - y0).reshape(-1, 1, m), (sx - x0).reshape(-1, 1, m)
    corner = ((y0.astype(np.int64) + 1) * (w + 2) + (x0.astype(np.int64) + 1)).reshape(-1, 1, m)
    # One flat gather per corner: index = (image, channel) block start + position in the block.
    block = (np.arange(n * c, dtype=np.int64) * size).reshape(n, c, 1)
    index = block + corner
    flat = padded.reshape(-1)
    v00, v01 = flat[index], flat[index + 1]
    v10, v11 = flat[index + (w + 2)], flat[index + (w + 3)]
    top = v00 + fx * (v01 - v00)
    bottom = v10 + fx * (v11 - v10)
    return (top + fy * (bottom - top)).reshape(n, c, *out_hw)


def _per_chunk(fn, x: torch.Tensor, *per_image: np.ndarray) -> torch.Tensor:
    """fn over chunks of images (as numpy), concatenated back into one float32 tensor."""
    xs = x.numpy()
    step = max(1, _PIXELS_PER_PASS // max(1, xs[0].size if len(xs) else 1))
    chunks = [
        fn(xs[i : i + step].astype(_F, copy=False), *(p[i : i + step] for p in per_image))
        for i in range(0, max(len(xs), 1), step)
    ]
    return torch.from_numpy(np.concatenate(chunks).astype(np.float32, copy=False))


def rotate(x: torch.Tensor, degrees: list[float]) -> torch.Tensor:
    """Rotate each image counter-clockwise about its centre by its angle; corners fill with zero."""
    # math.cos/sin per angle, not a vectorised kernel whose last bit may vary by CPU.
    rad = [a * (math.pi / 180.0) for a in degrees]
    cos = np.array([math.cos(r) for r in rad], dtype=_F).reshape(-1, 1, 1)
    sin = np.array([math.sin(r) for r in rad], dtype=_F).reshape(-1, 1, 1)
    h, w = x.shape[2:]
    cy, cx = _F((h - 1) / 2.0), _F((w - 1) / 2.0)
    v = cy - np.arange(h, dtype=_F).reshape(1, h, 1)  # up
    u = np.arange(w, dtype=_F).reshape(1, 1, w) - cx  # right

    def one(xs, cs, ss):
        src_u = u * cs + v * ss
        src_v = v * cs - u * ss
        return _sample(xs, cy - src_v, cx + src_u)

    return _per_chunk(one, x, cos, sin)


def shift(x: torch.Tensor, dy: float, dx: float) -> torch.Tensor:
    """Translate content by (dy, dx) pixels (down, right); what leaves the image is lost."""
    h, w = x.shape[2:]
    sy = np.broadcast_to(np.arange(h, dtype=_F).reshape(1, h, 1) - _F(dy), (1, h, w))
    sx = np.broadcast_to(np.arange(w, dtype=_F).reshape(1, 1, w) - _F(dx), (1, h, w))
    return _per_chunk(lambda xs: _sample(xs, sy, sx), x)


def _taps(n_in: int, n_out: int) -> tuple[np.ndarray, np.ndarray]:
    """Source indices and weights (n_out, K) of a triangle filter, widened when shrinking (antialias)."""
    scale = n_in / n_out
    support = max(scale, 1.0)
    centre = (np.arange(n_out, dtype=np.float64) + 0.5) * scale - 0.5
    k = int(math.ceil(2 * support)) + 1
    index = np.floor(centre - support).astype(np.int64).reshape(-1, 1) + 1 + np.arange(k).reshape(1, -1)
    weight = np.maximum(1 - np.abs(index - centre.reshape(-1, 1)) / support, 0.0)
    weight = weight * ((index >= 0) & (index < n_in))
    total = np.zeros(n_out, dtype=np.float64)
    for j in range(k):  # fixed summation order
        total = total + weight[:, j]
    return np.clip(index, 0, n_in - 1), (weight / total.reshape(-1, 1)).astype(_F)


def _resize_axis(x: np.ndarray, axis: int, n_out: int) -> np.ndarray:
    index, weight = _taps(x.shape[axis], n_out)
    shape = [1] * x.ndim
    shape[axis] = n_out
    out = np.zeros(x.shape[:axis] + (n_out,) + x.shape[axis + 1 :], dtype=_F)
    for j in range(index.shape[1]):
        out += weight[:, j].reshape(shape) * np.take(x, index[:, j], axis=axis)
    return out


def resize(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Bilinear resize to (H, W); antialiased (triangle filter) when shrinking, edges clamped."""
    h, w = size
    if tuple(x.shape[2:]) == (h, w):
        return x
    return _per_chunk(lambda xs: _resize_axis(_resize_axis(xs, 2, h), 3, w), x)
