"""A study whose driver is killed mid-way resumes: exactly num_samples trials in the end, and the
trials that had finished before the kill are not trained again."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq
from study_helpers import run_cli, spec_dict, write_spec

NUM_SAMPLES = 5
# One trial at a time, each a few seconds of real training, so the kill lands between trials.
STUDY = spec_dict(
    **{
        "name": "resume",
        "data.n_per_class": 100,
        "model.widths": [64],
        "train.epochs": 12,
        "search.num_samples": NUM_SAMPLES,
        "search.max_concurrent": 1,
    }
)


def _finished(results: Path) -> set[str]:
    try:
        rows = pq.read_table(results).to_pylist()
    except (OSError, ValueError):  # not written yet
        return set()
    return {r["trial_id"] for r in rows if r["status"] in ("done", "stopped")}


def _reports(trial_dir: Path) -> tuple[str, list[int]]:
    """(trial id, the epoch of every report it ever made, across the kill and the resume)."""
    rows = [json.loads(line) for line in (trial_dir / "result.json").read_text().splitlines() if line.strip()]
    return rows[0]["trial_id"], [r["epoch"] for r in rows]


def test_killed_study_resumes_without_rerunning_finished_trials(workdir, capsys):
    spec = write_spec(workdir, STUDY)
    folder = workdir / "runs" / "resume"
    log = (workdir / "driver.log").open("w")
    driver = subprocess.Popen(
        [sys.executable, "-m", "racecar_study.cli", "run", str(spec), "--plain"],
        cwd=workdir,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 150
        while len(before := _finished(folder / "results.parquet")) < 2:
            assert driver.poll() is None, (workdir / "driver.log").read_text()[-3000:]
            assert time.monotonic() < deadline, "no two trials finished in time"
            time.sleep(0.2)
        time.sleep(1.5)  # Tune snapshots its state every second (runner.TUNE_ENV)
    finally:
        os.killpg(driver.pid, signal.SIGKILL)  # the driver and the Ray processes it started
        driver.wait()
        log.close()
    assert len(_finished(folder / "results.parquet")) < NUM_SAMPLES, "the study ended before the kill"

    rc, out, err = run_cli(capsys, "resume", str(folder), "--plain")
    assert rc == 0, err
    rows = pq.read_table(folder / "results.parquet").to_pylist()
    assert len(rows) == NUM_SAMPLES and {r["status"] for r in rows} == {"done"}
    assert before <= {r["trial_id"] for r in rows}
    # A trial started after Tune's last snapshot leaves a folder the resumed study does not know.
    # Such a folder may hold no result.json at all when the kill came before its first report.
    reports = dict(_reports(p) for p in (folder / "tune").iterdir() if (p / "result.json").is_file())
    for row in rows:
        epochs = reports[row["trial_id"]]
        if row["trial_id"] in before:
            assert epochs == list(range(1, 13)), f"{row['trial_id']} trained again: {epochs}"
        assert epochs[-1] == 12 and row["epochs"] == 12
