"""Surplus trial checkpoints are deleted only when a resume can no longer need them."""

from pathlib import Path

import pyarrow.fs as pafs

from racecar_study.study.pruning import CheckpointPruner


class _Checkpoint:
    def __init__(self, path: Path):
        path.mkdir(parents=True)
        self.path, self.filesystem = str(path), pafs.LocalFileSystem()


def _checkpoints(tmp_path, trial, n):
    return [_Checkpoint(tmp_path / trial / f"checkpoint_{i:06d}") for i in range(n)]


def test_surplus_waits_for_the_lag_then_goes(tmp_path):
    pruner = CheckpointPruner(keep=2, lag_s=10.0)
    cps = _checkpoints(tmp_path, "a", 4)
    for t, cp in enumerate(cps):
        pruner.add("a", cp, now=float(t))
    # at t=3: checkpoints 0 and 1 are surplus since t=2 and t=3, too recent to delete
    assert pruner.prune(now=3.0) == []
    assert all(Path(c.path).exists() for c in cps)
    assert pruner.prune(now=12.5) == [cps[0].path]  # 10.5 s after checkpoint 2 arrived
    assert pruner.prune(now=13.0) == [cps[1].path]
    assert [Path(c.path).exists() for c in cps] == [False, False, True, True]
    assert pruner.prune(now=100.0) == []  # never below keep


def test_ended_trials_are_pruned_at_once_and_others_wait(tmp_path):
    pruner = CheckpointPruner(keep=1, lag_s=10.0)
    done, running = _checkpoints(tmp_path, "done", 3), _checkpoints(tmp_path, "running", 3)
    for cp in done:
        pruner.add("done", cp, now=0.0)
    for cp in running:
        pruner.add("running", cp, now=0.0)
    assert pruner.prune(now=1.0, ended={"done"}) == [done[0].path, done[1].path]
    assert all(Path(c.path).exists() for c in running)


def test_a_checkpoint_reported_twice_counts_once_and_a_missing_one_is_skipped(tmp_path):
    pruner = CheckpointPruner(keep=1, lag_s=0.0)
    a, b = _checkpoints(tmp_path, "t", 2)
    pruner.add("t", a, now=0.0)
    pruner.add("t", a, now=0.5)
    pruner.add("t", b, now=1.0)
    Path(a.path).rmdir()  # deleted by someone else
    assert pruner.prune(now=2.0) == []
    assert Path(b.path).exists()


def test_an_ended_trials_folder_keeps_its_newest_checkpoints_whoever_wrote_them(tmp_path):
    """A killed driver leaves checkpoints the next driver never registered: counted in the folder,
    by Tune's index (numerically), and nothing but checkpoint folders is touched."""
    pruner = CheckpointPruner(keep=2)
    cps = _checkpoints(tmp_path, "a", 12)
    pruner.add("a", cps[11], now=0.0)  # the one this driver saw
    (tmp_path / "a" / "checkpoint_1000000").mkdir()  # past six digits: newest by number, not by name
    for name in ("result.json", "checkpoint_notes"):
        (tmp_path / "a" / name).write_text("x")
    deleted = pruner.prune_stored("a", pafs.LocalFileSystem(), str(tmp_path / "a"))
    assert sorted(deleted) == sorted(c.path for c in cps[:11])
    left = sorted(p.name for p in (tmp_path / "a").iterdir())
    assert left == ["checkpoint_000011", "checkpoint_1000000", "checkpoint_notes", "result.json"]
    assert pruner.prune(now=100.0, ended={"a"}) == []  # nothing left registered for the trial
    assert pruner.prune_stored("gone", pafs.LocalFileSystem(), str(tmp_path / "missing")) == []
