"""A simulated 3-trial study logged over HTTP to a real server, then browsed with MlflowClient."""

from __future__ import annotations

import copy
import pickle

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch

from racecar_study.core.trainer import Callback
from racecar_study.tracking import StudyTracking, load_study_runs, trial_callback

EPOCHS = 4
TRIALS = ("t0", "t1", "t2")


class _Snapshot(Callback):
    """Keeps the trainer state after epoch `at` (for the resume test) and the best weights."""

    def __init__(self, at: int):
        self.at, self.state, self.best, self.best_acc = at, None, None, -1.0

    def on_epoch_end(self, trainer, metrics):
        if trainer.epoch == self.at:
            self.state = copy.deepcopy(trainer.state_dict())
        if metrics.get("val_acc", 0.0) > self.best_acc:
            self.best_acc, self.best = metrics["val_acc"], copy.deepcopy(trainer.net.state_dict())


def run_trial(ctx, task, make_trainer, trial_id, snapshot_at=2, state=None):
    net = task.net(seed=int(trial_id[1:]))
    params = {
        "method": {"name": "rr", "lam": 10.0 ** -(6 + int(trial_id[1:]))},
        "train": {"epochs": EPOCHS},
        "_tracking": ctx,
    }
    cb = trial_callback(ctx, trial_id, f"trial_{trial_id}", params)
    snap = _Snapshot(snapshot_at)
    trainer = make_trainer(net, EPOCHS, [snap, cb])
    if state is not None:
        trainer.load_state_dict(state)
    trainer.fit((task.x_train, task.y_train), (task.x_val, task.y_val))
    cb.log_final(net, snap.best, task.input_shape, task.x_train[:8])
    return cb, snap, trainer


@pytest.fixture(scope="module")
def study(mlflow_server, tiny_task, make_trainer, make_spec, tmp_path_factory):
    spec = make_spec("http_study", mlflow_server.url)
    study_dir = tmp_path_factory.mktemp("runs") / "http_study"
    study_dir.mkdir()
    tracking = StudyTracking.open(spec, study_dir, ray_address="ray://head:10001")
    ctx = tracking.trial_context()
    trials = {t: run_trial(ctx, tiny_task, make_trainer, t) for t in TRIALS}
    best_id = max(TRIALS, key=lambda t: trials[t][1].best_acc)
    results = study_dir / "results.parquet"
    pq.write_table(
        pa.table({"trial_id": list(TRIALS), "mlflow_run_id": [trials[t][0].run_id for t in TRIALS]}), results
    )
    tracking.finish(results, trials[best_id][0].run_id)
    from mlflow import MlflowClient

    return {
        "spec": spec,
        "dir": study_dir,
        "tracking": tracking,
        "trials": trials,
        "best": best_id,
        "client": MlflowClient(mlflow_server.url),
        "url": mlflow_server.url,
        "ctx": ctx,
    }


def _children(study):
    c, t = study["client"], study["tracking"]
    return c.search_runs([t.experiment_id], f"tags.`mlflow.parentRunId` = '{t.parent_run_id}'")


def test_one_parent_and_nested_children(study):
    c, t = study["client"], study["tracking"]
    parents = c.search_runs([t.experiment_id], "tags.`racecar.role` = 'study'")
    assert [p.info.run_id for p in parents] == [t.parent_run_id]
    parent = parents[0]
    assert parent.info.status == "FINISHED"
    tags = parent.data.tags
    assert tags["racecar.study"] == "http_study" and tags["racecar.spec_hash"] == study["spec"].hash()
    assert tags["racecar.ray_address"] == "ray://head:10001"
    assert {"racecar.version.torch", "racecar.version.mlflow", "racecar.version.pyarrow"} <= set(tags)
    kids = _children(study)
    assert sorted(k.data.tags["racecar.trial_id"] for k in kids) == list(TRIALS)
    assert {k.info.run_name for k in kids} == {f"trial_{x}" for x in TRIALS}
    assert all(k.info.status == "FINISHED" for k in kids)
    assert c.get_experiment(t.experiment_id).name == "http_study"
    assert study["tracking"].gap_report() == []


def test_params_and_metric_histories(study):
    c = study["client"]
    for kid in _children(study):
        p = kid.data.params
        assert p["train.epochs"] == str(EPOCHS) and "method.lam" in p
        assert not any(k.startswith("_tracking") for k in p)
        for key in ("train_loss", "val_acc", "reg_loss", "lr", "recon_err_0"):
            hist = c.get_metric_history(kid.info.run_id, key)
            assert sorted(m.step for m in hist) == list(range(1, EPOCHS + 1)), key
        assert "epoch" not in kid.data.metrics


