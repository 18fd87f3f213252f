"""The generated peak set: discs where METHOD.md puts them, one distractor clear of them."""

from __future__ import annotations

import pytest
import torch

from racecar_study.data import DataError, load_dataset, peak_disc_masks
from racecar_study.data.sets import peak


@pytest.fixture(scope="module")
def splits():
    return load_dataset("peak", use_cache=False)


def test_default_sizes_and_balance(splits):
    assert splits.x_train.shape == (100, 1, 28, 28) and splits.x_test.shape == (10, 1, 28, 28)
    assert len(splits.x_val) == 0 and splits.num_classes == 2
    assert splits.y_train.bincount().tolist() == [50, 50] and splits.y_test.bincount().tolist() == [5, 5]
    assert float(splits.x_train.min()) == 0.0 and float(splits.x_train.max()) == 1.0


def test_disc_lies_in_its_class_region_and_nothing_in_the_other(splits):
    masks = peak_disc_masks()
    for x, y in zip(splits.x_train[:, 0], splits.y_train):
        own, other = masks[int(y)], masks[1 - int(y)]
        assert float(x[other].sum()) == 0.0
        # a disc of radius 3 whose edge ramps over one pixel holds about pi * 3^2 of ink
        assert 26 < float(x[own].sum()) < 31
        assert float(x[own].max()) == 1.0


def test_every_image_has_one_distractor_outside_the_disc_regions(splits):
    m0, m1 = peak_disc_masks()
    outside = ~(m0 | m1)
    inked = (splits.x_train[:, 0][:, outside] > 0.5).sum(dim=1)
    assert bool((inked >= 4).all())
    # distractors keep a margin: nothing within KEEP_OUT of either centre but the disc
    keep_out = torch.from_numpy(peak._KEEP_OUT_MASK) & outside
    assert float(splits.x_train[:, 0][:, keep_out].sum()) == 0.0


def test_distractor_kinds_vary(splits):
    # different distractors -> different ink outside the disc regions
    m0, m1 = peak_disc_masks()
    ink = splits.x_train[:, 0][:, ~(m0 | m1)].sum(dim=1)
    assert len(set(ink.round(decimals=1).tolist())) > 50


def test_sizes_are_options():
    s = load_dataset("peak", n_per_class=3, test_per_class=0, use_cache=False)
    assert len(s.x_train) == 6 and len(s.x_test) == 0
    with pytest.raises(DataError, match="n_per_class' must be an int >= 1"):
        load_dataset("peak", n_per_class=0, use_cache=False)
    with pytest.raises(DataError, match="test_per_class' must be an int >= 0"):
        load_dataset("peak", test_per_class=-1, use_cache=False)


def test_seed_changes_images_not_sizes():
    a, b = (load_dataset("peak", seed=s, n_per_class=4, use_cache=False) for s in (0, 1))
    assert a.x_train.shape == b.x_train.shape and not torch.equal(a.x_train, b.x_train)
    assert torch.equal(a.y_train, b.y_train)


def test_masks_are_disjoint_discs_at_the_centres():
    m0, m1 = peak_disc_masks()
    assert m0.shape == (28, 28) and m0.dtype == torch.bool
    assert not bool((m0 & m1).any())
    assert m0[6, 6] and m1[21, 21] and not m0[21, 21] and not m1[6, 6]
    assert int(m0.sum()) == int(m1.sum()) == 81  # lattice points within radius 5
    small0, _ = peak_disc_masks(radius=3)
    assert int(small0.sum()) == 29 and bool((small0 <= m0).all())


def test_masks_scale_with_shape_and_follow_a_shift():
    m0, m1 = peak_disc_masks((56, 56))
    assert m0[12:14, 12:14].all() and m1[42:44, 42:44].all()
    s0, _ = peak_disc_masks(shift=(3, -1))
    assert torch.equal(s0, torch.roll(peak_disc_masks()[0], shifts=(3, -1), dims=(0, 1)))
