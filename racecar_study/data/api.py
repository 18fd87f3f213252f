"""load_dataset / load_table: resolve the request, then read the cache or build and write it."""

from __future__ import annotations

import os

import pyarrow as pa

from . import cache
from .base import DataSplits
from .request import Request, resolve
from .storage import splits_to_table
from .views import apply_view


def _build_base(req: Request) -> DataSplits:
    cache.STATS.builds += 1
    return req.entry.build(req.ctx, **req.dataset_options)


def _build(req: Request, pending: list | None = None) -> DataSplits:
    """The view `req` asks for, built on its base set.

    With `pending` (a cache in use) the base comes from its own cache file, or is built and
    queued in `pending` to be written once the view has succeeded.
    """
    if req.view.identity:
        return _build_base(req)
    base_req = req.base()
    hit = cache.read(base_req.path, base_req.key) if pending is not None else None
    if hit is not None:
        cache.STATS.hits += 1
        base = hit[1]
    else:
        base = _build_base(base_req)
        if pending is not None:
            # Many views share one base (a study's trials); parsing it again would dominate.
            pending.append((base_req.path, splits_to_table(base, base_req.key)))
    cache.STATS.builds += 1
    return apply_view(base, req.view, req.ctx.seed)


def _cached(req: Request) -> tuple[pa.Table, DataSplits]:
    hit = cache.read(req.path, req.key)
    if hit is not None:
        cache.STATS.hits += 1
        return hit
    pending: list = []
    built = _build(req, pending)  # raises before anything is written
    table = splits_to_table(built, req.key)
    try:
        for path, base_table in pending:
            cache.write(path, base_table)
        cache.write(req.path, table)
    except OSError as e:  # a full disk or a read-only shared cache should not stop a study
        cache.log.warning("could not write the data cache (%s); using the data uncached", e)
        return table, built
    # Served from the file, so a fresh build and a hit behave alike (mmap, page cache shared
    # between processes); only a concurrent remover makes this read come back empty.
    return cache.read(req.path, req.key, verify=False) or (table, built)


def load_dataset(
    name: str, *, seed: int = 0, cache_dir: str | os.PathLike | None = None, use_cache: bool = True, **options
) -> DataSplits:
    """The view of data set `name` that `options` describe, from the Arrow cache when possible.

    Same name, options and seed give bitwise-identical tensors. Raises DataError for a bad name
    or option, or missing source files; then nothing is written.
    """
    req = resolve(name, seed, cache_dir, options)
    return _cached(req)[1] if use_cache else _build(req)


def load_table(
    name: str, *, seed: int = 0, cache_dir: str | os.PathLike | None = None, use_cache: bool = True, **options
) -> pa.Table:
    """The cached Arrow table of a view (see storage.py for its layout); cheap to ship through Ray."""
    req = resolve(name, seed, cache_dir, options)
    return _cached(req)[0] if use_cache else splits_to_table(_build(req), req.key)
