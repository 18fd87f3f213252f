"""The Arrow IPC file cache: one file per materialised view, written atomically, read by mmap.

Files are replaced, never modified in place. A file that fails any check (magic, footer,
schema, key, checksum) is removed and rebuilt by the caller.
"""

from __future__ import annotations

import hashlib
import json
import logging
import mmap
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa

from .base import DataError, DataSplits
from .storage import checksum, splits_from_arrays, table_arrays

CODE_VERSION = 3  # bump whenever a builder, view or transform would produce different tensors

log = logging.getLogger(__name__)
_MAGIC = b"ARROW1"


@dataclass
class CacheStats:
    """Counters for this process (tests and benchmarks read them)."""

    hits: int = 0  # files read, base sets of views included
    builds: int = 0  # base sets and views built
    corrupt: int = 0  # files found bad and removed


STATS = CacheStats()


def resolve_cache_dir(cache_dir: str | os.PathLike | None = None) -> Path:
    """`cache_dir`, else $RACECAR_CACHE_DIR, else <repo root>/.cache/data."""
    if cache_dir is None:
        cache_dir = (
            os.environ.get("RACECAR_CACHE_DIR") or Path(__file__).resolve().parents[2] / ".cache" / "data"
        )
    return Path(cache_dir).expanduser().absolute()


def key_digest(key: dict) -> str:
    return hashlib.sha256(json.dumps(key, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def _writable_view(a: np.ndarray, mm: mmap.mmap, base: int) -> np.ndarray:
    """The same bytes as read-only `a` (which lies inside `mm`), through the writable private mapping."""
    offset = a.__array_interface__["data"][0] - base
    if len(a) and not 0 <= offset <= len(mm) - a.nbytes:
        raise DataError("array lies outside the mapped file")
    return np.frombuffer(mm, dtype=a.dtype, count=len(a), offset=offset if len(a) else 0)


def _read(path: Path, key: dict, verify: bool) -> tuple[pa.Table, DataSplits]:
    with open(path, "rb") as f:
        # Private copy-on-write mapping: zero-copy, yet a write through a tensor touches neither
        # the file nor other processes (a read-only mapping would crash the writer).
        mm = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_COPY)
    if mm[: len(_MAGIC)] != _MAGIC or mm[-len(_MAGIC) :] != _MAGIC:
        raise DataError("bad magic: not a complete Arrow IPC file")
    buf = pa.py_buffer(mm)
    reader = pa.ipc.open_file(buf)
    if reader.num_record_batches != 1:
        raise DataError(f"{reader.num_record_batches} record batches, expected 1")
    table = reader.read_all()
    meta, images, labels, codes = table_arrays(table)
    if meta.get("key") != key:
        raise DataError("key in the file does not match its name")
    if verify and meta.get("checksum") != checksum(meta, images, labels, codes):
        raise DataError("checksum mismatch")
    images, labels = (_writable_view(a, mm, buf.address) for a in (images, labels))
    return table, splits_from_arrays(meta, images, labels, codes)


def read(path: Path, key: dict, *, verify: bool = True) -> tuple[pa.Table, DataSplits] | None:
    """(table, splits) from a valid cache file; None when it is missing or was bad (then removed).

    verify=False skips only the checksum pass (for a file this process has just written).
    """
    try:
        return _read(path, key, verify)
    except FileNotFoundError:
        return None
    except (DataError, pa.ArrowException, ValueError, OSError) as e:
        log.warning("cache file %s is corrupt (%s); rebuilding", path, e)
        STATS.corrupt += 1
        try:
            path.unlink()
        except OSError:
            pass  # gone already, or not ours to remove: write() replaces it anyway
        return None


def write(path: Path, table: pa.Table) -> None:
    """Write `table` to `path` atomically: a temp file in the same folder, then os.replace."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        with pa.OSFile(tmp, "wb") as sink, pa.ipc.new_file(sink, table.schema) as writer:
            writer.write_table(table)
        os.chmod(tmp, 0o644)  # mkstemp's 0600 would hide a shared cache from other users
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
