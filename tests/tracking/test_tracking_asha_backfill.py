"""Trials stopped by ASHA send nothing at their rungs (issue 5: no requests inside training); the
driver logs what they still held from Tune's result.json. Against the real `mlflow server`:
every trial, stopped or not, ends with its full per-epoch history, each step exactly once, even
when the stopped trial's own tracker sends the same epochs too."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

from racecar_study.cli.main import main
from racecar_study.study.hooks import DriverHook
from racecar_study.study.tracking_hooks import TIMESTAMP_KEY, TrackingDriver, reported_epochs
from racecar_study.tracking import StudyTracking, trial_callback

EPOCHS = 4
# One trial at a time, in this order (grid): a good one, a hopeless one (stopped at the rung, epoch
# 3; the next trial on its worker closes its stale tracker), another good one, and a hopeless one
# last (stopped, nothing after it on the worker). train_loss (min) keeps ASHA's choice clear-cut.
LRS = [1e-2, 1e-7, 5e-3, 2e-7]
SPEC = {
    "name": "asha_backfill",
    "data": {"name": "peak", "n_per_class": 10},
    "model": {"arch": "peak_mlp", "hidden": 16},
    "method": {"name": "rr", "lam": 1e-6},
    "train": {"epochs": EPOCHS, "batch_size": 10},
    "metric": "train_loss",
    "mode": "min",
    "search": {"space": {"train.lr": {"choice": LRS}}, "algorithm": "grid", "max_concurrent": 1},
    "scheduler": {"kind": "asha", "grace_period": 3, "reduction_factor": 2},
    "checkpoint": {"every": 1, "keep": EPOCHS},
}
PROBED = ("train_loss", "val_acc", "lr")
TUNE_KEYS = {"pid", "timestamp", "time_total_s", "time_this_iter_s", "training_iteration", "done"}


def _steps(client, run_id: str, key: str) -> list[int]:
    return [m.step for m in client.get_metric_history(run_id, key)]


def _once(steps: list[int], last: int) -> bool:
    return sorted(steps) == list(range(1, last + 1)) and max(Counter(steps).values()) == 1


class _Probe(DriverHook):
    """After the tracking hook has handled a finished trial (and before Tune hands its worker to the
    next trial, which would close its stale tracker): the steps its run has then."""

    def __init__(self, uri: str):
        self.uri, self.seen = uri, {}

    def on_trial_finish(self, row):
        from mlflow import MlflowClient

        client = MlflowClient(self.uri)
        self.seen[row["trial_id"]] = {k: _steps(client, row["mlflow_run_id"], k) for k in PROBED}


def test_asha_stopped_trials_have_their_full_history_once(mlflow_server, tmp_path):
    from mlflow import MlflowClient

    from racecar_study.study.runner import LaunchOptions, run_study
    from racecar_study.study.spec import StudySpec
    from racecar_study.study.tracking_hooks import tracking_hooks

    spec = StudySpec.model_validate(SPEC)
    hooks = tracking_hooks(spec)
    probe = _Probe(mlflow_server.url)
    hooks.driver.append(probe)
    opts = LaunchOptions(storage=str(tmp_path / "runs"), tracking_uri=mlflow_server.url, hooks=hooks)
    outcome = run_study(spec, opts)
    rows = outcome.table.to_pylist()
    assert len(rows) == len(LRS)
    stopped = [r for r in rows if r["status"] == "stopped"]
    done = [r for r in rows if r["status"] == "done"]
    assert stopped and done, [(r["status"], r["epochs"]) for r in rows]
    assert all(r["epochs"] < EPOCHS for r in stopped)
    for row in rows:  # complete as soon as the driver had seen the trial finish
        for key, steps in probe.seen[row["trial_id"]].items():
            assert _once(steps, row["epochs"]), (row["trial_id"], row["status"], key, steps)

    client = MlflowClient(mlflow_server.url)
    keys = set(client.get_run(done[0]["mlflow_run_id"]).data.metrics)
    assert {*PROBED, "recon_err_0"} <= keys
    assert not keys & (TUNE_KEYS | {TIMESTAMP_KEY, "epoch"}), keys
    for row in rows:  # and still once each after the stale trackers and the workers have closed
        run = client.get_run(row["mlflow_run_id"])
        assert set(run.data.metrics) == keys, row["trial_id"]
        assert run.info.status == {"done": "FINISHED", "stopped": "KILLED"}[row["status"]]
        for key in keys:
            steps = _steps(client, row["mlflow_run_id"], key)
            assert _once(steps, row["epochs"]), (row["trial_id"], row["status"], key, steps)

    # The rows are the reports' rows: same values, same timestamps (what makes a second send of a
    # step by the trial a no-op for MLflow).
    trial_dir = next((outcome.paths.folder / "tune").glob(f"*{stopped[0]['trial_id']}"))
    reports = reported_epochs(trial_dir / "result.json")
    assert [s for s, _, _ in reports] == list(range(1, stopped[0]["epochs"] + 1))
    history = {m.step: m for m in client.get_metric_history(stopped[0]["mlflow_run_id"], "train_loss")}
    for step, ts, metrics in reports:
        assert (history[step].value, history[step].timestamp) == (metrics["train_loss"], ts)


def _tune_like_result_file(path: Path, reports: list[tuple[int, int, dict]]) -> None:
    """Lines as Ray Tune writes them: the report, our timestamp, Tune's own keys; a resumed trial's
    repeated epoch and a last line cut short by a kill."""
    lines = []
    for n, (step, ts, metrics) in enumerate(reports, start=1):
        tune = {"timestamp": ts // 1000, "pid": 123, "time_total_s": 0.1 * n, "training_iteration": n}
        lines.append(json.dumps({**metrics, "epoch": step, TIMESTAMP_KEY: ts, **tune, "done": False}))
    lines.insert(1, lines[0].replace('"pid": 123', '"pid": 99'))  # epoch 1 again (a restore)
    path.write_text("\n".join(lines) + '\n{"train_loss": 0.1, "ep')


def test_driver_backfill_and_the_stale_tracker_leave_each_step_once(mlflow_server, make_spec, tmp_path):
    """A trial stopped at epoch 4 that had sent epochs 1-2: the driver logs 3-4 from its reports,
    then the trial's stale tracker sends 3-4 as well (it raced the driver): one row per step."""
    from mlflow import MlflowClient

    spec = make_spec("backfill_race", mlflow_server.url)
    tracking = StudyTracking.open(spec, tmp_path / "study")
    ctx = {**tracking.trial_context(), "min_interval_s": 3600}  # nothing leaves unless flushed
    cb = trial_callback(ctx, "t7", "trial_t7", {"train": {"epochs": 6}})
    reports = []
    for step in range(1, 5):
        metrics = {"train_loss": 1.0 / step, "val_acc": 0.1 * step, "lr": 1e-3, "device": "cpu"}
        ts = 1_700_000_000_000 + 1_000 * step  # not now: the rows must carry the given time
        cb.log_epoch(step, {**metrics, "epoch": step}, ts)
        reports.append((step, ts, metrics))
        if step == 2:
            assert cb.flush(timeout=10)  # what the trial sent before it was stopped
    client = MlflowClient(mlflow_server.url)
    assert _steps(client, cb.run_id, "val_acc") == [1, 2]

    result_file = tmp_path / "result.json"
    _tune_like_result_file(result_file, reports)
    epochs = reported_epochs(result_file)
    assert epochs == [(s, ts, {**m, "epoch": s}) for s, ts, m in reports]

    driver = TrackingDriver()
    driver.tracking = tracking
    row = {"trial_id": "t7", "status": "stopped", "mlflow_run_id": cb.run_id, "result_file": str(result_file)}
    driver.on_trial_finish(row)
    assert client.get_run(cb.run_id).info.status == "KILLED"
    for key in ("train_loss", "val_acc", "lr"):
        assert _once(_steps(client, cb.run_id, key), 4), key
    assert set(client.get_run(cb.run_id).data.metrics) == {"train_loss", "val_acc", "lr"}
    assert tracking.backfill_trial("t7", cb.run_id, epochs) == 0  # nothing missing any more

    assert cb.sender.flush(timeout=10)  # the stale tracker's copy of epochs 3-4 goes out anyway
    cb.close("KILLED")
    for key in ("train_loss", "val_acc", "lr"):
        steps = _steps(client, cb.run_id, key)
        assert _once(steps, 4), (key, steps)
    assert tracking.gap_report() == []


