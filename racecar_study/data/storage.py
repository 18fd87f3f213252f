"""DataSplits <-> one Arrow table, without per-row Python.

Layout: one row per image, train rows then val then test.
    image  fixed_size_list<float32>[C*H*W]   (one flat float32 buffer: zero-copy to numpy/torch)
    label  int64
    split  dictionary<int8, string>           (train / val / test)
Schema metadata b"racecar_study" holds JSON: format, name, description, class_names, shape,
counts, the cache key and a checksum of all of the above.
"""

from __future__ import annotations

import hashlib
import json
import warnings

import numpy as np
import pyarrow as pa
import torch

from .base import SPLITS, DataError, DataSplits, make_splits

FORMAT = 1
META_KEY = b"racecar_study"
_BLOCK_WORDS = 16384  # 128 KiB blocks in the checksum


def _schema(width: int, meta: dict) -> pa.Schema:
    return pa.schema(
        [
            ("image", pa.list_(pa.float32(), width)),
            ("label", pa.int64()),
            ("split", pa.dictionary(pa.int8(), pa.string())),
        ],
        metadata={META_KEY: json.dumps(meta, sort_keys=True).encode()},
    )


def _array(a: np.ndarray, type_: pa.DataType) -> pa.Array:
    # from_buffers, not pa.array: pa.array and to_numpy import pandas (0.6 s) on first use.
    return pa.Array.from_buffers(type_, len(a), [None, pa.py_buffer(np.ascontiguousarray(a))])


def _strings(values: tuple[str, ...]) -> pa.Array:
    data = [v.encode() for v in values]
    offsets = np.cumsum([0] + [len(b) for b in data], dtype=np.int32)
    return pa.StringArray.from_buffers(len(data), pa.py_buffer(offsets), pa.py_buffer(b"".join(data)))


def _numpy(arr: pa.Array, dtype) -> np.ndarray:
    """Zero-copy, read-only numpy view of a primitive Arrow array."""
    if arr.null_count:
        raise DataError(f"table holds {arr.null_count} nulls")
    dtype = np.dtype(dtype)
    return np.frombuffer(arr.buffers()[1], dtype=dtype, count=len(arr), offset=arr.offset * dtype.itemsize)


def checksum(meta: dict, *arrays: np.ndarray) -> str:
    """sha256 over the metadata (less its checksum) and 64-bit sums of 128 KiB blocks of each array.

    Not a cryptographic digest of the data: it catches truncation, garbage and bit flips at
    memory speed (a full sha256 of a 200 MB set costs more than loading it).
    """
    h = hashlib.sha256(
        json.dumps({k: v for k, v in meta.items() if k != "checksum"}, sort_keys=True).encode()
    )
    for a in arrays:
        raw = np.ascontiguousarray(a).reshape(-1).view(np.uint8)
        n_words = len(raw) // 8
        words = raw[: n_words * 8].view(np.uint64)
        n_blocks = n_words // _BLOCK_WORDS
        h.update(len(raw).to_bytes(8, "little"))
        h.update(
            words[: n_blocks * _BLOCK_WORDS]
            .reshape(n_blocks, _BLOCK_WORDS)
            .sum(axis=1, dtype=np.uint64)
            .tobytes()
        )
        h.update(words[n_blocks * _BLOCK_WORDS :].tobytes())
        h.update(raw[n_words * 8 :].tobytes())
    return h.hexdigest()


def splits_to_table(s: DataSplits, key: dict | None = None) -> pa.Table:
    """The Arrow table of `s` (one record batch); `key` is recorded for cache validation."""
    xs = [s.split(split)[0] for split in SPLITS]
    counts = {split: len(x) for split, x in zip(SPLITS, xs)}
    images = torch.cat(xs).contiguous().numpy().reshape(-1)
    labels = torch.cat([s.split(split)[1] for split in SPLITS]).contiguous().numpy()
    codes = np.repeat(np.arange(3, dtype=np.int8), [counts[split] for split in SPLITS])
    meta = {
        "format": FORMAT,
        "name": s.name,
        "description": s.description,
        "class_names": list(s.class_names),
        "shape": list(s.input_shape),
        "counts": counts,
        "key": key,
    }
    meta["checksum"] = checksum(meta, images, labels, codes)
    width = int(np.prod(s.input_shape))
    columns = [
        pa.FixedSizeListArray.from_arrays(_array(images, pa.float32()), width),
        _array(labels, pa.int64()),
        pa.DictionaryArray.from_arrays(_array(codes, pa.int8()), _strings(SPLITS)),
    ]
    return pa.Table.from_arrays(columns, schema=_schema(width, meta))


