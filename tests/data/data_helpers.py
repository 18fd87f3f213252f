"""Helpers for the data-wing tests: small source files written on the fly, digests, comparisons."""

from __future__ import annotations

import gzip
import hashlib
from pathlib import Path

import numpy as np
import torch

from racecar_study.data.base import SPLITS


def write_idx(path: Path, array: np.ndarray) -> None:
    """An IDX file (uint8), gzipped when the name ends in .gz."""
    array = np.ascontiguousarray(array, dtype=np.uint8)
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    data = header + array.tobytes()
    path.write_bytes(gzip.compress(data) if path.suffix == ".gz" else data)


def fake_fashion(root: Path, n_train: int = 30, n_test: int = 10, seed: int = 0) -> dict:
    """Fashion-MNIST-shaped IDX files: labels cycle 0..9; returns the arrays written."""
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    arrays = {}
    for split, prefix, n in (("train", "train", n_train), ("test", "t10k", n_test)):
        images = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
        labels = (np.arange(n) % 10).astype(np.uint8)
        write_idx(root / f"{prefix}-images-idx3-ubyte.gz", images)
        write_idx(root / f"{prefix}-labels-idx1-ubyte.gz", labels)
        arrays[split] = (images, labels)
    return arrays


def write_images(root: Path, classes: dict[str, int], size=(8, 8), mode="L", ext=".png", seed=0) -> None:
    """root/<class>/<i><ext>: `classes` maps a class folder to how many images it gets."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    for name, count in classes.items():
        (root / name).mkdir(parents=True, exist_ok=True)
        for i in range(count):
            shape = (size[1], size[0]) + ((3,) if mode == "RGB" else ())
            pixels = rng.integers(0, 256, size=shape, dtype=np.uint8)
            Image.fromarray(pixels).save(root / name / f"{i}{ext}")


def digest(s) -> str:
    """sha256 over every tensor and the class names of a DataSplits."""
    h = hashlib.sha256(repr(s.class_names).encode())
    for split in SPLITS:
        x, y = s.split(split)
        h.update(repr(tuple(x.shape)).encode())
        h.update(x.contiguous().numpy().tobytes())
        h.update(y.contiguous().numpy().tobytes())
    return h.hexdigest()


def files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def splits_equal(a, b) -> bool:
    """Same class names and bitwise-equal tensors in every split."""
    same = (torch.equal(u, v) for s in SPLITS for u, v in zip(a.split(s), b.split(s)))
    return a.class_names == b.class_names and all(same)
