"""Data set registry: `@register_dataset("name", ...)` on a builder, looked up by name."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .base import DataError, DataSplits
from .rng import generator


@dataclass(frozen=True)
class BuildContext:
    """What a builder gets besides its options."""

    name: str  # as requested, e.g. "image_folder:/data/x"
    seed: int
    cache_dir: Path
    path: str | None = None  # the PATH of "prefix:PATH" names
    description: str = ""  # the registered description, for the DataSplits

    def rng(self, *tags: object) -> np.random.Generator:
        return generator(self.seed, self.name.split(":", 1)[0], *tags)


@dataclass(frozen=True)
class DatasetEntry:
    name: str
    build: Callable[..., DataSplits]
    description: str
    size: str
    defaults: dict[str, Any]  # the builder's keyword options and their defaults
    seeded: bool  # whether the seed changes the base data (before views)
    check: Callable[[Path], str | None]  # cache_dir -> why not available here, or None
    fingerprint: Callable[..., Any] | None  # (ctx, **options) -> JSON-able state of the source files
    takes_path: bool
    path_options: tuple[str, ...] = ()  # options whose values are file system paths


@dataclass(frozen=True)
class DatasetInfo:
    name: str
    description: str
    size: str
    available: bool
    reason: str  # why not available ("" when available)


_REGISTRY: dict[str, DatasetEntry] = {}


def register_dataset(
    name: str,
    *,
    description: str,
    size: str,
    seeded: bool = False,
    check: Callable[[Path], str | None] | None = None,
    fingerprint: Callable[..., Any] | None = None,
    takes_path: bool = False,
    path_options: tuple[str, ...] = (),
):
    """Register `build(ctx, *, option=default, ...) -> DataSplits` under `name`.

    The builder's keyword-only parameters are the set's options. `takes_path` registers a
    family addressed as "name:PATH"; `path_options` names the options that hold paths (both are
    made absolute by `absolute_paths` for processes with another working directory).
    """

    def decorate(build: Callable[..., DataSplits]) -> Callable[..., DataSplits]:
        params = list(inspect.signature(build).parameters.values())[1:]
        if any(p.kind is not p.KEYWORD_ONLY or p.default is p.empty for p in params):
            raise TypeError(f"{name}: options must be keyword-only with defaults")
        if name in _REGISTRY:
            raise ValueError(f"data set {name!r} is registered twice")
        _REGISTRY[name] = DatasetEntry(
            name=name,
            build=build,
            description=description,
            size=size,
            defaults={p.name: p.default for p in params},
            seeded=seeded,
            check=check or (lambda cache_dir: None),
            fingerprint=fingerprint,
            takes_path=takes_path,
            path_options=tuple(path_options),
        )
        return build

    return decorate


def _display_name(entry: DatasetEntry) -> str:
    return f"{entry.name}:PATH" if entry.takes_path else entry.name


def lookup(name: str) -> tuple[DatasetEntry, str | None]:
    """The entry for `name` and, for "prefix:PATH" names, the PATH."""
    if not isinstance(name, str):
        raise DataError(f"data set name must be a string, got {name!r}")
    base, sep, path = name.partition(":")
    entry = _REGISTRY.get(base)
    if entry is None or entry.takes_path != bool(sep) or (sep and not path):
        known = ", ".join(sorted(_display_name(e) for e in _REGISTRY.values()))
        raise DataError(f"unknown data set {name!r}; known: {known}")
    return entry, (path or None)


def absolute_paths(name: str, options: dict[str, Any], base: str | Path | None = None):
    """(name, options) with the PATH of a "prefix:PATH" name and every path option made absolute
    against `base` (default: the working directory). A Ray trial runs in its own folder, where a
    relative path would name nothing."""
    entry, path = lookup(name)
    base = Path(base) if base is not None else Path.cwd()

    def absolute(p: str) -> str:
        return str(base / Path(p).expanduser())  # an absolute p stays as it is

    if path is not None:
        name = f"{entry.name}:{absolute(path)}"
    options = {
        k: absolute(v) if k in entry.path_options and isinstance(v, str) else v for k, v in options.items()
    }
    return name, options


def entries() -> list[DatasetEntry]:
    return [_REGISTRY[k] for k in sorted(_REGISTRY)]


def list_datasets(cache_dir: str | Path | None = None) -> list[DatasetInfo]:
    """Every registered set, with whether it can be loaded here and why not."""
    from .cache import resolve_cache_dir

    root = resolve_cache_dir(cache_dir)
    infos = []
    for entry in entries():
        reason = entry.check(root) or ""
        infos.append(DatasetInfo(_display_name(entry), entry.description, entry.size, not reason, reason))
    return infos
