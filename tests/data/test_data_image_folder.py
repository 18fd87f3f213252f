"""image_folder:PATH, from PNG/JPEG folders written with PIL."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from data_helpers import files, write_images
from PIL import Image

from racecar_study.data import DataError, absolute_paths, load_dataset


def test_grey_pngs_by_class_folder(tmp_path, cache_dir):
    write_images(tmp_path / "d", {"cat": 5, "ant": 10})
    s = load_dataset(f"image_folder:{tmp_path / 'd'}", cache_dir=cache_dir)
    assert s.class_names == ("ant", "cat") and s.input_shape == (1, 8, 8)
    assert s.y_train.bincount().tolist() == [8, 4] and s.y_test.bincount().tolist() == [2, 1]
    first = np.asarray(Image.open(tmp_path / "d" / "ant" / "0.png"), dtype=np.float32) / 255
    every = torch.cat([s.x_train, s.x_test])
    assert any(torch.equal(x[0], torch.from_numpy(first)) for x in every)


def test_rgb_size_and_grey_options(tmp_path):
    write_images(tmp_path / "d", {"a": 2, "b": 2}, size=(10, 6), mode="RGB")
    name = f"image_folder:{tmp_path / 'd'}"
    assert load_dataset(name, use_cache=False).input_shape == (3, 6, 10)
    assert load_dataset(name, grey=True, use_cache=False).input_shape == (1, 6, 10)
    s = load_dataset(name, size=[4, 5], use_cache=False)
    assert s.input_shape == (3, 4, 5) and 0 <= float(s.x_train.min()) and float(s.x_train.max()) <= 1
    assert load_dataset(name, size=7, test_fraction=0, use_cache=False).x_train.shape == (4, 3, 7, 7)


def test_mixed_sizes_need_the_size_option(tmp_path):
    write_images(tmp_path / "d", {"a": 2})
    write_images(tmp_path / "d", {"b": 2}, size=(9, 9), seed=1)
    with pytest.raises(DataError, match="images differ in size .* pass option size"):
        load_dataset(f"image_folder:{tmp_path / 'd'}", use_cache=False)
    assert load_dataset(f"image_folder:{tmp_path / 'd'}", size=8, use_cache=False).input_shape == (1, 8, 8)


def test_jpeg_and_mixed_grey_rgb_become_rgb(tmp_path):
    write_images(tmp_path / "d", {"a": 2}, ext=".jpg")
    write_images(tmp_path / "d", {"b": 2}, mode="RGB", ext=".JPEG", seed=2)
    s = load_dataset(f"image_folder:{tmp_path / 'd'}", use_cache=False)
    assert s.input_shape == (3, 8, 8) and s.num_classes == 2


@pytest.mark.parametrize(
    "layout, message",
    [(None, "is not a folder"), ({}, "has no class sub-folders"), ({"a": 0}, "holds no .png")],
)
def test_bad_folders(tmp_path, cache_dir, layout, message):
    root = tmp_path / "d"
    if layout is not None:
        root.mkdir()
        for name in layout:
            (root / name).mkdir()
    with pytest.raises(DataError, match=message):
        load_dataset(f"image_folder:{root}", cache_dir=cache_dir)
    assert files(cache_dir) == []


def test_editing_the_folder_invalidates_the_cache(tmp_path, cache_dir, stats):
    write_images(tmp_path / "d", {"a": 3, "b": 3})
    name = f"image_folder:{tmp_path / 'd'}"
    load_dataset(name, cache_dir=cache_dir)
    load_dataset(name, cache_dir=cache_dir)
    assert stats.builds == 1
    write_images(tmp_path / "d", {"c": 2}, seed=3)
    assert load_dataset(name, cache_dir=cache_dir).num_classes == 3 and stats.builds == 2


def test_bad_options(tmp_path):
    write_images(tmp_path / "d", {"a": 2})
    for options, message in (({"size": [0, 3]}, "positive int"), ({"grey": 1}, "true or false")):
        with pytest.raises(DataError, match=message):
            load_dataset(f"image_folder:{tmp_path / 'd'}", use_cache=False, **options)
    with pytest.raises(DataError, match=r"test_fraction' must be a number in \[0, 1\)"):
        load_dataset(f"image_folder:{tmp_path / 'd'}", test_fraction=1, use_cache=False)
    assert torch.is_tensor(load_dataset(f"image_folder:{tmp_path / 'd'}", use_cache=False).x_train)


def test_absolute_paths_takes_relative_paths_from_the_working_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    name, options = absolute_paths("image_folder:imgs", {"size": 8})
    assert name == f"image_folder:{tmp_path / 'imgs'}" and options == {"size": 8}
    assert absolute_paths("image_folder:/data/x", {}) == ("image_folder:/data/x", {})
    assert absolute_paths("cifar10", {"root": "tv", "download": False}) == (
        "cifar10",
        {"root": str(tmp_path / "tv"), "download": False},
    )
    assert absolute_paths("peak", {"n_per_class": 5}, base="/elsewhere") == ("peak", {"n_per_class": 5})
    with pytest.raises(DataError, match="unknown data set"):
        absolute_paths("nope", {})


@pytest.mark.parametrize(
    "content, message",
    [(b"\x89PNG not really", "not an image PIL knows"), ("cut", "image file is truncated")],
)
def test_an_unreadable_image_is_a_data_error_naming_it(tmp_path, cache_dir, content, message):
    write_images(tmp_path / "d", {"a": 2, "b": 2})
    bad = tmp_path / "d" / "b" / "bad.png"
    bad.write_bytes(
        content if isinstance(content, bytes) else (tmp_path / "d" / "a" / "0.png").read_bytes()[:60]
    )
    with pytest.raises(DataError, match=f"cannot read {bad}: {message}"):
        load_dataset(f"image_folder:{tmp_path / 'd'}", cache_dir=cache_dir)
    assert files(cache_dir) == []


def test_a_folder_larger_than_the_open_file_limit_loads(tmp_path):
    """Every image was opened before any was read: a folder of more images than the process may
    open files (often 1,024) failed with 'Too many open files'. A child with a limit of 96 loads 200."""
    import subprocess
    import sys

    write_images(tmp_path / "d", {"a": 100, "b": 100})
    code = (
        "import resource, sys; resource.setrlimit(resource.RLIMIT_NOFILE, (96, 96));"
        "from racecar_study.data import load_dataset;"
        "s = load_dataset('image_folder:' + sys.argv[1], use_cache=False);"
        "print(len(s.x_train) + len(s.x_test))"
    )
    out = subprocess.run([sys.executable, "-c", code, str(tmp_path / "d")], capture_output=True, text=True)
    assert out.returncode == 0 and out.stdout.split()[-1] == "200", out.stderr[-2000:]
