"""A `pre` trial logs its layer-wise pretraining curves to its MLflow run once, also across a resume."""

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
