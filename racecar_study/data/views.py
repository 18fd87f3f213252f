"""Task views: options that any data set takes, applied in a fixed order.

classes -> n_per_class -> val_fraction -> transform. Each uses its own seeded stream.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import numpy as np
import torch

from .args import count_arg, fraction_arg
from .base import SPLITS, DataError, DataSplits, make_splits
from .rng import generator
from .split import per_class, stratified_split
from .transforms import Step, StepContext, parse_transforms

VIEW_OPTIONS = ("classes", "n_per_class", "val_fraction", "transform")


@dataclass(frozen=True)
class ViewSpec:
    classes: tuple | None = None
    n_per_class: int | None = None
    val_fraction: float | None = None
    transforms: list[tuple[str, object, Step]] = field(default_factory=list)

    @property
    def identity(self) -> bool:
        return self.classes is None and not self.n_per_class and not self.val_fraction and not self.transforms

    @property
    def seeded(self) -> bool:
        return bool(self.n_per_class or self.val_fraction or any(s.random for _, _, s in self.transforms))

    def summary(self) -> str:
        parts = [f"classes={list(self.classes)}"] if self.classes is not None else []
        parts += [f"n_per_class={self.n_per_class}"] if self.n_per_class else []
        parts += [f"val_fraction={self.val_fraction}"] if self.val_fraction else []
        if self.transforms:
            parts.append("transform=" + json.dumps([{n: a} for n, a, _ in self.transforms]))
        return "; ".join(parts)


def parse_view(options: dict, dataset: str) -> ViewSpec:
    """Validate the view options (already separated from the data set's own)."""
    classes = options.get("classes")
    if classes is not None:
        if not isinstance(classes, list | tuple) or not classes:
            raise DataError(
                f"option 'classes' must be a non-empty list of class indices or names, not {classes!r}"
            )
        for c in classes:
            if isinstance(c, bool) or not isinstance(c, int | str):
                raise DataError(f"option 'classes' holds {c!r}; use class indices (int) or names (str)")
        if len(set(classes)) != len(classes):
            raise DataError(f"option 'classes' lists a class twice: {list(classes)}")
        classes = tuple(classes)
    n = options.get("n_per_class")
    if n is not None:
        n = count_arg("option 'n_per_class'", n)
    frac = options.get("val_fraction")
    if frac is not None:
        frac = fraction_arg("option 'val_fraction'", frac)
    spec = options.get("transform")
    steps = parse_transforms(spec, dataset) if spec is not None else []
    return ViewSpec(classes=classes, n_per_class=n, val_fraction=frac, transforms=steps)


def _select_classes(s: DataSplits, wanted: tuple) -> tuple[dict, list[str]]:
    index = []
    for c in wanted:
        if isinstance(c, str):
            if c not in s.class_names:
                raise DataError(f"class {c!r} not in {s.name}; classes: {', '.join(s.class_names)}")
            index.append(s.class_names.index(c))
        elif not 0 <= c < s.num_classes:
            raise DataError(f"class index {c} out of range: {s.name} has classes 0..{s.num_classes - 1}")
        else:
            index.append(c)
    relabel = torch.full((s.num_classes,), -1, dtype=torch.int64)
    relabel[index] = torch.arange(len(index))
    parts = {}
    for split in SPLITS:
        x, y = s.split(split)
        new = relabel[y]
        keep = torch.nonzero(new >= 0).flatten()
        parts[split] = (x[keep], new[keep])
    return parts, [s.class_names[i] for i in index]


def _few_shot(x, y, n: int, class_names, rng) -> tuple:
    counts = np.bincount(y.numpy(), minlength=len(class_names))
    short = [i for i, k in enumerate(counts) if k < n]
    if short:
        have = ", ".join(f"{class_names[i]!r}: {counts[i]}" for i in short)
        raise DataError(f"n_per_class={n} but the train split has fewer images in class {have}")
    keep = torch.from_numpy(per_class(y.numpy(), n, rng))
    return x[keep], y[keep]


def apply_view(s: DataSplits, view: ViewSpec, seed: int) -> DataSplits:
    """The view of `s` that `view` describes, drawing from streams of `seed`."""
    parts = {split: s.split(split) for split in SPLITS}
    class_names = list(s.class_names)
    if view.classes is not None:
        parts, class_names = _select_classes(s, view.classes)
    if view.n_per_class:
        rng = generator(seed, "view", "n_per_class")
        parts["train"] = _few_shot(*parts["train"], view.n_per_class, class_names, rng)
    if view.val_fraction:
        if len(parts["val"][0]):
            raise DataError(f"{s.name} already has a validation split; drop option 'val_fraction'")
        x, y = parts["train"]
        keep, take = stratified_split(y.numpy(), view.val_fraction, generator(seed, "view", "val_fraction"))
        keep, take = torch.from_numpy(keep), torch.from_numpy(take)
        parts["train"], parts["val"] = (x[keep], y[keep]), (x[take], y[take])
    for position, (name, _, step) in enumerate(view.transforms):
        for split in SPLITS:
            x, y = parts[split]
            ctx = StepContext(rng=generator(seed, "transform", position, name, split))
            parts[split] = (step.apply(x, ctx).contiguous(), y)
    description = s.description + (f" View: {view.summary()}." if view.summary() else "")
    return make_splits(s.name, parts, class_names, description)
