"""Registry, names, options and the DataSplits contract, over every registered data set."""

from __future__ import annotations

import pytest
import torch
from data_helpers import write_images

from racecar_study.data import DataError, DataSplits, check_options, list_datasets, load_dataset
from racecar_study.data.base import make_splits

BUILT_IN = {
    *("peak", "mnist2", "mnist5k", "fashion_mnist", "digits"),
    *("mnist", "cifar10", "cifar100", "image_folder:PATH"),
}


def test_every_data_set_is_listed_with_size_and_availability(cache_dir):
    infos = {i.name: i for i in list_datasets(cache_dir)}
    assert set(infos) == BUILT_IN
    for info in infos.values():
        assert info.size and info.description
        assert info.available == (info.reason == "")
    assert infos["peak"].available and infos["mnist2"].available and infos["digits"].available
    assert not infos["cifar10"].available and str(cache_dir) in infos["cifar10"].reason


def _loadable(name: str, tmp_path) -> str:
    if name == "image_folder:PATH":
        write_images(tmp_path / "imgs", {"a": 3, "b": 3})
        return f"image_folder:{tmp_path / 'imgs'}"
    return name


@pytest.mark.parametrize("name", sorted(BUILT_IN))
def test_every_available_set_meets_the_splits_contract(name, tmp_path, cache_dir):
    info = {i.name: i for i in list_datasets(cache_dir)}[name]
    if not info.available:
        pytest.skip(f"{name} not available here: {info.reason}")
    s = load_dataset(_loadable(name, tmp_path), cache_dir=cache_dir, use_cache=False)
    assert isinstance(s, DataSplits)
    for split in ("train", "val", "test"):
        x, y = s.split(split)
        assert x.dtype == torch.float32 and x.dim() == 4 and tuple(x.shape[1:]) == s.input_shape
        assert y.dtype == torch.int64 and len(y) == len(x)
        if len(x):
            assert 0.0 <= float(x.min()) and float(x.max()) <= 1.0, "every set is scaled to [0, 1]"
            assert 0 <= int(y.min()) and int(y.max()) < s.num_classes
    assert len(s.x_train) and len(s.x_test)
    assert set(s.y_train.tolist()) == set(range(s.num_classes)), "every class has training images"
    assert "[0,1]" in s.description, "the description states the scaling"


def test_unknown_name_lists_the_known_ones(cache_dir):
    with pytest.raises(DataError, match=r"unknown data set 'nope'; known: cifar10, cifar100, digits, "):
        load_dataset("nope", cache_dir=cache_dir)
    with pytest.raises(DataError, match="unknown data set 'peak:x'"):
        load_dataset("peak:x", cache_dir=cache_dir)
    with pytest.raises(DataError, match="unknown data set 'image_folder'"):
        load_dataset("image_folder", cache_dir=cache_dir)


def test_unknown_option_is_named(cache_dir):
    with pytest.raises(DataError, match=r"unknown option 'colour' for data set 'peak'; known: classes, "):
        load_dataset("peak", cache_dir=cache_dir, colour=1)
    with pytest.raises(DataError, match="unknown option 'root' for data set 'mnist2'"):
        load_dataset("mnist2", cache_dir=cache_dir, root="/x")


@pytest.mark.parametrize("seed", [-1, 1.5, True, "0"])
def test_bad_seed(seed, cache_dir):
    with pytest.raises(DataError, match="seed must be a non-negative int"):
        load_dataset("peak", seed=seed, cache_dir=cache_dir)


def test_option_values_must_be_plain_data(cache_dir):
    with pytest.raises(DataError, match="option 'n_per_class' of 'peak' is not a plain"):
        load_dataset("peak", cache_dir=cache_dir, n_per_class=object())
    with pytest.raises(DataError, match="not a plain, finite"):
        load_dataset("peak", cache_dir=cache_dir, val_fraction=float("nan"))


def test_errors_are_one_line(cache_dir):
    for name, options in (("nope", {}), ("peak", {"classes": [7]}), ("peak", {"transform": [{"spin": 1}]})):
        with pytest.raises(DataError) as e:
            load_dataset(name, cache_dir=cache_dir, **options)
        assert "\n" not in str(e.value)


def test_register_dataset_adds_a_buildable_set(scratch_registry, cache_dir):
    @scratch_registry("ramp", description="a ramp, values in [0,1]", size="4", check=lambda d: "never here")
    def build(ctx, *, n=2):
        x = torch.linspace(0, 1, n * 4).view(n, 1, 2, 2)
        names = [str(i) for i in range(n)]
        return make_splits(ctx.name, {"train": (x, torch.arange(n))}, names, ctx.description)

    s = load_dataset("ramp", n=3, cache_dir=cache_dir)
    assert s.input_shape == (1, 2, 2) and s.num_classes == 3 and len(s.x_test) == 0
    info = next(i for i in list_datasets(cache_dir) if i.name == "ramp")
    assert not info.available and info.reason == "never here"
    with pytest.raises(DataError, match="unknown option 'm'"):
        load_dataset("ramp", m=1, cache_dir=cache_dir)


def test_register_rejects_positional_options_and_duplicates(scratch_registry):
    with pytest.raises(TypeError, match="keyword-only"):
        scratch_registry("bad", description="", size="")(lambda ctx, n: None)
    with pytest.raises(ValueError, match="registered twice"):
        scratch_registry("peak", description="", size="")(lambda ctx: None)


def test_splits_validate_dtype_labels_and_shapes():
    x, y = torch.zeros(2, 1, 3, 3), torch.tensor([0, 1])
    good = make_splits("t", {"train": (x, y)}, ["a", "b"], "")
    assert good.input_shape == (1, 3, 3) and good.num_classes == 2 and good.x_val.shape == (0, 1, 3, 3)
    assert repr(good) == "DataSplits('t', train=2, val=0, test=0, input_shape=(1, 3, 3), classes=2)"
    with pytest.raises(DataError, match="x_train must be float32"):
        make_splits("t", {"train": (x.double(), y)}, ["a", "b"], "")
    with pytest.raises(DataError, match="y_train must be int64"):
        make_splits("t", {"train": (x, y.int())}, ["a", "b"], "")
    with pytest.raises(DataError, match="labels outside 0..0"):
        make_splits("t", {"train": (x, y)}, ["a"], "")
    with pytest.raises(DataError, match="disagree on image shape"):
        make_splits("t", {"train": (x, y), "test": (torch.zeros(1, 1, 4, 4), y[:1])}, ["a", "b"], "")


def test_check_options_validates_names_without_reading_files(tmp_path):
    check_options("peak", {"n_per_class": 3, "transform": [{"rotate": 5}]})
    check_options("fashion_mnist", {"root": str(tmp_path / "not-there"), "classes": [0, 1]})
    check_options(f"image_folder:{tmp_path / 'not-there'}", {"size": 8})
    for name, options, message in (
        ("nope", {}, "unknown data set"),
        ("peak", {"colour": 1}, "unknown option 'colour'"),
        ("peak", {"transform": [{"spin": 1}]}, "unknown transform 'spin'"),
        ("mnist5k", {"val_fraction": 2}, "val_fraction"),
    ):
        with pytest.raises(DataError, match=message):
            check_options(name, options)
