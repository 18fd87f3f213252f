"""A relative data path in a spec is the driver's: trials run in their own folders (Ray Tune's
trial working directory) and must still find the files."""

import numpy as np
from PIL import Image
from study_helpers import spec_dict

from racecar_study.study.experiment import load_splits
from racecar_study.study.runner import LaunchOptions, resolve_spec
from racecar_study.study.spec import apply_overrides, parse_spec


def _images(folder, per_class: int = 6) -> None:
    rng = np.random.default_rng(0)
    for c in ("a", "b"):
        (folder / c).mkdir(parents=True)
        for i in range(per_class):
            Image.fromarray((rng.random((8, 8)) * 255).astype("uint8")).save(folder / c / f"{i}.png")


def test_a_relative_image_folder_is_found_from_a_trials_working_directory(tmp_path, monkeypatch):
    _images(tmp_path / "study" / "imgs")
    monkeypatch.chdir(tmp_path / "study")
    raw = spec_dict(**{"data": {"name": "image_folder:imgs"}})
    raw["search"]["space"] = {"data.n_per_class": {"choice": [2, 4]}}  # trials load their own data
    spec = resolve_spec(parse_spec(raw), LaunchOptions())
    assert spec.data.name == f"image_folder:{tmp_path / 'study' / 'imgs'}"

    trial_dir = tmp_path / "ray" / "working_dirs" / "train_trial_0"
    trial_dir.mkdir(parents=True)
    monkeypatch.chdir(trial_dir)  # where Tune runs a trial
    splits = load_splits(apply_overrides(spec, {"data.n_per_class": 4}), 0)
    assert splits.y_train.bincount().tolist() == [4, 4]


def test_relative_paths_among_a_searchs_choices_are_the_drivers_too(tmp_path, monkeypatch):
    """`data.name: {choice: [image_folder:imgs, ...]}` and a searched path option: each trial loads
    the data its value names, from its own folder (it failed with 'imgs is not a folder')."""
    _images(tmp_path / "study" / "imgs")
    _images(tmp_path / "study" / "more")
    monkeypatch.chdir(tmp_path / "study")
    raw = spec_dict(**{"data": {"name": "digits"}})
    raw["search"]["space"] = {"data.name": {"choice": ["image_folder:imgs", "image_folder:more", "digits"]}}
    spec = resolve_spec(parse_spec(raw), LaunchOptions())
    study = tmp_path / "study"
    assert spec.search.space["data.name"].choice == [
        f"image_folder:{study / 'imgs'}",
        f"image_folder:{study / 'more'}",
        "digits",
    ]
    trial_dir = tmp_path / "ray" / "working_dirs" / "train_trial_0"
    trial_dir.mkdir(parents=True)
    monkeypatch.chdir(trial_dir)  # where Tune runs a trial
    splits = load_splits(apply_overrides(spec, {"data.name": spec.search.space["data.name"].choice[1]}), 0)
    assert splits.y_train.bincount().tolist() == [5, 5]
    monkeypatch.chdir(study)
    raw = spec_dict(**{"data": {"name": "mnist"}})  # its `root` option is a path
    raw["search"]["space"] = {"data.root": {"choice": ["a", "/b"]}, "data.n_per_class": {"choice": [2, 3]}}
    space = resolve_spec(parse_spec(raw), LaunchOptions()).search.space
    assert space["data.root"].choice == [str(study / "a"), "/b"]
    assert space["data.n_per_class"].choice == [2, 3]  # not a path
