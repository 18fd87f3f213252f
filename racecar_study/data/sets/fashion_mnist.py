"""Fashion-MNIST, full 60k/10k, from IDX files (Debian's dataset-fashion-mnist by default)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ..base import DataError, make_splits
from ..idx import find_idx, read_idx
from ..registry import BuildContext, register_dataset

DEFAULT_ROOT = Path("/usr/share/datasets/fashion-mnist")
FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
CLASSES = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)


def _root(root) -> Path:
    if root is None:
        return DEFAULT_ROOT
    if not isinstance(root, str):
        raise DataError(f"fashion_mnist option 'root' must be a folder path, got {root!r}")
    return Path(root).expanduser().absolute()


def _files(root: Path) -> dict[str, Path]:
    found = {}
    for stems in FILES.values():
        for stem in stems:
            path = find_idx(root, stem)
            if path is None:
                raise DataError(
                    f"fashion_mnist: {root / stem}.gz not found; "
                    "apt-get install dataset-fashion-mnist or pass root= (a folder with the IDX files)"
                )
            found[stem] = path
    return found


def _check(cache_dir) -> str | None:
    try:
        _files(DEFAULT_ROOT)
    except DataError as e:
        return str(e)
    return None


def _fingerprint(ctx: BuildContext, *, root=None) -> list:
    """Paths, sizes and mtimes of the source files: replacing them invalidates the cache."""
    return [[str(p), p.stat().st_size, p.stat().st_mtime_ns] for p in _files(_root(root)).values()]


@register_dataset(
    "fashion_mnist",
    description=(
        "Fashion-MNIST (Zalando), 60,000 train / 10,000 test, 10 clothing classes, 28x28 grey; "
        "pixels 0..255 scaled to [0,1]. Read from /usr/share/datasets/fashion-mnist or option root."
    ),
    size="70,000 (60,000 train / 10,000 test)",
    check=_check,
    fingerprint=_fingerprint,
)
def build_fashion_mnist(ctx: BuildContext, *, root=None):
    files = _files(_root(root))
    parts = {}
    for split, (image_stem, label_stem) in FILES.items():
        images, labels = read_idx(files[image_stem]), read_idx(files[label_stem])
        if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
            raise DataError(f"fashion_mnist: {files[image_stem]} and {files[label_stem]} do not match")
        if len(labels) and labels.max() >= len(CLASSES):
            raise DataError(f"fashion_mnist: {files[label_stem]} has labels above {len(CLASSES) - 1}")
        x = torch.from_numpy(images.astype(np.float32)).div_(255.0).unsqueeze(1)
        parts[split] = (x, torch.from_numpy(labels.astype(np.int64)))
    return make_splits(ctx.name, parts, CLASSES, ctx.description)
