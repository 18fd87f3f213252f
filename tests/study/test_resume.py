"""A study whose driver is killed mid-way resumes: exactly num_samples trials in the end, and the
trials that had finished before the kill are not trained again."""

import json
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


def _reports(trial_dir: Path) -> tuple[str, list[int]]:
    """(trial id, the epoch of every report it ever made, across the kill and the resume)."""
    rows = [json.loads(line) for line in (trial_dir / "result.json").read_text().splitlines() if line.strip()]
    return rows[0]["trial_id"], [r["epoch"] for r in rows]


def test_killed_study_resumes_without_rerunning_finished_trials(workdir, capsys, killed_driver):
    spec = write_spec(workdir, STUDY)
    folder = workdir / "runs" / "resume"
    results = folder / "results.parquet"
    before = killed_driver.run(["run", str(spec), "--plain"], workdir, results, workdir / "driver.log")
    assert len(killed_driver.finished(results)) < NUM_SAMPLES, "the study ended before the kill"

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


def test_resume_mends_state_the_kill_cut_short(workdir, capsys, killed_driver):
    """The kill can land while Tune copies its state from Ray's staging folder into the study
    folder; here it is made to, by cutting the newest searcher state to nothing after the kill.
    Without the mend, Tune would start a new, empty experiment over the study."""
    spec = write_spec(workdir, {**STUDY, "name": "cut"})
    folder = workdir / "runs" / "cut"
    results = folder / "results.parquet"
    before = killed_driver.run(["run", str(spec), "--plain"], workdir, results, workdir / "driver.log")
    cut = sorted((folder / "tune").glob("search_gen_state-*"))[-1]
    cut.write_bytes(b"")

    rc, out, err = run_cli(capsys, "resume", str(folder), "--plain")
    assert rc == 0, err
    assert cut.stat().st_size > 0
    rows = pq.read_table(results).to_pylist()
    assert len(rows) == NUM_SAMPLES and {r["status"] for r in rows} == {"done"}
    assert before <= {r["trial_id"] for r in rows}


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
