"""A driver killed while Tune copies its state into the study folder leaves a truncated file;
before a resume it is replaced by Tune's staging copy (with the rest of its session's set), or the
resume stops with one clear line and nothing changed."""

import json
import pickle

import pytest

from racecar_study.study import tune_state
from racecar_study.study.errors import LaunchError

SESSION = "2026-11-27_19-03-43"
STATE = {
    f"experiment_state-{SESSION}.json": json.dumps({"trial_data": [1, 2], "stats": {}}).encode(),
    f"search_gen_state-{SESSION}.json": pickle.dumps({"counter": 4}),
    f"searcher-state-{SESSION}.pkl": pickle.dumps({"optuna": "state"}),
}
TRIALS = ["train_trial_357362da", "train_trial_7ced9e01"]


def _study(tmp_path, cut: str | None):
    tune = tmp_path / "runs" / "s" / "tune"
    tune.mkdir(parents=True)
    for trial in TRIALS:
        (tune / trial).mkdir()
    for name, data in STATE.items():
        (tune / name).write_bytes(data[: len(data) // 2] if name == cut else data)  # the kill cut it
    return tune


def _staging(tmp_path, trials=TRIALS, newer=b""):
    staged = (
        tmp_path / "ray" / "session_x" / "artifacts" / "2026-11-27_19-03-41" / "tune" / "driver_artifacts"
    )
    staged.mkdir(parents=True)
    for trial in trials:
        (staged / trial).mkdir()
    for name, data in STATE.items():
        (staged / name).write_bytes(data)
    return tmp_path / "ray"


def test_whole_state_is_left_alone(tmp_path):
    tune = _study(tmp_path, cut=None)
    assert tune_state.mend(tune, tmp_path / "ray") == []


@pytest.mark.parametrize("cut", sorted(STATE))
def test_a_cut_file_is_restored_from_the_staging_copy_with_its_session(tmp_path, cut):
    tune = _study(tmp_path, cut=cut)
    ray_temp = _staging(tmp_path)
    assert not tune_state.intact(tune / cut)
    mended = tune_state.mend(tune, ray_temp)
    assert sorted(mended) == sorted(STATE)
    for name, data in STATE.items():
        assert (tune / name).read_bytes() == data
    assert not list(tune.glob(".*mend"))  # no temporary file left behind
    assert tune_state.mend(tune, ray_temp) == []


def test_no_staging_copy_stops_the_resume_and_changes_nothing(tmp_path):
    cut = f"search_gen_state-{SESSION}.json"
    tune = _study(tmp_path, cut=cut)
    before = {p.name: p.read_bytes() for p in tune.iterdir() if p.is_file()}
    with pytest.raises(LaunchError, match=f"{cut} was cut short"):
        tune_state.mend(tune, tmp_path / "ray")
    assert {p.name: p.read_bytes() for p in tune.iterdir() if p.is_file()} == before


def test_another_studys_staging_copy_is_not_used(tmp_path):
    tune = _study(tmp_path, cut=f"searcher-state-{SESSION}.pkl")
    ray_temp = _staging(tmp_path, trials=["train_trial_00000000"])  # same session name, other trials
    with pytest.raises(LaunchError, match="staging copy of it is not on this machine"):
        tune_state.mend(tune, ray_temp)


def test_only_the_newest_session_matters(tmp_path):
    tune = _study(tmp_path, cut=None)
    (tune / "experiment_state-2026-11-27_18-00-00.json").write_bytes(b"{")  # an older, cut file
    assert tune_state.mend(tune, tmp_path / "ray") == []


def test_the_experiment_is_a_folder_for_path_and_file_storage(tmp_path):
    """What resume mends and counts, and where a failed trial's traceback is said to be: for a
    path or file:// storage, Tune's experiment is a folder here (it was missed for file://)."""
    from racecar_study.study.layout import study_paths

    for storage in (str(tmp_path), f"file://{tmp_path}"):
        assert study_paths("s", storage, None, False).tune_dir == tmp_path.resolve() / "s" / "tune"
    assert study_paths("s", "s3://bucket/runs", "127.0.0.1:6379", False).tune_dir is None
