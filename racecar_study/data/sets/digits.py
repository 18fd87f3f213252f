"""scikit-learn's 8x8 handwritten digits (1,797 images), optionally upscaled to 28x28."""

from __future__ import annotations

import numpy as np
import torch

from .. import resample
from ..args import bool_arg, fraction_arg
from ..base import make_splits
from ..registry import BuildContext, register_dataset
from ..split import stratified_split


@register_dataset(
    "digits",
    description=(
        "scikit-learn's handwritten digits: 1,797 images, 10 classes, 8x8 grey with values 0..16 "
        "scaled to [0,1]; upscale: true resizes to 28x28 (bilinear) to pair with MNIST. Split by the "
        "seed, stratified, test_fraction (0.2) of each digit to test."
    ),
    size="1,797 (1,438 train / 359 test)",
    seeded=True,
)
def build_digits(ctx: BuildContext, *, upscale=False, test_fraction=0.2):
    from sklearn.datasets import load_digits  # sklearn is slow to import; only when used

    upscale = bool_arg("digits option 'upscale'", upscale)
    test_fraction = fraction_arg("digits option 'test_fraction'", test_fraction, allow_zero=False)
    bunch = load_digits()
    x = torch.from_numpy(bunch.images.astype(np.float32) / np.float32(16.0)).unsqueeze(1)
    if upscale:
        x = resample.resize(x, (28, 28))
    y = torch.from_numpy(bunch.target.astype(np.int64))
    train, test = (
        torch.from_numpy(i) for i in stratified_split(bunch.target, test_fraction, ctx.rng("split"))
    )
    parts = {"train": (x[train], y[train]), "test": (x[test], y[test])}
    return make_splits(ctx.name, parts, tuple(str(d) for d in range(10)), ctx.description)
