"""Same name, options and seed -> the same bits; another seed -> other bits wherever chance enters.

The golden digests pin the bits across machines: the resampling uses only exactly-rounded float64
operations (resample.py). A change that alters them must bump CODE_VERSION and the digests.
"""

from __future__ import annotations

import pytest
from data_helpers import digest, write_images

from racecar_study.data import load_dataset

# (name, options, whether the seed changes the result)
CASES = [
    ("peak", {}, True),
    ("mnist2", {}, False),
    ("mnist5k", {}, True),
    ("digits", {}, True),
    ("image_folder", {}, True),
    ("fashion_mnist", {}, False),
    ("mnist2", {"classes": [1]}, False),
    ("fashion_mnist", {"n_per_class": 2}, True),
    ("fashion_mnist", {"val_fraction": 0.34}, True),
    ("mnist2", {"transform": [{"rotate": [-30, 30]}]}, True),
    ("mnist2", {"transform": [{"rotate": 30}, {"thin": 1}, {"resize": 20}, {"to_rgb": True}]}, False),
    ("peak", {"transform": [{"move_discs": [2, -1]}, {"thicken": 1}, {"to_grey": True}]}, True),
]


def _name(name, tmp_path, fashion_root):
    if name == "image_folder":
        write_images(tmp_path / "imgs", {"a": 4, "b": 4})
        return f"image_folder:{tmp_path / 'imgs'}", {}
    if name == "fashion_mnist":
        return name, {"root": str(fashion_root)}
    return name, {}


@pytest.mark.parametrize("name, options, seeded", CASES, ids=lambda c: str(c)[:40])
def test_same_seed_same_bits_other_seed_other_bits(name, options, seeded, tmp_path, fashion_root):
    full_name, extra = _name(name, tmp_path, fashion_root)
    options = {**options, **extra}
    a, b = (digest(load_dataset(full_name, seed=3, use_cache=False, **options)) for _ in range(2))
    assert a == b
    other = digest(load_dataset(full_name, seed=4, use_cache=False, **options))
    assert (other != a) == seeded


def test_cached_and_fresh_bits_agree(cache_dir):
    options = {"transform": [{"rotate": [-20, 20]}]}
    fresh = digest(load_dataset("peak", use_cache=False, **options))
    assert digest(load_dataset("peak", cache_dir=cache_dir, **options)) == fresh
    assert digest(load_dataset("peak", cache_dir=cache_dir, **options)) == fresh


GOLDEN = [
    ("peak", {}, "f5f2ecd23675c7df70ff9d00faf082dea5cfe7cf0ce30a967593bd4d31412320"),
    (
        "peak",
        {"transform": [{"move_discs": [1.5, -2]}, {"rotate": [-30, 30]}, {"resize": 20}]},
        "7a0e01f7f09332936eb2bdf5dd28d3c5e21c28c30375b4e78fd8c5c5a1f96bde",
    ),
    (
        "mnist2",
        {"transform": [{"rotate": 30}, {"thicken": 1}]},
        "45a0cbd76fb3faf66b8255bd88a8ae95ec07b3a42b5a39de1087265a8f2ac25c",
    ),
    (
        "mnist5k",
        {"classes": [3, 8], "n_per_class": 20, "val_fraction": 0.25},
        "f4397b16b96336724e849896b7be8eb556530eb3f5e52f17215bed8e4345fe7e",
    ),
    ("digits", {"upscale": True}, "e3368b3aeed74b7a158f0e3494d8aa9347ec90fa23d27157ba4980bd6273516e"),
]


@pytest.mark.parametrize("name, options, expected", GOLDEN, ids=lambda c: str(c)[:40])
def test_golden_bits(name, options, expected):
    assert digest(load_dataset(name, use_cache=False, **options)) == expected
