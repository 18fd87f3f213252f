"""The trial side of study tracking (TrackingTrial) against a real MLflow server: `pre`'s
pretraining curves are logged once, also across a resume; a diverged trial's run fails, modelless."""

from __future__ import annotations

from racecar_study.study.experiment import build_run
from racecar_study.study.hooks import TrialInfo
from racecar_study.study.seeds import SeedGroup
from racecar_study.study.spec import apply_overrides
from racecar_study.study.tracking_hooks import CONTEXT_KEY, TrackingTrial
from racecar_study.tracking import StudyTracking

PRE_EPOCHS = 3


def _trial(spec, ctx, resumed: bool, state=None):
    run = build_run(spec, 0)
    if state is not None:
        run.trainer.load_state_dict(state)
    info = TrialInfo("p1", "trial_p1", spec, {}, {CONTEXT_KEY: ctx}, resumed, "node", "host", run)
    hook = TrackingTrial()
    hook.on_trial_start(info)
    return run, hook


def _train(run, hook, spec, epochs: int):
    run.trainer.cfg.epochs = spec.train.epochs
    group = SeedGroup([run], spec.metric)
    group.epochs = epochs
    while not group.done:
        hook.on_report(group.step(), None)
    hook.cb.close("FINISHED")


def test_pre_trial_logs_pretraining_curves_once(mlflow_server, make_spec, tmp_path):
    from mlflow import MlflowClient

    spec = apply_overrides(
        make_spec("pre_curves", mlflow_server.url), {"method.name": "pre", "method.pre_epochs": PRE_EPOCHS}
    )
    tracking = StudyTracking.open(spec, tmp_path / "pre_curves", ray_address="local")
    ctx = {**tracking.trial_context(), "min_interval_s": 0.0}

    run, hook = _trial(spec, ctx, resumed=False)
    _train(run, hook, spec, epochs=2)
    rows = run.trainer.pretrain_history
    assert [(r["layer"], r["epoch"]) for r in rows] == [(0, e) for e in range(1, PRE_EPOCHS + 1)]

    # the trial resumes from its epoch-2 state: no second pretraining, no second curve
    again, hook = _trial(spec, ctx, resumed=True, state=run.trainer.state_dict())
    assert again.trainer.pretrain_history == rows
    _train(again, hook, spec, epochs=spec.train.epochs)
    assert again.trainer.pretrain_history == rows

    client = MlflowClient(mlflow_server.url)
    history = client.get_metric_history(hook.cb.run_id, "pretrain_loss_0")
    assert sorted((m.step, m.value) for m in history) == [(r["epoch"], r["recon_loss"]) for r in rows]
    assert rows[-1]["recon_loss"] < rows[0]["recon_loss"]  # the autoencoder learnt
    steps = sorted(m.step for m in client.get_metric_history(hook.cb.run_id, "val_acc"))
    assert steps == list(range(1, spec.train.epochs + 1))
    tracking.finish(None, None)


def test_a_diverged_trial_fails_its_run_and_logs_no_model(mlflow_server, make_spec, tmp_path):
    from mlflow import MlflowClient

    spec = apply_overrides(
        make_spec("wild", mlflow_server.url), {"train.optimizer": "sgd", "train.lr": 1e12, "method.lam": 1e-3}
    )
    tracking = StudyTracking.open(spec, tmp_path / "wild", ray_address="local")
    ctx = {**tracking.trial_context(), "min_interval_s": 0.0}
    run, hook = _trial(spec, ctx, resumed=False)
    group = SeedGroup([run], spec.metric)
    while not group.done:
        metrics = group.step()
        hook.on_report(metrics, None)
    assert metrics["diverged"] == 1 and metrics["epoch"] == 1
    hook.on_trial_end(metrics)

    client = MlflowClient(mlflow_server.url)
    got = client.get_run(hook.cb.run_id)
    assert got.info.status == "FAILED"
    assert got.data.metrics["diverged"] == 1.0
    assert client.list_artifacts(hook.cb.run_id) == []  # no pictures of NaN weights
    assert client.search_logged_models([tracking.experiment_id]) == []
    assert hook.cb.gap_report() == []  # nothing was tried and failed
    tracking.finish(None, None)
