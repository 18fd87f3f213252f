"""The two types every data set speaks: its splits, and the error it raises."""

from __future__ import annotations

from dataclasses import dataclass

import torch


class DataError(ValueError):
    """Bad data set name/options; message is one line that names what is wrong."""


SPLITS = ("train", "val", "test")


@dataclass(frozen=True, eq=False, repr=False)  # tensors: identity equality, no 70k-image repr
class DataSplits:
    """Train/val/test tensors of one materialised view.

    Images are float32 (N, C, H, W), labels int64 in 0..num_classes-1; any split may have N=0.
    """

    name: str
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_val: torch.Tensor
    y_val: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    class_names: tuple[str, ...]
    description: str

    def __post_init__(self) -> None:
        # Catches a builder bug where it happens, not three wings later in a training loop.
        object.__setattr__(self, "class_names", tuple(str(c) for c in self.class_names))
        shapes = set()
        for split in SPLITS:
            x, y = self.split(split)
            if x.dtype != torch.float32 or x.dim() != 4:
                raise DataError(
                    f"{self.name}: x_{split} must be float32 (N,C,H,W), got {x.dtype} {tuple(x.shape)}"
                )
            if y.dtype != torch.int64 or y.dim() != 1 or len(y) != len(x):
                raise DataError(f"{self.name}: y_{split} must be int64 (N,) matching x_{split}")
            if len(y) and (int(y.min()) < 0 or int(y.max()) >= len(self.class_names)):
                raise DataError(f"{self.name}: y_{split} has labels outside 0..{len(self.class_names) - 1}")
            shapes.add(tuple(x.shape[1:]))
        if len(shapes) != 1:
            raise DataError(f"{self.name}: splits disagree on image shape: {sorted(shapes)}")

    def __repr__(self) -> str:
        sizes = ", ".join(f"{split}={len(self.split(split)[0])}" for split in SPLITS)
        shape = f"input_shape={self.input_shape}, classes={self.num_classes}"
        return f"DataSplits({self.name!r}, {sizes}, {shape})"

    def split(self, split: str) -> tuple[torch.Tensor, torch.Tensor]:
        """(x, y) of 'train', 'val' or 'test'."""
        return getattr(self, f"x_{split}"), getattr(self, f"y_{split}")

    @property
    def input_shape(self) -> tuple[int, int, int]:
        c, h, w = self.x_train.shape[1:]
        return int(c), int(h), int(w)

    @property
    def num_classes(self) -> int:
        return len(self.class_names)


def make_splits(name: str, parts: dict, class_names, description: str) -> DataSplits:
    """DataSplits from {'train': (x, y), ...}; a missing split becomes empty."""
    some_x = next(x for x, _ in parts.values())
    empty = (some_x.new_zeros((0, *some_x.shape[1:])), torch.zeros(0, dtype=torch.int64))
    fields = {}
    for split in SPLITS:
        x, y = parts.get(split, empty)
        fields[f"x_{split}"], fields[f"y_{split}"] = x, y
    return DataSplits(name=name, class_names=tuple(class_names), description=description, **fields)
