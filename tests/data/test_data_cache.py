"""The Arrow cache: keys, hits, zero-copy reads, atomic writes, and recovery from bad files."""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
import torch
from data_helpers import digest, fake_fashion, files, splits_equal

from racecar_study.data import DataError, load_dataset, load_table, splits_from_table, splits_to_table
from racecar_study.data import cache as cache_mod
from racecar_study.data.request import resolve


def _only_file(folder: Path) -> Path:
    (path,) = folder.iterdir()
    return path


def _replace(path: Path, data: bytes) -> None:
    # Never rewrite a cache file in place: live tensors map it (see cache.py); replace it instead.
    tmp = path.with_suffix(".new")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def test_second_load_is_a_hit_without_rebuild(cache_dir, stats):
    first = load_dataset("peak", cache_dir=cache_dir)
    path = _only_file(cache_dir)
    mtime = path.stat().st_mtime_ns
    second = load_dataset("peak", cache_dir=cache_dir)
    assert (stats.builds, stats.hits) == (1, 1) and path.stat().st_mtime_ns == mtime
    assert splits_equal(first, second)
    assert splits_equal(second, load_dataset("peak", use_cache=False))
    assert path.name.startswith("peak-") and path.suffix == ".arrow"


def test_views_and_seeds_get_their_own_files(cache_dir):
    load_dataset("peak", cache_dir=cache_dir)
    load_dataset("peak", seed=1, cache_dir=cache_dir)
    load_dataset("peak", cache_dir=cache_dir, transform=[{"rotate": 10}])
    assert len(files(cache_dir)) == 3


def test_unseeded_views_share_one_file_across_seeds(fashion_root, cache_dir, stats):
    a = load_dataset("fashion_mnist", root=str(fashion_root), cache_dir=cache_dir)
    b = load_dataset("fashion_mnist", root=str(fashion_root), seed=7, cache_dir=cache_dir)
    assert stats.builds == 1 and splits_equal(a, b) and len(files(cache_dir)) == 1
    load_dataset("fashion_mnist", root=str(fashion_root), seed=7, n_per_class=1, cache_dir=cache_dir)
    load_dataset("fashion_mnist", root=str(fashion_root), seed=8, n_per_class=1, cache_dir=cache_dir)
    assert stats.builds == 3


def test_views_share_the_cached_base_set(fashion_root, cache_dir, stats):
    a = load_dataset("fashion_mnist", root=str(fashion_root), cache_dir=cache_dir, classes=[0, 1])
    assert len(files(cache_dir)) == 2 and stats.builds == 2, "the base set and the view"
    load_dataset("fashion_mnist", root=str(fashion_root), cache_dir=cache_dir, classes=[2, 3])
    assert (stats.builds, stats.hits) == (3, 1), "the base came from the cache"
    fresh = load_dataset("fashion_mnist", root=str(fashion_root), classes=[0, 1], use_cache=False)
    assert splits_equal(a, fresh)


def test_default_options_and_explicit_defaults_share_a_key(cache_dir):
    assert resolve("peak", 0, cache_dir, {}).path == resolve("peak", 0, cache_dir, {"n_per_class": 50}).path
    assert resolve("peak", 0, cache_dir, {}).path != resolve("peak", 0, cache_dir, {"n_per_class": 5}).path


def test_changed_source_files_invalidate_the_cache(tmp_path, cache_dir, stats):
    root = tmp_path / "f"
    fake_fashion(root, seed=0)
    a = load_dataset("fashion_mnist", root=str(root), cache_dir=cache_dir)
    fake_fashion(root, seed=1)
    b = load_dataset("fashion_mnist", root=str(root), cache_dir=cache_dir)
    assert stats.builds == 2 and not torch.equal(a.x_train, b.x_train)


def test_code_version_is_part_of_the_key(cache_dir, monkeypatch):
    before = resolve("peak", 0, cache_dir, {}).path
    monkeypatch.setattr("racecar_study.data.request.CODE_VERSION", cache_mod.CODE_VERSION + 1)
    assert resolve("peak", 0, cache_dir, {}).path != before


def test_cache_dir_from_argument_env_or_repo(tmp_path, monkeypatch):
    monkeypatch.setenv("RACECAR_CACHE_DIR", str(tmp_path / "env"))
    load_dataset("peak", n_per_class=1)
    assert len(files(tmp_path / "env")) == 1
    assert cache_mod.resolve_cache_dir(tmp_path / "arg") == tmp_path / "arg"
    monkeypatch.delenv("RACECAR_CACHE_DIR")
    repo = Path(__file__).resolve().parents[2]
    assert cache_mod.resolve_cache_dir() == repo / ".cache" / "data"


def test_tensors_are_zero_copy_views_of_the_mapped_file(cache_dir):
    load_dataset("peak", cache_dir=cache_dir)
    req = resolve("peak", 0, cache_dir, {})
    table, s = cache_mod.read(req.path, req.key)
    values = table.column("image").chunk(0).flatten().buffers()[1]
    assert s.x_train.data_ptr() == values.address
    assert s.x_test.data_ptr() == values.address + 4 * 784 * 100
    assert s.y_train.data_ptr() == table.column("label").chunk(0).buffers()[1].address


