"""A load request, validated in full before anything is built: name, seed, options, cache key."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from .base import DataError
from .cache import CODE_VERSION, key_digest, resolve_cache_dir
from .registry import BuildContext, DatasetEntry, lookup
from .views import VIEW_OPTIONS, ViewSpec, parse_view


@dataclass(frozen=True)
class Request:
    entry: DatasetEntry
    ctx: BuildContext
    dataset_options: dict  # the builder's options, defaults filled in
    view: ViewSpec
    key: dict

    def base(self) -> Request:
        """The request for the data set itself, without the view (its own cache file). Built from
        this one's parts: resolving again would repeat the source fingerprint's file I/O."""
        key = {
            **self.key,
            "options": {"dataset": self.key["options"]["dataset"], "view": {}},
            "seed": self.ctx.seed if self.entry.seeded else None,
        }
        return Request(self.entry, self.ctx, self.dataset_options, parse_view({}, self.entry.name), key)

    @property
    def path(self) -> Path:
        """The cache file of this view."""
        return self.ctx.cache_dir / f"{self.entry.name}-{key_digest(self.key)[:32]}.arrow"


def _canonical(name: str, options: dict) -> dict:
    """Options as plain JSON values (tuples become lists), or a DataError naming the odd one."""
    out = {}
    for key, value in options.items():
        try:
            out[key] = json.loads(json.dumps(value, allow_nan=False))
        except (TypeError, ValueError):
            raise DataError(
                f"option {key!r} of {name!r} is not a plain, finite YAML/JSON value: {value!r}"
            ) from None
    return out


def _split(name: str, options: dict) -> tuple[DatasetEntry, str | None, dict, dict, ViewSpec]:
    """(entry, PATH, builder options with defaults, plain view options, parsed view)."""
    entry, path = lookup(name)
    options = _canonical(name, options)
    # A set's own option wins over a view option of the same name (peak's n_per_class).
    view_keys = [k for k in VIEW_OPTIONS if k not in entry.defaults]
    unknown = sorted(set(options) - set(entry.defaults) - set(view_keys))
    if unknown:
        known = ", ".join(sorted(set(entry.defaults) | set(view_keys)))
        raise DataError(f"unknown option {unknown[0]!r} for data set {name!r}; known: {known}")
    dataset_options = {**entry.defaults, **{k: v for k, v in options.items() if k in entry.defaults}}
    view_options = {k: v for k, v in options.items() if k in view_keys}
    return entry, path, dataset_options, view_options, parse_view(view_options, entry.name)


def check_options(name: str, options: dict) -> None:
    """Raise DataError for an unknown name or option, or a bad view option; reads no files.

    A data set's own option values are checked when it is built.
    """
    _split(name, options)


def resolve(name: str, seed: int, cache_dir, options: dict) -> Request:
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise DataError(f"seed must be a non-negative int, got {seed!r}")
    entry, path, dataset_options, view_options, view = _split(name, options)
    ctx = BuildContext(name, seed, resolve_cache_dir(cache_dir), path, entry.description)
    key = {
        "dataset": name,
        "options": {"dataset": dataset_options, "view": view_options},
        # Sets and views that draw nothing at random share one file across seeds.
        "seed": seed if entry.seeded or view.seeded else None,
        "source": entry.fingerprint(ctx, **dataset_options) if entry.fingerprint else None,
        "code_version": CODE_VERSION,
    }
    key = json.loads(json.dumps(key))  # as the file will hold it: tuples become lists
    return Request(entry=entry, ctx=ctx, dataset_options=dataset_options, view=view, key=key)