def table_meta(table: pa.Table) -> dict:
    raw = (table.schema.metadata or {}).get(META_KEY)
    if raw is None:
        raise DataError("table has no racecar_study metadata: not made by racecar_study.data")
    try:
        meta = json.loads(raw)
    except ValueError as e:
        raise DataError(f"table metadata is not valid JSON: {e}") from None
    if meta.get("format") != FORMAT:
        raise DataError(f"table format {meta.get('format')!r}, expected {FORMAT}")
    return meta


def table_arrays(table: pa.Table) -> tuple[dict, np.ndarray, np.ndarray, np.ndarray]:
    """(meta, images (N*C*H*W,), labels, split codes) as read-only zero-copy numpy views."""
    meta = table_meta(table)
    try:
        width = int(np.prod(meta["shape"]))
        expected = _schema(width, meta)
    except (KeyError, TypeError, ValueError) as e:
        raise DataError(f"table metadata lacks or garbles {e}") from None
    if not table.schema.equals(expected, check_metadata=False):
        raise DataError(f"table schema {table.schema.types} does not match the expected {expected.types}")
    if any(table.column(i).num_chunks != 1 for i in range(3)):
        table = table.combine_chunks()  # copies; tables we write have one batch
    image, label, split = (table.column(i).chunk(0) for i in range(3))
    if list(split.dictionary.to_pylist()) != list(SPLITS):
        raise DataError(f"split dictionary {split.dictionary.to_pylist()} is not {list(SPLITS)}")
    if image.null_count:
        raise DataError(f"table holds {image.null_count} null images")
    images = _numpy(image.flatten(), np.float32)
    labels = _numpy(label, np.int64)
    codes = _numpy(split.indices, np.int8)
    return meta, images, labels, codes


def splits_from_arrays(meta: dict, images: np.ndarray, labels: np.ndarray, codes: np.ndarray) -> DataSplits:
    """DataSplits whose tensors share memory with the given arrays (torch.from_numpy)."""
    if len(codes) and (codes.min() < 0 or codes.max() >= len(SPLITS)):
        raise DataError("table split codes lie outside train, val, test")
    if len(codes) > 1 and np.any(codes[1:] < codes[:-1]):
        raise DataError("table rows are not ordered train, val, test")
    counts = np.bincount(codes, minlength=3)
    if len(counts) != 3 or dict(zip(SPLITS, counts.tolist())) != meta["counts"]:
        raise DataError(f"table split counts {counts.tolist()} disagree with its metadata {meta['counts']}")
    with warnings.catch_warnings():
        # Read-only arrays come only from callers that asked for zero copy (copy=False) and
        # promise not to write; torch cannot mark a tensor read-only, so its warning says nothing new.
        warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
        x_all = torch.from_numpy(images).view(len(labels), *meta["shape"])
        y_all = torch.from_numpy(labels)
    edges = np.concatenate([[0], np.cumsum(counts)]).tolist()
    parts = {split: (x_all[a:b], y_all[a:b]) for split, a, b in zip(SPLITS, edges, edges[1:])}
    return make_splits(meta["name"], parts, meta["class_names"], meta["description"])


def splits_from_table(table: pa.Table, *, copy: bool = True) -> DataSplits:
    """DataSplits from a table of `splits_to_table`/`load_table` (e.g. one shipped through Ray).

    copy=True gives tensors of their own. copy=False shares the table's memory (with Ray: one
    copy per node in its object store, not one per trial) and the tensors must then never be
    written to: that memory is read-only, and a write crashes the process.
    """
    meta, images, labels, codes = table_arrays(table)
    if copy:
        images, labels = images.copy(), labels.copy()
    return splits_from_arrays(meta, images, labels, codes)