def test_writing_to_loaded_tensors_leaves_the_file_alone(cache_dir):
    s = load_dataset("peak", cache_dir=cache_dir)
    s.x_train.mul_(0).add_(7)
    s.y_train.zero_()
    again = load_dataset("peak", cache_dir=cache_dir)
    assert splits_equal(again, load_dataset("peak", use_cache=False))


def test_a_failed_write_leaves_no_file_and_the_data_still_loads(cache_dir, monkeypatch, caplog):
    load_dataset("peak", cache_dir=cache_dir)
    assert len(files(cache_dir)) == 1

    def broken(self, table):
        raise OSError("disk full")

    monkeypatch.setattr(pa.ipc.RecordBatchFileWriter, "write_table", broken)
    s = load_dataset("peak", seed=3, cache_dir=cache_dir)
    assert splits_equal(s, load_dataset("peak", seed=3, use_cache=False))
    assert len(files(cache_dir)) == 1, "no temp file, no partial file"
    assert "could not write the data cache (disk full)" in caplog.text


def test_nothing_is_written_on_error(cache_dir, tmp_path):
    bad = [
        ("nope", {}),
        ("peak", {"colour": 1}),
        ("peak", {"classes": [5]}),
        ("mnist5k", {"n_per_class": 10_000}),
        ("peak", {"n_per_class": -1}),
        ("fashion_mnist", {"root": str(tmp_path / "missing")}),
        ("mnist", {}),
        (f"image_folder:{tmp_path / 'missing'}", {}),
    ]
    for name, options in bad:
        with pytest.raises(DataError):
            load_dataset(name, cache_dir=cache_dir, **options)
        with pytest.raises(DataError):
            load_table(name, cache_dir=cache_dir, **options)
    assert not cache_dir.exists()


def _corruptions(path: Path, other: Path):
    data = path.read_bytes()
    middle = len(data) // 2
    yield "truncated", data[:middle]
    yield "empty", b""
    yield "bad magic", b"XXXXXX" + data[6:]
    yield "garbage in the data", data[:middle] + os.urandom(64) + data[middle + 64 :]
    yield "one flipped bit", data[:middle] + bytes([data[middle] ^ 1]) + data[middle + 1 :]
    yield "garbage file", os.urandom(len(data))
    yield "another view's file", other.read_bytes()
    sink = pa.BufferOutputStream()
    with pa.ipc.new_file(sink, pa.schema([("a", pa.int64())])) as w:
        w.write_table(pa.table({"a": [1, 2]}))
    yield "schema mismatch", sink.getvalue().to_pybytes()


def test_corrupt_files_are_detected_removed_and_rebuilt(cache_dir, tmp_path, stats):
    fresh = digest(load_dataset("peak", use_cache=False))
    load_dataset("peak", cache_dir=cache_dir)
    path = _only_file(cache_dir)
    other_dir = tmp_path / "other"
    load_dataset("peak", seed=1, cache_dir=other_dir)
    good = path.read_bytes()
    for case, data in _corruptions(path, _only_file(other_dir)):
        _replace(path, data)
        before = (stats.corrupt, stats.builds)
        s = load_dataset("peak", cache_dir=cache_dir)
        assert (stats.corrupt, stats.builds) == (before[0] + 1, before[1] + 1), case
        assert digest(s) == fresh, case
        assert path.read_bytes() == good, f"{case}: the rebuilt file is the original"


def test_table_round_trip_and_copy_rules(cache_dir):
    table = load_table("peak", cache_dir=cache_dir)
    assert table.num_rows == 110 and table.column_names == ["image", "label", "split"]
    assert table.column("split").chunk(0).dictionary.to_pylist() == ["train", "val", "test"]
    s = splits_from_table(table)
    assert splits_equal(s, load_dataset("peak", cache_dir=cache_dir))
    s.x_train.add_(1)  # copy=True (the default): tensors of its own
    shared = splits_from_table(table, copy=False)
    assert shared.x_train.data_ptr() == table.column("image").chunk(0).flatten().buffers()[1].address
    assert not torch.equal(s.x_train, shared.x_train)
    assert splits_equal(splits_from_table(splits_to_table(shared)), shared)
    # what Ray does to a table: serialise it (pickle 5 / Arrow IPC) into other memory
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as w:
        w.write_table(table)
    assert splits_equal(splits_from_table(pa.ipc.open_stream(sink.getvalue()).read_all()), shared)
    assert splits_equal(splits_from_table(pickle.loads(pickle.dumps(table, protocol=5))), shared)


def test_tables_from_elsewhere_are_checked():
    with pytest.raises(DataError, match="no racecar_study metadata"):
        splits_from_table(pa.table({"a": [1]}))
    table = load_table("peak", use_cache=False, n_per_class=2)
    with pytest.raises(DataError, match="disagree with its metadata"):
        splits_from_table(table.slice(0, 3))
    chunked = pa.concat_tables([table.slice(0, 2), table.slice(2)])
    assert splits_equal(splits_from_table(chunked), splits_from_table(table))
    reordered = table.take(np.array([4, 0, 1, 2, 3, 5, 6, 7, 8, 9, 10, 11, 12, 13]))
    with pytest.raises(DataError, match="not ordered train, val, test"):
        splits_from_table(reordered)


def test_load_table_without_cache_writes_nothing(cache_dir):
    table = load_table("peak", cache_dir=cache_dir, use_cache=False)
    assert table.num_rows == 110 and not cache_dir.exists()
