"""Faults: an unreachable URI at launch, the server lost mid-run (spool, gap report, sync), secrets."""

from __future__ import annotations

import time

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from racecar_study.cli.main import main
from racecar_study.core.trainer import Callback
from racecar_study.tracking import StudyTracking, TrackingUnavailable, trial_callback
from racecar_study.tracking.server import free_port

EPOCHS = 6
KILL_AT = 3


def test_unreachable_uri_fails_fast_with_one_line(make_spec, tmp_path):
    dead = f"http://127.0.0.1:{free_port()}"
    start = time.monotonic()
    with pytest.raises(TrackingUnavailable) as err:
        StudyTracking.open(make_spec("nowhere", dead), tmp_path)
    assert time.monotonic() - start < 5
    msg = str(err.value)
    assert msg.startswith(f"tracking server {dead} unreachable: ") and "\n" not in msg


class _KillServer(Callback):
    def __init__(self, server):
        self.server = server

    def on_epoch_end(self, trainer, metrics):
        if trainer.epoch == KILL_AT:
            self.server.stop(kill=True)


def test_server_lost_mid_run_spools_then_sync_fills_in(
    mlflow_server, tiny_task, make_trainer, make_spec, tmp_path, capsys
):
    from mlflow import MlflowClient

    study_dir = tmp_path / "lossy"
    study_dir.mkdir()
    tracking = StudyTracking.open(make_spec("lossy", mlflow_server.url), study_dir)
    ctx = {**tracking.trial_context(), "min_interval_s": 0.0}
    net = tiny_task.net(seed=0)
    cb = trial_callback(ctx, "t0", "trial_t0", {"train": {"epochs": EPOCHS}})
    trainer = make_trainer(net, EPOCHS, [_KillServer(mlflow_server), cb])
    try:
        start = time.monotonic()
        trainer.fit((tiny_task.x_train, tiny_task.y_train), (tiny_task.x_val, tiny_task.y_val))
        cb.log_final(net, net.state_dict(), tiny_task.input_shape, tiny_task.x_train[:8])
        # A trial that starts while the server is down: no run yet, everything goes to the spool.
        late = trial_callback(ctx, "t1", "trial_t1", {"train": {"epochs": 2}})
        assert late.run_id is None
        make_trainer(tiny_task.net(seed=1), 2, [late]).fit((tiny_task.x_train, tiny_task.y_train))
        late.log_final(net, None, tiny_task.input_shape, tiny_task.x_train[:4])
        results = study_dir / "results.parquet"
        pq.write_table(pa.table({"trial_id": ["t0"], "mlflow_run_id": [cb.run_id]}), results)
        tracking.finish(results, cb.run_id)
        elapsed = time.monotonic() - start
        assert len(trainer.history) == EPOCHS  # training went on
        assert elapsed < 60, elapsed  # and was not stalled by retries
        gaps = tracking.gap_report()
        text = " ".join(gaps)
        assert (
            any(g.startswith("trial trial_t0") for g in gaps) and "metric values" in text and "models" in text
        )
        assert any(g.startswith("study run") for g in gaps) and "model registration" in text

        capsys.readouterr()
        assert main(["sync", str(study_dir)]) == 2  # server still down: one line, exit 2
        err = capsys.readouterr().err.strip()
        assert "unreachable" in err and "\n" not in err
    finally:
        mlflow_server.start()

    assert main(["sync", str(study_dir)]) == 0
    assert tracking.gap_report() == []
    c = MlflowClient(mlflow_server.url)
    run = c.get_run(cb.run_id)
    assert run.info.status == "FINISHED"
    for key in ("train_loss", "val_acc", "recon_err_1"):
        assert sorted(m.step for m in c.get_metric_history(cb.run_id, key)) == list(range(1, EPOCHS + 1))
    assert {"reconstructions.png", "svd"} <= {a.path for a in c.list_artifacts(cb.run_id)}
    assert len(run.outputs.model_outputs) == 1
    assert c.get_model_version_by_alias("lossy", "best").run_id == cb.run_id
    parent = c.get_run(tracking.parent_run_id)
    assert parent.info.status == "FINISHED" and parent.data.tags["racecar.best_run_id"] == cb.run_id
    assert [a.path for a in c.list_artifacts(tracking.parent_run_id, "results")] == [
        "results/results.parquet"
    ]
    late_runs = c.search_runs([tracking.experiment_id], "tags.`racecar.trial_id` = 't1'")
    assert len(late_runs) == 1 and late_runs[0].data.tags["mlflow.parentRunId"] == tracking.parent_run_id
    assert late_runs[0].info.run_name == "trial_t1" and late_runs[0].info.status == "FINISHED"
    assert late_runs[0].data.params["train.epochs"] == "2"
    assert len(c.get_metric_history(late_runs[0].info.run_id, "train_loss")) == 2
    assert main(["sync", str(study_dir)]) == 0  # nothing left: a second sync sends nothing
