"""Task views: classes, n_per_class, val_fraction, in that order, seeded."""

from __future__ import annotations

import pytest
import torch
from data_helpers import files

from racecar_study.data import DataError, load_dataset
from racecar_study.data.base import make_splits


@pytest.fixture(scope="module")
def mnist():
    return load_dataset("mnist5k", use_cache=False)


def _rows(x: torch.Tensor) -> set[bytes]:
    return {r.numpy().tobytes() for r in x}


def test_classes_subset_and_relabel_in_given_order(mnist):
    s = load_dataset("mnist5k", classes=[7, 2], use_cache=False)
    assert s.class_names == ("7", "2") and s.num_classes == 2
    assert s.y_train.bincount().tolist() == [400, 400] and s.y_test.bincount().tolist() == [100, 100]
    assert _rows(s.x_train[s.y_train == 0]) == _rows(mnist.x_train[mnist.y_train == 7])
    assert _rows(s.x_test[s.y_test == 1]) == _rows(mnist.x_test[mnist.y_test == 2])


def test_classes_by_name(cache_dir):
    s = load_dataset("peak", classes=["lower-right"], use_cache=False)
    assert s.class_names == ("lower-right",) and s.y_train.tolist() == [0] * 50


def test_class_subsets_are_disjoint(mnist):
    a = load_dataset("mnist5k", classes=[0, 1], use_cache=False)
    b = load_dataset("mnist5k", classes=[2, 3], use_cache=False)
    assert not _rows(torch.cat([a.x_train, a.x_test])) & _rows(torch.cat([b.x_train, b.x_test]))


@pytest.mark.parametrize(
    "classes, message",
    [
        ([10], r"class index 10 out of range: mnist5k has classes 0..9"),
        (["ten"], r"class 'ten' not in mnist5k; classes: 0, 1, 2"),
        ([1, 1], "lists a class twice"),
        ([True], "use class indices"),
        ([], "non-empty list"),
        (3, "non-empty list"),
    ],
)
def test_bad_classes(classes, message, cache_dir):
    with pytest.raises(DataError, match=message):
        load_dataset("mnist5k", classes=classes, cache_dir=cache_dir)
    assert files(cache_dir) == []


def test_n_per_class_takes_a_seeded_subset_of_train_only(mnist):
    a = load_dataset("mnist5k", n_per_class=7, use_cache=False)
    assert a.y_train.bincount().tolist() == [7] * 10 and len(a.x_test) == 1000
    assert _rows(a.x_train) <= _rows(mnist.x_train)
    assert torch.equal(a.x_test, mnist.x_test)
    b = load_dataset("mnist5k", n_per_class=7, seed=1, use_cache=False)
    assert _rows(a.x_train) != _rows(b.x_train)


def test_n_per_class_larger_than_available_says_how_many_exist(cache_dir):
    with pytest.raises(DataError, match=r"n_per_class=401 but the train split has fewer .* class '0': 400"):
        load_dataset("mnist5k", n_per_class=401, cache_dir=cache_dir)
    assert files(cache_dir) == []
    with pytest.raises(DataError, match="n_per_class' must be an int >= 1"):
        load_dataset("mnist5k", n_per_class=0, cache_dir=cache_dir)


def test_val_fraction_is_a_stratified_seeded_split_of_train(mnist):
    s = load_dataset("mnist5k", val_fraction=0.25, use_cache=False)
    assert s.y_val.bincount().tolist() == [100] * 10 and s.y_train.bincount().tolist() == [300] * 10
    assert not _rows(s.x_train) & _rows(s.x_val)
    assert _rows(s.x_train) | _rows(s.x_val) == _rows(mnist.x_train)
    assert not _rows(s.x_val) & _rows(s.x_test)
    again = load_dataset("mnist5k", val_fraction=0.25, use_cache=False)
    other = load_dataset("mnist5k", val_fraction=0.25, seed=3, use_cache=False)
    assert torch.equal(s.x_val, again.x_val) and _rows(s.x_val) != _rows(other.x_val)


@pytest.mark.parametrize("fraction", [1, 1.5, -0.1, "half", True])
def test_bad_val_fraction(fraction, cache_dir):
    with pytest.raises(DataError, match="val_fraction"):
        load_dataset("mnist5k", val_fraction=fraction, cache_dir=cache_dir)


def test_views_compose_in_order_classes_shots_validation():
    s = load_dataset("mnist5k", classes=[4, 9], n_per_class=10, val_fraction=0.2, use_cache=False)
    assert s.class_names == ("4", "9")
    assert s.y_train.bincount().tolist() == [8, 8] and s.y_val.bincount().tolist() == [2, 2]
    assert s.y_test.bincount().tolist() == [100, 100]
    assert "classes=[4, 9]; n_per_class=10; val_fraction=0.2" in s.description


def test_val_fraction_on_a_set_that_has_validation(scratch_registry):
    @scratch_registry("withval", description="", size="")
    def build(ctx):
        x, y = torch.zeros(2, 1, 2, 2), torch.tensor([0, 1])
        return make_splits(ctx.name, {"train": (x, y), "val": (x, y)}, ["a", "b"], "")

    with pytest.raises(DataError, match="already has a validation split"):
        load_dataset("withval", val_fraction=0.5, use_cache=False)


def test_peak_n_per_class_sets_the_generated_size():
    # peak's own option of that name wins over the few-shot view: it generates that many
    assert load_dataset("peak", n_per_class=4, use_cache=False).y_train.bincount().tolist() == [4, 4]
