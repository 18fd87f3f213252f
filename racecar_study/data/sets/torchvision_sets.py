"""MNIST, CIFAR-10 and CIFAR-100 through torchvision.datasets, from a local root by default."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ..args import bool_arg
from ..base import DataError, make_splits
from ..registry import BuildContext, register_dataset

# name -> (torchvision class, what must exist under root, description, size)
SETS = {
    "mnist": (
        "MNIST",
        "MNIST/raw/train-images-idx3-ubyte",
        "MNIST via torchvision: 60,000 train / 10,000 test, 28x28 grey, pixels 0..255 scaled to [0,1].",
        "70,000 (60,000 train / 10,000 test)",
    ),
    "cifar10": (
        "CIFAR10",
        "cifar-10-batches-py",
        "CIFAR-10 via torchvision: 50,000 train / 10,000 test, 10 classes, 3x32x32 RGB, "
        "0..255 scaled to [0,1].",
        "60,000 (50,000 train / 10,000 test)",
    ),
    "cifar100": (
        "CIFAR100",
        "cifar-100-python",
        "CIFAR-100 via torchvision: 50,000 train / 10,000 test, 100 fine classes, 3x32x32 RGB, "
        "0..255 scaled to [0,1].",
        "60,000 (50,000 train / 10,000 test)",
    ),
}
_HOW = "pass download: true on a machine with network, or copy the torchvision files there or pass root="


def default_root(cache_dir: Path) -> Path:
    return cache_dir / "torchvision"


def _root(ctx_or_cache_dir, root) -> Path:
    if root is None:
        return default_root(ctx_or_cache_dir)
    if not isinstance(root, str):
        raise DataError(f"option 'root' must be a folder path, got {root!r}")
    return Path(root).expanduser().absolute()


def _tensors(ds) -> tuple[torch.Tensor, torch.Tensor]:
    x = torch.as_tensor(np.asarray(ds.data))
    x = x.unsqueeze(1) if x.dim() == 3 else x.permute(0, 3, 1, 2)  # CIFAR keeps HWC numpy
    return x.float().div_(255.0).contiguous(), torch.as_tensor(np.asarray(ds.targets), dtype=torch.int64)


def _register(name: str, class_name: str, marker: str, description: str, size: str) -> None:
    def check(cache_dir: Path) -> str | None:
        root = default_root(cache_dir)
        return None if (root / marker).exists() else f"{root / marker} not found; {_HOW}"

    @register_dataset(name, description=description, size=size, check=check, path_options=("root",))
    def build(ctx: BuildContext, *, root=None, download=False):
        bool_arg(f"{name} option 'download'", download)
        path = _root(ctx.cache_dir, root)
        if not download and not (path / marker).exists():
            raise DataError(f"{name}: {path / marker} not found; {_HOW}")
        import torchvision.datasets  # late: only these sets need torchvision

        cls = getattr(torchvision.datasets, class_name)
        try:
            train, test = (cls(str(path), train=t, download=download) for t in (True, False))
        except (RuntimeError, OSError) as e:
            raise DataError(f"{name}: could not read {class_name} under {path} ({e}); {_HOW}") from None
        parts = {"train": _tensors(train), "test": _tensors(test)}
        return make_splits(ctx.name, parts, tuple(train.classes), ctx.description)


for _name, _spec in SETS.items():
    _register(_name, *_spec)
