"""MLflow tracking for studies, plugged into the hooks seam (hooks.py); racecar_study.tracking does
the MLflow work, this module only says when.

Driver: `on_study_start` opens the study's experiment and parent run (re-opened on resume) before
anything is created, so an unreachable server stops the launch; trials get `trial_context()` under
the context key "mlflow" (the tracking URI travels explicitly: trials may run on other nodes). A
trial stopped by ASHA or failed cannot end its own run: `on_trial_finish` ends it (KILLED/FAILED).
`on_study_end` fills results.parquet's mlflow_run_id column, drops child runs of trials the study
forgot (started after Tune's last snapshot before a kill), logs the table, registers the best
finished trial's model (alias `best`) and prints what could not be logged.

Trial: the child run (found again by trial id on resume), the flattened trial config as params,
every report's numeric metrics (step = epoch), `pre`'s layer-wise pretraining curves
(`pretrain_loss_<layer>`, step = pretraining epoch; first seed) with the first report, and,
once, when the trial runs to its end: the best weights seen (by the study metric; those of the
first seed, which is the one logged) as an MLflow model, with pictures.

Metrics leave a trial in background batches at most every MIN_INTERVAL_S and nothing is sent at
ASHA rungs (issue 5: requests during training cost it time), so a trial stopped there (or failed)
may end still holding its last epochs. The driver fills them in: `on_trial_finish` reads the
trial's reports as Tune logged them (result.json) and logs the steps its run lacks
(StudyTracking.backfill_trial). Every report carries the timestamp its metrics were logged with
(TIMESTAMP_KEY), so the driver's rows are the trial's very rows: MLflow's SQL store keeps one of
two identical rows, so a stale tracker of that trial sending them too (at the next trial of its worker, or the
worker's exit) leaves one row per step; it also skips the steps the run already has.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Any

from racecar_study.study.best import BestWeights
from racecar_study.study.hooks import DriverHook, StudyHooks, StudyInfo, TrialHook, TrialInfo, register_hooks
from racecar_study.study.spec import StudySpec

CONTEXT_KEY = "mlflow"
# Metrics leave the trial in background batches at most this often; the rest goes out when it ends
# (or, stopped by ASHA, from the driver: on_trial_finish). More often costs training time on small
# nets (issue 5: a request is GIL time here and CPU for a local server).
MIN_INTERVAL_S = 5.0
TIMESTAMP_KEY = "mlflow_timestamp_ms"  # added to every report: the timestamp of its metric rows
SAMPLE_ROWS = 8
PARAM_SECTIONS = ("data", "model", "method", "train", "seeds", "metric", "mode")
_STATUS = {"stopped": "KILLED", "diverged": "FAILED", "error": "FAILED"}


def tracking_hooks(spec: StudySpec) -> StudyHooks:
    if not spec.tracking.enabled:
        return StudyHooks()
    return StudyHooks(driver=[TrackingDriver()], trial=[TrackingTrial()])


register_hooks(tracking_hooks)


class TrackingDriver(DriverHook):
    def __init__(self):
        self.tracking = None
        self.results = None

    def on_study_start(self, study: StudyInfo) -> dict[str, Any]:
        from racecar_study.tracking import StudyTracking

        self.results = study.folder / "results.parquet"
        self.tracking = StudyTracking.open(
            study.spec, study.folder, ray_address=study.address, resume=study.resumed
        )
        return {CONTEXT_KEY: {**self.tracking.trial_context(), "min_interval_s": MIN_INTERVAL_S}}

    def on_trial_finish(self, row: dict[str, Any]) -> None:
        if self.tracking is None or not self.tracking.enabled:
            return
        epochs = reported_epochs(row.get("result_file"))
        if epochs:  # a trial that ran to its end has sent them all: one history request finds none missing
            self.tracking.backfill_trial(row["trial_id"], row.get("mlflow_run_id"), epochs)
        status = _STATUS.get(row["status"])
        if status:
            self.tracking.end_trial(row["trial_id"], row.get("mlflow_run_id"), status)

    def on_study_end(self, table) -> None:
        if self.tracking is None or not self.tracking.enabled:
            return
        from racecar_study.study.results import read_results

        t = self.tracking
        t.fill_run_ids(self.results)
        filled = read_results(self.results) if self.results.is_file() else table
        rows = filled.to_pylist()
        t.prune_children(r["trial_id"] for r in rows)
        unfinished = any(r["status"] in ("pending", "running") for r in rows)
        t.finish(self.results, best_run_id(filled), "KILLED" if unfinished else "FINISHED")
        for line in t.gap_report():
            print(f"tracking: {line}", file=sys.stderr)
        self.tracking = None

    def on_study_abort(self, error: BaseException) -> None:
        if self.tracking is not None:
            self.tracking.finish(None, None, "FAILED")
            self.tracking = None


def best_run_id(table) -> str | None:
    """The run of the best trial that ran to its end (only those log a model), else of the best one."""
    from racecar_study.study.results import best_rows

    rows = best_rows(table, k=table.num_rows)
    for row in [r for r in rows if r["status"] == "done"] + rows:
        if row.get("mlflow_run_id"):
            return row["mlflow_run_id"]
    return None


_LIVE: list = []  # this worker's trial callbacks; Ray reuses the worker for the next trial


class TrackingTrial(TrialHook):
    def on_trial_start(self, trial: TrialInfo) -> dict[str, Any]:
        from racecar_study.tracking import trial_callback

        for stale in _LIVE:  # a trial of this worker stopped by ASHA: send what it left (not sent yet)
            stale.close("KILLED")
        _LIVE.clear()
        ctx = trial.context.get(CONTEXT_KEY) or {"enabled": False}
        self.run, self.metric = trial.run, trial.spec.metric
        self.best = BestWeights(trial.spec.mode)
        self.best.load(trial.checkpoint_dir)  # resumed: the best weights seen before the restart
        self.cb = trial_callback(ctx, trial.trial_id, trial.trial_name, trial_params(trial.spec))
        self.active = self.cb.run_id is not None or bool(ctx.get("enabled"))
        self.pretrain_logged = trial.resumed  # a resumed trial's run has its pretraining curves
        _LIVE.append(self.cb)
        if self.run is not None:
            self.cb.on_fit_start(self.run.trainer)  # resumed: skips the epochs already logged
        return {"mlflow_run_id": self.cb.run_id} if self.cb.run_id else {}

    def on_report(self, metrics: dict[str, Any], checkpoint_dir) -> dict[str, Any] | None:
        if not self.active or self.run is None:
            return None
        # Nothing is sent here, even where Tune may stop the trial (an ASHA rung): the driver logs
        # what a stopped trial still held from the reports, which carry the rows' timestamp.
        ts = time.time_ns() // 1_000_000
        epoch = int(metrics.get("epoch", self.run.trainer.epoch))
        if not self.pretrain_logged:
            self.pretrain_logged = True
            for row in self.run.trainer.pretrain_history:
                curve = {f"pretrain_loss_{int(row['layer'])}": row["recon_loss"]}
                self.cb.log_epoch(int(row["epoch"]), curve, ts)
        self.cb.log_epoch(epoch, metrics, ts)
        self.best.offer(metrics.get(self.metric), epoch, self.run.net)
        if checkpoint_dir is not None:
            self.best.save(checkpoint_dir)
        return {TIMESTAMP_KEY: ts}

    def on_trial_end(self, metrics: dict[str, Any]) -> None:
        if not self.active or self.run is None:
            self.cb.close("FINISHED")
            return
        if metrics.get("diverged"):  # weights not finite: no model, no pictures
            self.cb.close("FAILED")
        else:
            splits = self.run.splits
            self.cb.on_fit_end(self.run.trainer)
            self.cb.log_final(
                self.run.net,
                self.best.state,
                tuple(splits.input_shape),
                splits.x_train[:SAMPLE_ROWS],
                step=self.best.epoch,
                status="FINISHED",
            )
        if self.cb in _LIVE:
            _LIVE.remove(self.cb)


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _not_reported() -> frozenset[str]:
    """Keys Ray Tune adds to each report (and ours): not the trial's metrics."""
    from ray.tune import result as r

    tune_keys = {r.DONE, r.TRIAL_ID, r.EXPERIMENT_TAG, r.TIMESTEPS_THIS_ITER, r.EPISODES_THIS_ITER}
    return frozenset({*r.AUTO_RESULT_KEYS, *r.DEBUG_METRICS, *tune_keys, TIMESTAMP_KEY})


