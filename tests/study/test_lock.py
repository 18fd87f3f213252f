"""One driver per study: a second run/resume/--overwrite of a study that a driver holds stops with
one line naming the holder and changes nothing; a killed holder's lock is gone at once."""

import os
import signal
import subprocess
import sys
import time

import pytest
from study_helpers import run_cli, spec_dict, write_spec

from racecar_study.study.errors import LaunchError
from racecar_study.study.lock import LOCK_NAME, StudyLock, check_free


def test_a_second_holder_is_refused_until_the_first_lets_go(tmp_path):
    with StudyLock(tmp_path):
        assert (tmp_path / LOCK_NAME).read_text() == str(os.getpid())
        with pytest.raises(LaunchError, match=f"pid {os.getpid()}"):
            check_free(tmp_path)
        with pytest.raises(LaunchError, match="another racecar-study driver"):
            with StudyLock(tmp_path):
                pass
    check_free(tmp_path)
    with StudyLock(tmp_path):
        pass


def test_a_killed_holder_leaves_the_study_free(tmp_path):
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time; from racecar_study.study.lock import StudyLock\n"
            "with StudyLock(sys.argv[1]):\n    print('held', flush=True); time.sleep(60)",
            str(tmp_path),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(LaunchError, match=f"pid {holder.pid}"):
            check_free(tmp_path)
    finally:
        os.kill(holder.pid, signal.SIGKILL)
        holder.wait()
    deadline = time.monotonic() + 5
    while True:  # the kernel drops a flock with its last descriptor
        try:
            check_free(tmp_path)
            break
        except LaunchError:
            assert time.monotonic() < deadline, "the killed driver's lock outlived it"
            time.sleep(0.05)


def test_resume_and_overwrite_refuse_a_study_a_driver_holds(workdir, capsys):
    spec = write_spec(workdir, {**spec_dict(), "name": "held"})
    folder = workdir / "runs" / "held"
    rc, _, err = run_cli(capsys, "run", str(spec), "--plain")
    assert rc == 0, err
    before = sorted(p.relative_to(folder) for p in folder.rglob("*"))
    results = (folder / "results.parquet").read_bytes()
    with StudyLock(folder):  # as a live driver would
        for argv in (["resume", str(folder), "--plain"], ["run", str(spec), "--overwrite", "--plain"]):
            rc, _, err = run_cli(capsys, *argv)
            lines = err.strip().splitlines()
            assert rc == 2 and len(lines) == 1 and f"pid {os.getpid()}" in lines[0], err
    assert sorted(p.relative_to(folder) for p in folder.rglob("*")) == before
    assert (folder / "results.parquet").read_bytes() == results
    rc, _, err = run_cli(capsys, "resume", str(folder), "--plain")  # free again
    assert rc == 0, err
