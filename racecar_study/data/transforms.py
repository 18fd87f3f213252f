"""Image transforms of the `transform` view option: `[{rotate: 30}, {thicken: 1}, ...]`.

A transform is registered as a factory that validates its argument and returns a `Step`, so a
bad argument fails before anything is built.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from . import resample
from .args import count_arg, number_arg, size_arg
from .base import DataError


@dataclass(frozen=True)
class StepContext:
    rng: np.random.Generator  # this step's own stream for this split


@dataclass(frozen=True)
class Step:
    apply: Callable[[torch.Tensor, StepContext], torch.Tensor]
    random: bool = False  # draws from ctx.rng, so the seed matters
    only_on: str | None = None  # the one data set it applies to
    first: bool = False  # must be the first step (needs the images as built)


_TRANSFORMS: dict[str, Callable[[object], Step]] = {}


def register_transform(name: str):
    """Register `factory(argument) -> Step` as transform `name`; it raises DataError for a bad argument."""

    def decorate(factory: Callable[[object], Step]) -> Callable[[object], Step]:
        if name in _TRANSFORMS:
            raise ValueError(f"transform {name!r} is registered twice")
        _TRANSFORMS[name] = factory
        return factory

    return decorate


def transform_names() -> list[str]:
    return sorted(_TRANSFORMS)


def parse_transforms(spec, dataset: str) -> list[tuple[str, object, Step]]:
    """Validate the transform list for `dataset` into (name, argument, step) triples."""
    if not isinstance(spec, list | tuple):
        raise DataError(
            f"option 'transform' must be a list of one-key mappings like {{rotate: 30}}, not {spec!r}"
        )
    steps = []
    for i, item in enumerate(spec):
        if not isinstance(item, dict) or len(item) != 1:
            raise DataError(f"transform[{i}] must be a one-key mapping like {{rotate: 30}}, got {item!r}")
        ((name, arg),) = item.items()
        if name not in _TRANSFORMS:
            raise DataError(f"unknown transform {name!r}; known: {', '.join(transform_names())}")
        step = _TRANSFORMS[name](arg)
        if step.only_on not in (None, dataset):
            raise DataError(f"transform {name!r} works on the {step.only_on} data set only, not {dataset!r}")
        if step.first and i != 0:
            raise DataError(f"transform {name!r} must come first in the list: it needs the images as built")
        steps.append((name, arg, step))
    return steps


def _flag(name: str, value) -> None:
    if value is not True:
        raise DataError(f"transform {name!r} takes `true`, got {value!r}")


@register_transform("rotate")
def _rotate(arg) -> Step:
    """{rotate: a}: every image a degrees counter-clockwise; {rotate: [lo, hi]}: a uniform draw each."""
    if isinstance(arg, list | tuple):
        if len(arg) != 2:
            raise DataError(f"transform 'rotate' range must be [lo, hi], got {arg!r}")
        lo, hi = (number_arg("transform 'rotate'", a) for a in arg)
        if lo > hi:
            raise DataError(f"transform 'rotate' range must have lo <= hi, got {arg!r}")
    else:
        lo = hi = number_arg("transform 'rotate'", arg)

    def apply(x, ctx):
        angles = ctx.rng.uniform(lo, hi, size=len(x)).tolist() if lo != hi else [lo] * len(x)
        return resample.rotate(x, angles)

    return Step(apply, random=lo != hi)


@register_transform("thicken")
def _thicken(arg) -> Step:
    """Grey dilation with a (2r+1)^2 square: bright strokes on a dark ground get thicker."""
    r = count_arg("transform 'thicken' (radius in pixels)", arg)
    return Step(lambda x, ctx: F.max_pool2d(x, 2 * r + 1, stride=1, padding=r) if len(x) else x)


@register_transform("thin")
def _thin(arg) -> Step:
    """Grey erosion with a (2r+1)^2 square: bright strokes get thinner."""
    r = count_arg("transform 'thin' (radius in pixels)", arg)
    return Step(lambda x, ctx: -F.max_pool2d(-x, 2 * r + 1, stride=1, padding=r) if len(x) else x)


@register_transform("resize")
def _resize(arg) -> Step:
    size = size_arg("transform 'resize'", arg)
    return Step(lambda x, ctx: resample.resize(x, size))


@register_transform("to_rgb")
def _to_rgb(arg) -> Step:
    _flag("to_rgb", arg)
    return Step(lambda x, ctx: x.repeat(1, 3, 1, 1) if x.shape[1] == 1 else x)


@register_transform("to_grey")
def _to_grey(arg) -> Step:
    """ITU-R 601 luma, as PIL's convert('L')."""
    _flag("to_grey", arg)

    def apply(x, ctx):
        if x.shape[1] == 1:
            return x
        if x.shape[1] != 3:
            raise DataError(f"transform 'to_grey' needs 1 or 3 channels, got {x.shape[1]}")
        x64 = x.to(torch.float64)
        return (x64[:, 0:1] * 0.299 + x64[:, 1:2] * 0.587 + x64[:, 2:3] * 0.114).to(torch.float32)

    return Step(apply)
