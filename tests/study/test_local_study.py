"""A small study end to end on the embedded local Ray: Optuna in SQLite, ASHA, results.parquet, and
the hooks seam that tracking plugs into."""

import re
import tempfile
from pathlib import Path

import optuna
import pyarrow.parquet as pq
import pytest
import ray
from study_helpers import dead_pid, run_cli, spec_dict, write_spec

from racecar_study.study import cluster, hooks, scratch
from racecar_study.study.hooks import DriverHook, StudyHooks, TrialHook
from racecar_study.study.results import FIXED

# One trial at a time, so ASHA's decisions do not depend on timing. The learning rates span five
# decades: the slow ones fall below the rung median after one epoch and are stopped.
STUDY = {
    "name": "e2e",
    "train.epochs": 4,
    "search": {
        "space": {
            "train.lr": {"loguniform": [1e-6, 3e-2]},
            "method.name": {"choice": ["std", "rr"]},
            "method.lam": {"loguniform": [1e-6, 1e-4], "when": {"method.name": "rr"}},
        },
        "num_samples": 6,
        "max_concurrent": 1,
        "seed": 3,
    },
    "scheduler": {"kind": "asha", "grace_period": 1, "reduction_factor": 2},
}


def _recording_hooks(seen: dict) -> StudyHooks:
    # Defined in a function, so that cloudpickle ships the trial hook to the workers by value.
    class Driver(DriverHook):
        def on_study_start(self, study):
            seen["study"] = study.spec.name
            return {"experiment_id": "exp-1"}

        def on_trial_finish(self, row):
            seen.setdefault("finished", []).append(row["trial_id"])

        def on_study_end(self, table):
            seen["rows"] = table.num_rows

    class Trial(TrialHook):
        def on_trial_start(self, trial):
            assert trial.context == {"experiment_id": "exp-1"} and not trial.resumed
            return {"mlflow_run_id": f"run-{trial.trial_id}"}

    return StudyHooks(driver=[Driver()], trial=[Trial()])


def test_local_study_end_to_end(workdir, capsys, monkeypatch):
    seen: dict = {}
    monkeypatch.setattr(hooks, "_PROVIDERS", [lambda spec: _recording_hooks(seen)])
    spec = write_spec(workdir, spec_dict(**STUDY))
    # a checkpoint folder that a trial Tune killed inside `tune.report` left behind
    left = Path(tempfile.gettempdir(), f"{scratch.PREFIX}{scratch._host()}-{dead_pid()}-x")
    (left / "seed_0").mkdir(parents=True)
    rc, out, err = run_cli(capsys, "run", str(spec), "--plain")
    assert rc == 0, err
    assert not left.exists()  # a trial's start swept it
    assert not ray.is_initialized()  # the runner shut its embedded Ray down
    # TINY's mnist5k has no validation split: val_acc falls back to the test split, and it says so
    assert "note: val_acc is measured on the test split (mnist5k has no validation split)" in err, err

    folder = workdir / "runs" / "e2e"
    table = pq.read_table(folder / "results.parquet")
    rows = table.to_pylist()
    assert len(rows) == 6 and len({r["trial_id"] for r in rows}) == 6
    for name, _ in FIXED:
        assert name in table.column_names
    assert {"config.train.lr", "config.method.name", "config.method.lam"} <= set(table.column_names)
    assert all(r["mlflow_run_id"] == f"run-{r['trial_id']}" for r in rows)  # set by the trial hook
    assert seen["study"] == "e2e" and sorted(seen["finished"]) == sorted(r["trial_id"] for r in rows)
    assert seen["rows"] == 6

    statuses = [r["status"] for r in rows]
    assert set(statuses) <= {"done", "stopped"} and "stopped" in statuses and "done" in statuses
    for r in rows:
        assert r["epochs"] == (4 if r["status"] == "done" else r["epochs"]) and 1 <= r["epochs"] <= 4
        assert r["best_metric"] >= r["final_metric"] - 1e-12 and r["wall_time_s"] > 0
        assert r["node_id"] and r["hostname"] and r["device"] == "cpu"
        assert Path(r["checkpoint_path"]).is_dir()
        # every epoch checkpointed, spec.checkpoint.keep (2 by default) left once the trial ended
        assert len(list(Path(r["checkpoint_path"]).parent.glob("checkpoint_*"))) == min(2, r["epochs"])
        assert (r["config.method.lam"] is None) == (r["config.method.name"] != "rr")

    study = optuna.load_study(study_name="e2e", storage=f"sqlite:///{folder / 'optuna.db'}")
    finished = [t for t in study.trials if t.state.is_finished()]
    assert len(finished) == 6
    assert (folder / "spec.yaml").is_file() and (folder / "study.json").is_file()

    assert "best trials of e2e" in out and "racecar-study results" in out
    # the command's whole wall time (Ray's start-up included), then the part Tune's run took
    timed = re.search(r"wall time ([\d.]+) s \(([\d.]+) s of it in Ray Tune", out)
    total, in_tune = float(timed[1]), float(timed[2])
    assert 0 < in_tune < total
    rc, out, _ = run_cli(capsys, "results", str(folder), "--top", "3")
    assert rc == 0 and out.count("│ done") + out.count("│ stopped") == 3
    rc, _, err = run_cli(capsys, "results", str(folder), "--top", "0")
    assert rc == 2 and err.strip().endswith("argument --top: must be > 0, got 0")

    # every planned trial has ended: resume says so and starts no Ray
    saved = (folder / "results.parquet").read_bytes()
    monkeypatch.setattr(cluster, "connect", lambda address: pytest.fail("resume started Ray"))
    rc, out, _ = run_cli(capsys, "resume", str(folder), "--plain")
    assert rc == 0 and "nothing to resume: all 6 trials have ended" in out
    assert (folder / "results.parquet").read_bytes() == saved


def test_a_searched_epoch_count_is_run_to_its_end_under_asha(workdir, capsys):
    """ASHA's max_t was train.epochs: a trial the search gave more epochs was cut there and called
    done, and one given fewer ran them all and was called stopped. Grace 5 puts ASHA's one rung at
    epoch 5, which the 2-epoch trial never reaches and the 8-epoch one reaches alone."""
    raw = spec_dict(
        **{
            "name": "epochs",
            "data.val_fraction": 0.2,  # a validation split: no note about selecting on test data
            "train.epochs": 5,
            "search.space": {"train.epochs": {"choice": [2, 8]}},
            "search.algorithm": "grid",
            "search.max_concurrent": 1,
            "scheduler": {"kind": "asha", "grace_period": 5, "reduction_factor": 2},
        }
    )
    rc, _, err = run_cli(capsys, "run", str(write_spec(workdir, raw)), "--plain")
    assert rc == 0 and "test split" not in err, err
    rows = pq.read_table(workdir / "runs" / "epochs" / "results.parquet").to_pylist()
    ran = sorted((r["config.train.epochs"], r["epochs"], r["status"]) for r in rows)
    assert ran == [(2, 2, "done"), (8, 8, "done")], ran
