"""Checkpoint scratch folders: Tune can kill a trial inside `tune.report`, so a folder is named by
host and PID, and a starting trial removes those of this host whose process has ended."""

import os

from study_helpers import dead_pid

from racecar_study.study import scratch


def test_a_folder_is_named_by_host_and_pid_and_removed_on_exit(tmp_path):
    with scratch.checkpoint_folder(tmp_path) as folder:
        assert folder.parent == tmp_path and folder.is_dir()
        assert folder.name.startswith(f"{scratch.PREFIX}{scratch._host()}-{os.getpid()}-")
        (folder / "model.pt").write_bytes(b"x")
    assert not folder.exists()


def test_sweep_removes_only_this_hosts_folders_of_ended_processes(tmp_path):
    host = scratch._host()
    dead = tmp_path / f"{scratch.PREFIX}{host}-{dead_pid()}-abc"
    live = tmp_path / f"{scratch.PREFIX}{host}-{os.getpid()}-abc"
    other_host = tmp_path / f"{scratch.PREFIX}not{host}-{dead_pid()}-abc"
    old_style = tmp_path / f"{scratch.PREFIX}k2j3h4"  # TemporaryDirectory's names: no PID to check
    for folder in (dead, live, other_host, old_style):
        (folder / "seed_0").mkdir(parents=True)
    assert scratch.sweep(tmp_path) == [dead]
    assert not dead.exists() and live.is_dir() and other_host.is_dir() and old_style.is_dir()
