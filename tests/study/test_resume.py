"""A study whose driver is killed mid-way resumes: exactly num_samples trials in the end, and the
trials that had finished before the kill are not trained again."""

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from study_helpers import run_cli, spec_dict, write_spec

from racecar_study.study.pruning import CHECKPOINT_RE

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


def _reports(trial_dir: Path) -> tuple[str, list[int]]:
    """(trial id, the epoch of every report it ever made, across the kill and the resume)."""
    rows = [json.loads(line) for line in (trial_dir / "result.json").read_text().splitlines() if line.strip()]
    return rows[0]["trial_id"], [r["epoch"] for r in rows]


def _mid_trial(folder: Path, done: set[str]) -> bool:
    """A trial not in `done` is in the first half of its epochs: its newest checkpoint (one per
    epoch, written into the study folder as the trial reports) is at most half-way. The trial
    folders' result.json cannot tell: it is the copy Tune syncs from the driver's staging folder now
    and then, and on a fast host (12 epochs in 0.5 s) whole trials passed between two syncs."""
    for trial_dir in (folder / "tune").glob("train_trial_*"):
        if any(trial_id in trial_dir.name for trial_id in done):
            continue
        names = (p.name for p in trial_dir.glob("checkpoint_*"))
        epochs = [int(n.rsplit("_", 1)[1]) + 1 for n in names if CHECKPOINT_RE.fullmatch(n)]
        if epochs and max(epochs) <= STUDY["train"]["epochs"] // 2:
            return True
    return False


def test_killed_study_resumes_without_rerunning_finished_trials(workdir, capsys, killed_driver):
    """The kill can also land while Tune copies its state from Ray's staging folder into the study
    folder; here it is made to, by cutting the newest searcher state to nothing after the kill.
    Without the mend, Tune would start a new, empty experiment over the study. (One killed study
    serves both checks: each kill and resume costs two Ray start-ups.)"""
    spec = write_spec(workdir, STUDY)
    folder = workdir / "runs" / "resume"
    results = folder / "results.parquet"
    before = killed_driver.run(["run", str(spec), "--plain"], workdir, results, workdir / "driver.log")
    assert len(killed_driver.finished(results)) < NUM_SAMPLES, "the study ended before the kill"
    cut = sorted((folder / "tune").glob("search_gen_state-*"))[-1]
    cut.write_bytes(b"")

    rc, out, err = run_cli(capsys, "resume", str(folder), "--plain")
    assert rc == 0, err
    assert cut.stat().st_size > 0
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
        # checkpoint.keep (2) holds for trials the killed driver had no time to prune, too
        kept = sorted(p.name for p in Path(row["checkpoint_path"]).parent.glob("checkpoint_*"))
        assert len(kept) == 2 and Path(row["checkpoint_path"]).name == kept[-1], (row["trial_id"], kept)


def test_resume_stops_where_tune_would_start_the_study_over(workdir, capsys):
    """A saved state that parses but that Tune cannot restore (here its own driver data is broken):
    Tune logs the error and starts a new, empty experiment. The resume stops before Tune's first
    step instead, with one line, and the study folder is as it was."""
    spec = write_spec(workdir, {**spec_dict(), "name": "unrestorable"})
    folder = workdir / "runs" / "unrestorable"
    rc, out, err = run_cli(capsys, "run", str(spec), "--plain")
    assert rc == 0, err
    state = sorted((folder / "tune").glob("experiment_state-*"))[-1]
    saved = json.loads(state.read_text())
    saved["runner_data"] = "not Tune's driver data"
    state.write_text(json.dumps(saved))
    # as if the study had a trial left to create: with every planned trial ended, resume starts nothing
    info = json.loads((folder / "study.json").read_text())
    (folder / "study.json").write_text(json.dumps({**info, "trials": info["trials"] + 1}))
    before = {p.name: p.read_bytes() for p in (folder / "tune").iterdir() if p.is_file()}
    results = (folder / "results.parquet").read_bytes()

    rc, out, err = run_cli(capsys, "resume", str(folder), "--plain")
    assert rc == 2
    line = err.strip().splitlines()[-1]
    assert err.strip().count("\n") == 0 and "Traceback" not in err, err  # one line, no traceback
    assert "Tune restored 0 of the 2 trials" in line and state.name in line and "AttributeError" in line, err
    assert (folder / "results.parquet").read_bytes() == results
    after = {p.name: p.read_bytes() for p in (folder / "tune").iterdir() if p.is_file()}
    assert after == before
    assert len([p for p in (folder / "tune").iterdir() if p.is_dir()]) == 2  # no new trial folders


