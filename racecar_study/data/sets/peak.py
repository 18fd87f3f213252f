"""The peak test of METHOD.md: which corner holds the disc, with a distractor to ignore."""

from __future__ import annotations

import math

import numpy as np
import torch

from .. import resample
from ..args import count_arg, number_arg
from ..base import DataError, make_splits
from ..registry import BuildContext, register_dataset
from ..transforms import Step, register_transform

SIZE = 28
CENTRES = ((6.0, 6.0), (21.0, 21.0))  # (row, col) of class 0 and class 1
DISC_RADIUS = 3.0
JITTER = 1.0  # each centre coordinate moves by a uniform draw in [-JITTER, JITTER]
REGION_RADIUS = 5.0  # holds every jittered disc with its soft edge (3 + 0.5 + sqrt(2) < 5)
KEEP_OUT = REGION_RADIUS + 1.0  # distractors leave this radius around both centres empty
DISTRACTORS = ("triangle", "line", "wave", "scribble")

_ROWS, _COLS = (a.astype(np.float64) for a in np.mgrid[0:SIZE, 0:SIZE])
_KEEP_OUT_MASK = np.zeros((SIZE, SIZE), dtype=bool)
for _cy, _cx in CENTRES:
    _KEEP_OUT_MASK |= (_ROWS - _cy) ** 2 + (_COLS - _cx) ** 2 <= KEEP_OUT**2


def _disc(cy: float, cx: float) -> np.ndarray:
    d = np.sqrt((_ROWS - cy) ** 2 + (_COLS - cx) ** 2)
    return np.clip(DISC_RADIUS + 0.5 - d, 0.0, 1.0)


def _stroke(points: list[tuple[float, float]], width: float) -> np.ndarray:
    """Anti-aliased polyline through (row, col) points."""
    p = np.asarray(points, dtype=np.float64)
    a, b = p[:-1, :, None, None], p[1:, :, None, None]
    ab_r, ab_c = b[:, 0] - a[:, 0], b[:, 1] - a[:, 1]
    ap_r, ap_c = _ROWS - a[:, 0], _COLS - a[:, 1]
    length2 = np.maximum(ab_r * ab_r + ab_c * ab_c, 1e-12)
    t = np.clip((ap_r * ab_r + ap_c * ab_c) / length2, 0.0, 1.0)
    dr, dc = ap_r - t * ab_r, ap_c - t * ab_c
    d = np.sqrt(dr * dr + dc * dc).min(axis=0)
    return np.clip(width / 2 + 0.5 - d, 0.0, 1.0)


def _triangle(vertices: list[tuple[float, float]]) -> np.ndarray:
    """Filled, anti-aliased triangle: ink = 0.5 + distance inside the nearest edge."""
    inside = np.full((SIZE, SIZE), np.inf)
    for i in range(3):
        (r0, c0), (r1, c1), (r2, c2) = vertices[i], vertices[(i + 1) % 3], vertices[(i + 2) % 3]
        nr, nc = c1 - c0, -(r1 - r0)  # an edge normal
        norm = math.sqrt(nr * nr + nc * nc)
        if (r2 - r0) * nr + (c2 - c0) * nc < 0:  # point it inwards
            nr, nc = -nr, -nc
        inside = np.minimum(inside, ((_ROWS - r0) * nr + (_COLS - c0) * nc) / norm)
    return np.clip(0.5 + inside, 0.0, 1.0)


def _distractor(rng: np.random.Generator) -> np.ndarray:
    kind = DISTRACTORS[int(rng.integers(len(DISTRACTORS)))]
    ar, ac = rng.uniform(4.0, SIZE - 5.0, size=2).tolist()
    heading = float(rng.uniform(0.0, 2 * math.pi))
    if kind == "triangle":
        r = float(rng.uniform(3.0, 5.0))
        angles = [heading + k * 2 * math.pi / 3 + float(rng.uniform(-0.4, 0.4)) for k in range(3)]
        return _triangle([(ar + r * math.sin(t), ac + r * math.cos(t)) for t in angles])
    width = float(rng.uniform(1.0, 2.0))
    dr, dc = math.sin(heading), math.cos(heading)
    if kind == "line":
        half = float(rng.uniform(4.0, 7.0))
        return _stroke([(ar - half * dr, ac - half * dc), (ar + half * dr, ac + half * dc)], width)
    if kind == "wave":
        half, amp = float(rng.uniform(5.0, 8.0)), float(rng.uniform(1.0, 2.5))
        periods, phase = float(rng.uniform(1.0, 2.5)), float(rng.uniform(0.0, 2 * math.pi))
        points = []
        for k in range(25):
            along = -half + 2 * half * k / 24
            across = amp * math.sin(2 * math.pi * periods * k / 24 + phase)
            points.append((ar + along * dr + across * dc, ac + along * dc - across * dr))
        return _stroke(points, min(width, 1.5))
    # scribble: a pen whose turning rate drifts, which curls like handwriting
    points, turn = [(0.0, 0.0)], 0.0
    for _ in range(24):
        turn = min(max(turn + float(rng.normal(0.0, 0.15)), -0.6), 0.6)
        heading += turn
        r, c = points[-1]
        points.append((r + 0.7 * math.sin(heading), c + 0.7 * math.cos(heading)))
    mid_r = (min(p[0] for p in points) + max(p[0] for p in points)) / 2
    mid_c = (min(p[1] for p in points) + max(p[1] for p in points)) / 2
    return _stroke([(ar + r - mid_r, ac + c - mid_c) for r, c in points], min(width, 1.5))