def test_artifacts_pictures_model_spec(study, tmp_path):
    c, t = study["client"], study["tracking"]
    top = {a.path for a in c.list_artifacts(t.parent_run_id)}
    assert {"spec", "results"} <= top
    assert [a.path for a in c.list_artifacts(t.parent_run_id, "results")] == ["results/results.parquet"]
    spec_text = open(c.download_artifacts(t.parent_run_id, "spec/spec.yaml", str(tmp_path))).read()
    assert "name: http_study" in spec_text
    for kid in _children(study):
        rid = kid.info.run_id
        paths = {a.path for a in c.list_artifacts(rid)} | {a.path for a in c.list_artifacts(rid, "svd")}
        assert {"reconstructions.png", "svd/vectors.png"} <= paths
        outs = kid.outputs.model_outputs
        assert len(outs) == 1
        model = c.get_logged_model(outs[0].model_id)
        assert model.source_run_id == rid and str(model.status) in ("READY", "LoggedModelStatus.READY")


def test_registered_best_model_predicts_like_the_checkpoint(study, tiny_task, monkeypatch, tmp_path):
    import mlflow.pytorch

    c = study["client"]
    version = c.get_model_version_by_alias("http_study", "best")
    best_cb, best_snap, _ = study["trials"][study["best"]]
    assert version.run_id == best_cb.run_id
    monkeypatch.setenv("MLFLOW_TRACKING_URI", study["url"])  # not mlflow.set_tracking_uri: it sticks
    loaded = mlflow.pytorch.load_model("models:/http_study@best", dst_path=str(tmp_path), map_location="cpu")
    assert type(loaded).__name__ == "RacecarNet"
    reference = tiny_task.net(seed=0)
    reference.load_state_dict(best_snap.best)
    reference.eval()
    loaded.eval()
    x = tiny_task.x_val
    with torch.no_grad():
        np.testing.assert_allclose(loaded(x).numpy(), reference(x).numpy(), rtol=0, atol=1e-6)


def test_load_study_runs(study):
    table = load_study_runs("http_study", tracking_uri=study["url"])
    assert table.num_rows == 3
    assert table.column("trial_id").to_pylist() == list(TRIALS)
    assert set(table.column("parent_run_id").to_pylist()) == {study["tracking"].parent_run_id}
    assert table.column("status").to_pylist() == ["FINISHED"] * 3
    assert "params.method.lam" in table.column_names and "metrics.val_acc" in table.column_names
    assert table.schema.field("metrics.val_acc").type == "double"
    assert load_study_runs("no_such_study", tracking_uri=study["url"]).num_rows == 0


def test_fill_run_ids_completes_the_results_table(study, tmp_path):
    path = tmp_path / "results.parquet"
    pq.write_table(
        pa.table({"trial_id": ["t0", "t1", "t2", "t9"], "mlflow_run_id": pa.nulls(4, pa.string())}), path
    )
    assert study["tracking"].fill_run_ids(path) == 3
    got = dict(zip(*pq.read_table(path).to_pydict().values()))
    assert got == {t: study["trials"][t][0].run_id for t in TRIALS} | {"t9": None}
    assert study["tracking"].fill_run_ids(path) == 0


def test_trial_context_is_small_and_picklable(study):
    ctx = study["ctx"]
    assert pickle.loads(pickle.dumps(ctx)) == ctx
    assert {
        "tracking_uri",
        "experiment_id",
        "parent_run_id",
        "log_models",
        "log_every",
        "study",
        "spool_dir",
    } <= set(ctx)
    assert len(pickle.dumps(ctx)) < 2000


def test_resume_continues_the_same_runs(study, mlflow_server, tiny_task, make_trainer):
    t0 = study["tracking"]
    again = StudyTracking.open(study["spec"], study["dir"], resume=True)
    assert again.parent_run_id == t0.parent_run_id and again.experiment_id == t0.experiment_id
    cb_old, snap_old, trainer_old = study["trials"]["t1"]
    cb, _, trainer = run_trial(again.trial_context(), tiny_task, make_trainer, "t1", state=snap_old.state)
    assert cb.run_id == cb_old.run_id
    assert trainer.history[-1]["train_loss"] == pytest.approx(trainer_old.history[-1]["train_loss"])
    again.finish(None, None)
    kids = _children(study)
    assert len(kids) == 3
    hist = study["client"].get_metric_history(cb.run_id, "train_loss")
    assert sorted(m.step for m in hist) == list(range(1, EPOCHS + 1))  # resumed epochs not duplicated
    parents = study["client"].search_runs([t0.experiment_id], "tags.`racecar.role` = 'study'")
    assert len(parents) == 1 and parents[0].data.tags["racecar.resumed"] == "1"