@pytest.mark.parametrize("stop", ["ctrl-c", "sigterm"])
def test_ctrl_c_leaves_the_running_trial_pending_and_resume_finishes_it(workdir, capsys, stop):
    """Ctrl-C (SIGINT to the driver's process group): Tune marks the live trial TERMINATED without
    completing it and a resume runs it again, so results.parquet must call it pending, not
    stopped (which means the scheduler ended it), and the exit code says to resume. `kill PID`
    (SIGTERM to the driver alone; Ray's own handler would dump a stack and end it) stops the same
    way; the resume is checked once."""
    import os
    import signal
    import subprocess
    import sys
    import time

    spec = write_spec(workdir, {**STUDY, "name": "ctrl-c"})
    folder = workdir / "runs" / "ctrl-c"
    results = folder / "results.parquet"

    def rows():
        try:
            return pq.read_table(results).to_pylist()
        except (OSError, ValueError):  # not written yet
            return []

    with open(workdir / "driver.log", "w") as log:
        driver = subprocess.Popen(
            [sys.executable, "-m", "racecar_study.cli", "run", str(spec), "--plain"],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + 150
        while not any(r["status"] == "done" for r in rows()):
            assert driver.poll() is None, (workdir / "driver.log").read_text()[-3000:]
            assert time.monotonic() < deadline, "no trial finished in time"
            time.sleep(0.1)
        # 12 epochs can pass in a fixed sleep: watch the checkpoints of trials the table has not ended
        while not _mid_trial(folder, {r["trial_id"] for r in rows() if r["status"] == "done"}):
            assert driver.poll() is None and time.monotonic() < deadline, "no second trial under way"
            time.sleep(0.02)
        if stop == "ctrl-c":
            os.killpg(driver.pid, signal.SIGINT)
        else:
            driver.send_signal(signal.SIGTERM)
        assert driver.wait(timeout=60) == 130, (workdir / "driver.log").read_text()[-3000:]
    before = rows()
    assert {r["status"] for r in before} <= {"done", "pending"}, before
    assert any(r["status"] == "pending" for r in before), before
    assert all(r["epochs"] == 12 for r in before if r["status"] == "done"), before
    log = (workdir / "driver.log").read_text().splitlines()
    headline = [ln for ln in log if ln.startswith("pending ") and " error " in ln][-1]  # the view's last
    assert "stopped 0" in headline and f"pending {NUM_SAMPLES - len(before) + 1}" in headline, headline
    assert "continue with: racecar-study resume" in log[-1] and "SIGTERM received" not in "\n".join(log)
    if stop == "sigterm":
        return

    rc, out, err = run_cli(capsys, "resume", str(folder), "--plain")
    assert rc == 0, err
    after = rows()
    assert len(after) == NUM_SAMPLES and {r["status"] for r in after} == {"done"}
    assert {r["trial_id"] for r in before} <= {r["trial_id"] for r in after}


def test_resume_is_quiet_about_trials_that_never_reported(workdir, capfd):
    """Tune's restore warns 'Failed to fetch metrics' for each saved trial with no result file (one
    a kill caught before its first report); the resume runs or keeps such trials, so it stays quiet."""
    spec = write_spec(workdir, spec_dict(**{"search.num_samples": 2, "search.max_concurrent": 1}))
    rc, _, err = run_cli(capfd, "run", str(spec), "--plain")
    assert rc == 0, err
    folder = workdir / "runs" / "tiny"
    trial = next(p for p in (folder / "tune").iterdir() if (p / "result.json").is_file())
    for name in ("result.json", "progress.csv"):
        (trial / name).unlink()
    info = json.loads((folder / "study.json").read_text())
    del info["trials"]  # as in a study folder from before study.json counted them: resume goes through Tune
    (folder / "study.json").write_text(json.dumps(info))
    rc, out, err = run_cli(capfd, "resume", str(folder), "--plain")
    assert rc == 0, err
    assert "Failed to fetch metrics" not in out + err and "were not found" not in out + err, out + err


def test_a_launch_stopped_before_tune_saved_anything_leaves_no_folder(workdir, capsys, monkeypatch):
    """Ctrl-C between the study folder's creation and Tune's first save left spec.yaml and
    study.json: `run` then called the name taken ('resume it') and `resume` said 'not a study
    folder'. A folder that records nothing goes, so the same `run` starts again."""
    from ray import tune

    def interrupted(self):
        raise KeyboardInterrupt

    monkeypatch.setattr(tune.Tuner, "fit", interrupted)
    rc, _, err = run_cli(capsys, "run", str(write_spec(workdir, spec_dict())), "--plain")
    assert rc == 130 and err.strip().endswith("racecar-study: interrupted"), err
    assert (workdir / "runs").is_dir() and not (workdir / "runs" / "tiny").exists()


def test_a_ctrl_c_python_drops_during_tunes_set_up_still_stops_the_study(workdir, capsys, monkeypatch):
    """A Ctrl-C whose KeyboardInterrupt Python dropped (raised inside a weakref callback while Tune
    imported its telemetry: 'Exception ignored in ...') was lost, and the study ran to the end. It
    is remembered, and the study stops at Tune's first step, before any trial starts."""
    import os
    import signal
    import time

    from ray.air._internal import usage

    class Collected:
        def __del__(self):  # Ctrl-C while the garbage collector runs this: Python drops the raise
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(2)  # the handler runs here

    monkeypatch.setattr(usage, "tag_callbacks", lambda callbacks: Collected())
    rc, _, err = run_cli(capsys, "run", str(write_spec(workdir, spec_dict())), "--plain")
    said = [line for line in err.strip().splitlines() if not line.startswith("note: ")]  # TINY's val
    assert rc == 130 and said == ["racecar-study: interrupted"], err  # no 'Exception ignored'
    assert not (workdir / "runs" / "tiny").exists()  # no trial ran: nothing recorded, nothing left
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_resume_refuses_a_spec_edited_after_the_launch(workdir, capsys):
    """An edited spec.yaml would relabel the saved trials (a longer train.epochs called every done
    trial stopped, by hand) and mix two studies' trials in one table; the saved hash tells. No Ray
    is needed: the folder is written as `run` writes it, without Tune's experiment."""
    from racecar_study.study.layout import StudyPaths
    from racecar_study.study.runner import LaunchOptions, record_launch
    from racecar_study.study.spec import parse_spec

    folder = workdir / "runs" / "edited"
    folder.mkdir(parents=True)
    spec = parse_spec({**spec_dict(), "name": "edited"})
    record_launch(StudyPaths(folder, str(folder)), spec, LaunchOptions(), trials=2)
    rc, _, err = run_cli(capsys, "resume", str(folder))
    assert rc == 2 and "no Ray Tune experiment state" in err, err  # the spec passed: Tune's state is next
    saved = (folder / "spec.yaml").read_text()
    (folder / "spec.yaml").write_text(saved.replace("epochs: 2", "epochs: 3"))
    rc, _, err = run_cli(capsys, "resume", str(folder))
    [line] = err.strip().splitlines()
    assert rc == 2 and f"{folder / 'spec.yaml'} was changed after the study was launched" in line, err
    assert sorted(p.name for p in folder.iterdir()) == ["spec.yaml", "study.json"]


def test_resume_takes_a_study_launched_before_a_launch_check_existed(workdir, capsys):
    """Checks added later for new launches (here: more trials than a space of choices holds) must
    not strand a study already running: `run` refuses the spec, `resume` goes on to Tune's state."""
    from racecar_study.study.layout import StudyPaths
    from racecar_study.study.runner import LaunchOptions, record_launch
    from racecar_study.study.spec import parse_spec

    raw = spec_dict(**{"search.space": {"method.name": {"choice": ["std", "ort"]}}, "search.num_samples": 3})
    rc, _, err = run_cli(capsys, "run", str(write_spec(workdir, raw)))
    assert rc == 2 and "holds 2 different configurations" in err, err
    folder = workdir / "runs" / "older"
    folder.mkdir(parents=True)
    record_launch(StudyPaths(folder, str(folder)), parse_spec({**raw, "name": "older"}), LaunchOptions(), 3)
    rc, _, err = run_cli(capsys, "resume", str(folder))
    assert rc == 2 and "no Ray Tune experiment state" in err, err
