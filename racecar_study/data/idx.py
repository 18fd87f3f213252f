"""Reader for IDX files (the MNIST family's format), plain or gzipped, with numpy only."""

from __future__ import annotations

import zlib
from pathlib import Path

import numpy as np

from .base import DataError

_DTYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def read_idx(path: str | Path) -> np.ndarray:
    """The array stored in an IDX file; `.gz` files are decompressed in memory."""
    path = Path(path)
    raw = path.read_bytes()
    if path.suffix == ".gz":
        try:
            raw = zlib.decompress(raw, wbits=16 + zlib.MAX_WBITS)  # one call: faster than gzip.open
        except zlib.error as e:
            raise DataError(f"{path}: not a valid gzip file ({e})") from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _DTYPES:
        raise DataError(f"{path}: not an IDX file (bad magic {raw[:4].hex()})")
    ndim = raw[3]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DataError(f"{path}: IDX header is truncated")
    dims = tuple(int(d) for d in np.frombuffer(raw, dtype=">u4", count=ndim, offset=4))
    dtype = np.dtype(_DTYPES[raw[2]])
    expected = header + int(np.prod(dims, dtype=np.int64)) * dtype.itemsize
    if len(raw) != expected:
        raise DataError(f"{path}: IDX data has {len(raw)} bytes, its header says {expected}")
    return np.frombuffer(raw, dtype=dtype, offset=header).reshape(dims)


def find_idx(root: Path, stem: str) -> Path | None:
    """root/stem.gz or root/stem, whichever exists."""
    for candidate in (root / f"{stem}.gz", root / stem):
        if candidate.is_file():
            return candidate
    return None