def reported_epochs(result_file: str | os.PathLike | None) -> list[tuple[int, int, dict[str, Any]]]:
    """`(step, timestamp_ms, metrics)` per epoch from a trial's Tune result log (result.json: one
    JSON object per report): the metrics as the trial's tracker logged them (Tune's own keys left
    out) with their timestamp (TIMESTAMP_KEY; reports without it: Tune's, in whole seconds). The
    last report of an epoch counts: a resumed trial repeats the epochs after its checkpoint. A
    missing file or a line cut short (a killed driver) is skipped."""
    if not result_file:
        return []
    try:
        lines = Path(result_file).read_text().splitlines()
    except OSError:
        return []
    skip, by_step = _not_reported(), {}
    for line in lines:
        try:
            report = json.loads(line)
        except ValueError:
            continue
        step = report.get("epoch") if isinstance(report, dict) else None
        if not _number(step) or int(step) < 1:
            continue
        ts = report.get(TIMESTAMP_KEY)
        if not _number(ts):
            ts = (report.get("timestamp") or 0) * 1000
        by_step[int(step)] = (int(step), int(ts), {k: v for k, v in report.items() if k not in skip})
    return [by_step[k] for k in sorted(by_step)]


def trial_params(spec: StudySpec) -> dict[str, Any]:
    """The trial's config (the study spec with its overrides applied) as nested params, nulls left out."""
    raw = spec.model_dump(mode="json")
    return _drop_nulls({k: raw[k] for k in PARAM_SECTIONS if k in raw})


def _drop_nulls(d: dict[str, Any]) -> dict[str, Any]:
    return {k: _drop_nulls(v) if isinstance(v, dict) else v for k, v in d.items() if v is not None}
