"""The transform view: each registered transform, its arguments, seeding and composition."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from racecar_study.data import DataError, load_dataset, peak_disc_masks
from racecar_study.data.transforms import transform_names


@pytest.fixture(scope="module")
def two():
    return load_dataset("mnist2", use_cache=False)


def _t(*steps, name="mnist2", seed=0, **options):
    return load_dataset(name, transform=list(steps), seed=seed, use_cache=False, **options)


def test_registered_transforms():
    assert transform_names() == ["move_discs", "resize", "rotate", "thicken", "thin", "to_grey", "to_rgb"]


def test_rotate_by_90_is_a_quarter_turn_counter_clockwise(two):
    s = _t({"rotate": 90})
    assert torch.allclose(s.x_train, torch.rot90(two.x_train, 1, dims=(2, 3)), atol=1e-6)
    assert torch.allclose(s.x_test, torch.rot90(two.x_test, 1, dims=(2, 3)), atol=1e-6)


def test_fixed_rotation_needs_no_seed(two):
    assert torch.equal(_t({"rotate": 30}).x_train, _t({"rotate": 30}, seed=5).x_train)
    assert not torch.equal(_t({"rotate": 30}).x_train, two.x_train)


def test_random_rotation_is_per_image_and_seeded():
    s = load_dataset("peak", transform=[{"rotate": [-45, 45]}], use_cache=False)
    ref = load_dataset("peak", use_cache=False)
    same = load_dataset("peak", transform=[{"rotate": [-45, 45]}], use_cache=False)
    other = load_dataset("peak", transform=[{"rotate": [-45, 45]}], seed=1, use_cache=False)
    assert torch.equal(s.x_train, same.x_train)
    assert not torch.equal(s.x_train, ref.x_train)
    assert not torch.equal(other.x_train, load_dataset("peak", seed=1, use_cache=False).x_train)
    # each image its own angle: no single angle maps every image
    ink = (s.x_train - ref.x_train).abs().flatten(1).sum(1)
    assert len(set(ink.round(decimals=3).tolist())) > 90


def test_thicken_and_thin_are_max_pool_dilation_and_erosion(two):
    thick, thin = _t({"thicken": 1}), _t({"thin": 1})
    assert torch.equal(thick.x_train, F.max_pool2d(two.x_train, 3, stride=1, padding=1))
    assert torch.equal(thin.x_train, -F.max_pool2d(-two.x_train, 3, stride=1, padding=1))
    assert thick.x_train.sum() > two.x_train.sum() > thin.x_train.sum()
    assert _t({"thicken": 2}).x_train.sum() > thick.x_train.sum()


def test_resize_rgb_grey_and_composition(two):
    assert _t({"resize": [14, 20]}).input_shape == (1, 14, 20)
    assert _t({"resize": 32}).input_shape == (1, 32, 32)
    rgb = _t({"to_rgb": True})
    assert rgb.input_shape == (3, 28, 28) and torch.equal(rgb.x_train[:, 1], two.x_train[:, 0])
    back = _t({"to_rgb": True}, {"to_grey": True})
    assert back.input_shape == (1, 28, 28) and torch.allclose(back.x_train, two.x_train, atol=1e-6)
    assert _t({"resize": 32}, {"to_rgb": True}, {"rotate": 10}).input_shape == (3, 32, 32)


def test_move_discs_moves_the_discs_and_keeps_the_distractor():
    ref = load_dataset("peak", use_cache=False)
    moved = _t({"move_discs": [2, 3]}, name="peak")
    m0, m1 = peak_disc_masks()
    region = (m0 | m1).float()
    discs = torch.zeros_like(ref.x_train)
    discs[..., 2:, 3:] = (ref.x_train * region)[..., :-2, :-3]  # an integer shift is exact
    assert torch.equal(moved.x_train, torch.maximum(ref.x_train * (1 - region), discs))
    s0, s1 = peak_disc_masks(shift=(2, 3))
    for x, y in zip(moved.x_train[:, 0], ref.y_train):
        assert float(x[s0 if y == 0 else s1].max()) == 1.0
    half = _t({"move_discs": [0.5, -1.5]}, name="peak")
    assert half.x_train.shape == ref.x_train.shape and not torch.equal(half.x_train, ref.x_train)


@pytest.mark.parametrize(
    "steps, message",
    [
        ({"rotate": 3}, "must be a list of one-key mappings"),
        ([{"spin": 3}], r"unknown transform 'spin'; known: move_discs, resize, rotate"),
        ([{"rotate": 3, "thin": 1}], r"transform\[0\] must be a one-key mapping"),
        ([{"rotate": "x"}], "transform 'rotate' needs a number"),
        ([{"rotate": [30, -30]}], "lo <= hi"),
        ([{"rotate": [1, 2, 3]}], r"range must be \[lo, hi\]"),
        ([{"thicken": 0}], "must be an int >= 1"),
        ([{"thin": 1.5}], "must be an int >= 1"),
        ([{"resize": [0, 4]}], "positive int or"),
        ([{"to_rgb": False}], "takes `true`"),
        ([{"move_discs": [1, 1]}], "works on the peak data set only"),
    ],
)
def test_bad_transforms(steps, message, cache_dir):
    with pytest.raises(DataError, match=message):
        load_dataset("mnist2", transform=steps, cache_dir=cache_dir)
    assert not cache_dir.exists()


def test_move_discs_must_come_first():
    with pytest.raises(DataError, match="must come first"):
        _t({"thicken": 1}, {"move_discs": [1, 1]}, name="peak")
    with pytest.raises(DataError, match=r"needs \[dy, dx\]"):
        _t({"move_discs": 1}, name="peak")


def test_to_grey_rejects_two_channels(scratch_registry):
    from racecar_study.data.base import make_splits

    @scratch_registry("twoch", description="", size="")
    def build(ctx):
        return make_splits(ctx.name, {"train": (torch.zeros(1, 2, 2, 2), torch.tensor([0]))}, ["a"], "")

    with pytest.raises(DataError, match="needs 1 or 3 channels"):
        load_dataset("twoch", transform=[{"to_grey": True}], use_cache=False)