def _image(label: int, rng: np.random.Generator) -> np.ndarray:
    cy, cx = (c + float(rng.uniform(-JITTER, JITTER)) for c in CENTRES[label])
    for _ in range(1000):
        ink = _distractor(rng)
        # a count, not a float sum: no rounding for the acceptance test to hinge on
        if not ink[_KEEP_OUT_MASK].any() and np.count_nonzero(ink > 0.5) >= 4:
            return np.maximum(_disc(cy, cx), ink)
    raise RuntimeError("peak: no distractor placement found")  # unreachable with these sizes


def _generate(n_per_class: int, rng: np.random.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    labels = np.arange(2 * n_per_class) % 2  # interleaved 0, 1, 0, 1, ...
    x = np.stack([_image(int(y), rng) for y in labels]) if len(labels) else np.zeros((0, SIZE, SIZE))
    return torch.from_numpy(x.astype(np.float32)).unsqueeze(1), torch.from_numpy(labels.astype(np.int64))


@register_dataset(
    "peak",
    description=(
        "Peak test (METHOD.md): 28x28 grey, 2 classes; a filled disc of radius 3 px near (6,6) is "
        "class 0, near (21,21) class 1, plus one random distractor (triangle, line, wave or scribble) "
        "clear of both disc regions. Pixels in [0,1], 0 = background. Generated from the seed; "
        "n_per_class (train, 50) and test_per_class (5) set the sizes."
    ),
    size="50 + 5 per class by default (any size)",
    seeded=True,
)
def build_peak(ctx: BuildContext, *, n_per_class=50, test_per_class=5):
    n_train = count_arg("peak option 'n_per_class'", n_per_class)
    n_test = count_arg("peak option 'test_per_class'", test_per_class, minimum=0)
    parts = {"train": _generate(n_train, ctx.rng("train")), "test": _generate(n_test, ctx.rng("test"))}
    return make_splits(ctx.name, parts, ("upper-left", "lower-right"), ctx.description)


def peak_disc_masks(
    shape: tuple[int, int] = (SIZE, SIZE),
    radius: float = REGION_RADIUS,
    shift: tuple[float, float] = (0.0, 0.0),
) -> tuple[torch.Tensor, torch.Tensor]:
    """Boolean (H, W) masks of where the class-0 and class-1 discs lie.

    `radius` and `shift` (the move_discs argument) are in 28x28 pixels and scale with `shape`;
    the default radius holds every jittered disc.
    """
    h, w = shape
    sy, sx = h / SIZE, w / SIZE
    rows = torch.arange(h, dtype=torch.float64).view(-1, 1)
    cols = torch.arange(w, dtype=torch.float64).view(1, -1)
    masks = []
    for cy, cx in CENTRES:
        # centres map like pixel centres under resizing: (c + 0.5) * scale - 0.5
        my, mx = (cy + shift[0] + 0.5) * sy - 0.5, (cx + shift[1] + 0.5) * sx - 0.5
        masks.append(((rows - my) / sy) ** 2 + ((cols - mx) / sx) ** 2 <= radius**2)
    return masks[0], masks[1]


def move_discs(x: torch.Tensor, dy: float, dx: float) -> torch.Tensor:
    """Peak images with both disc regions shifted by (dy, dx); the distractor stays put."""
    if tuple(x.shape[1:]) != (1, SIZE, SIZE):
        raise DataError(f"move_discs needs the 1x{SIZE}x{SIZE} peak images, got {tuple(x.shape[1:])}")
    mask0, mask1 = peak_disc_masks()
    region = (mask0 | mask1).to(x.dtype)
    # Distractors never enter the region, so splitting by it separates disc from distractor.
    moved = resample.shift(x * region, dy, dx)
    return torch.maximum(x * (1 - region), moved)


@register_transform("move_discs")
def _move_discs_step(arg) -> Step:
    """{move_discs: [dy, dx]}: peak only, first in the list; moves both discs by dy rows, dx columns."""
    if not isinstance(arg, list | tuple) or len(arg) != 2:
        raise DataError(f"transform 'move_discs' needs [dy, dx], got {arg!r}")
    dy, dx = (number_arg("transform 'move_discs'", a) for a in arg)
    return Step(lambda x, ctx: move_discs(x, dy, dx), only_on="peak", first=True)