def test_stale_tracker_skips_the_steps_the_run_has(mlflow_server, make_spec, tmp_path):
    spec = make_spec("stale_skip", mlflow_server.url)
    tracking = StudyTracking.open(spec, tmp_path / "study")
    cb = trial_callback({**tracking.trial_context(), "min_interval_s": 3600}, "t8", "trial_t8", {})
    reports = [(s, 1_000 * s, {"train_loss": 1.0 / s}) for s in (1, 2, 3)]
    for step, ts, metrics in reports:
        cb.log_epoch(step, metrics, ts)
    assert tracking.backfill_trial("t8", cb.run_id, reports[:2]) == 2
    sent, real = [], cb.link.client.log_batch

    def log_batch(run_id, metrics=(), **kw):
        sent.append(metrics)
        return real(run_id, metrics, **kw)

    cb.link.client.log_batch = log_batch
    cb.close("KILLED")
    assert [m.step for batch in sent for m in batch] == [3]
    from mlflow import MlflowClient

    assert _once(_steps(MlflowClient(mlflow_server.url), cb.run_id, "train_loss"), 3)


def test_reported_epochs_without_a_file():
    assert reported_epochs(None) == [] and reported_epochs("/nonexistent/result.json") == []


def test_backfill_while_the_server_is_down_is_spooled_then_synced_once(
    mlflow_server, make_spec, tmp_path, capsys
):
    from mlflow import MlflowClient

    spec = make_spec("backfill_down", mlflow_server.url)
    tracking = StudyTracking.open(spec, tmp_path / "study")
    cb = trial_callback({**tracking.trial_context(), "min_interval_s": 3600}, "t9", "trial_t9", {})
    reports = [(s, 1_000 * s, {"train_loss": 1.0 / s, "val_acc": 0.5}) for s in (1, 2, 3)]
    for step, ts, metrics in reports:  # a failed trial: its worker still holds all three epochs
        cb.log_epoch(step, metrics, ts)
    result_file = tmp_path / "result.json"
    _tune_like_result_file(result_file, reports)
    driver = TrackingDriver()
    driver.tracking = tracking
    mlflow_server.stop(kill=True)
    try:
        driver.on_trial_finish(
            {"trial_id": "t9", "status": "error", "mlflow_run_id": cb.run_id, "result_file": str(result_file)}
        )
        gaps = " ".join(tracking.gap_report())
        assert "trial t9" in gaps and "6 metric values" in gaps, gaps
    finally:
        mlflow_server.start()
    assert main(["sync", str(tmp_path / "study")]) == 0
    capsys.readouterr()
    assert tracking.gap_report() == []
    client = MlflowClient(mlflow_server.url)
    for key in ("train_loss", "val_acc"):
        assert _once(_steps(client, cb.run_id, key), 3), key
    assert cb.sender.flush(timeout=10)  # the worker's copy arrives after all
    for key in ("train_loss", "val_acc"):
        assert _once(_steps(client, cb.run_id, key), 3), key
    cb.close("FAILED")
