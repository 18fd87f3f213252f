"""MLflow tracking for studies: the only wing that imports mlflow (lazily: importing this is cheap).

Where (uris.py):
    default_tracking_uri() -> "sqlite:///<repo>/mlflow/store/mlflow.db" (creates mlflow/store/artifacts);
    resolve_tracking_uri(explicit, spec_uri): --tracking-uri > spec.tracking.tracking_uri >
    $MLFLOW_TRACKING_URI > default.

Driver (study.py):
    tracking = StudyTracking.open(spec, study_dir, tracking_uri=None, ray_address=None, resume=False)
        raises TrackingUnavailable (one line) when the server/store does not answer; gets or
        creates the experiment (spec.tracking.experiment or spec.name) once, starts the parent run
        or, on resume, re-opens the one tagged racecar.study_dir; tags provenance, logs spec/spec.yaml.
    tracking.trial_context() -> small picklable dict for every trial's config (key "_tracking").
    tracking.run_ids() -> {trial_id: run_id}; tracking.fill_run_ids(results_path) fills the null
        mlflow_run_id cells of results.parquet from them.
    tracking.finish(results_path, best_run_id, status="FINISHED"): results/results.parquet,
        registers the best trial's model under the study name with alias "best", ends the runs.
    tracking.gap_report() -> list[str]: what is still in the spool (empty when all was logged).
    tracking.end_trial(trial_id, run_id, status): ends a child run its trial could not end (stopped
        by ASHA: KILLED; failed: FAILED); tracking.prune_children(trial_ids) deletes child runs of
        trials the study no longer knows (a trial Ray Tune forgot in a kill), one child per trial.
    tracking.backfill_trial(trial_id, run_id, epochs): logs the epochs [(step, timestamp_ms,
        metrics)] its child run lacks (a stopped trial's last ones, from the driver's copy of its
        reports); the same timestamps as the trial's make a row sent twice stored once.

Trial (trial.py), inside Ray workers on any node:
    cb = trial_callback(ctx, trial_id, trial_name, params, input_example=None)  # a core Callback
        child run found by racecar.trial_id under the parent (resume continues it) or created
        nested (mlflow.parentRunId), named trial_name; params = flattened config; metrics per epoch
        (step = epoch; cb.log_epoch(step, metrics, timestamp_ms) outside a Trainer) handed over every
        ctx["log_every"] epochs and sent in background log_batch calls at most every
        ctx["min_interval_s"] (5 s) and at the end.
    cb.run_id (None while the server is unreachable); cb.log_final(net, best_state_dict,
        input_shape, splits_sample_x, step=None, status="FINISHED"): pictures (svd/vectors.png,
        reconstructions.png), the best weights as an MLflow PyTorch model (pickled RacecarNet,
        signature + input example), then ends the run. cb.close(status) ends it without them.
        cb.flush(timeout) sends what was handed over and waits. A trial closed as stopped or failed
        does not send again the steps its run already has.

Studies wire this in through racecar_study/study/tracking_hooks.py (the study wing's hooks seam).

Faults: nothing on the trial side raises or waits long (short HTTP timeouts, background sending);
what cannot be sent goes to <study_dir>/tracking_spool/*.jsonl, `sync_spool(study_dir)`
(`racecar-study sync`) re-sends it. Secrets come only from environment variables; params, tags
and the spec artifact are scrubbed of them (secrets.scrub).

Scripts: load_study_runs(name, tracking_uri=None) -> pyarrow.Table of the study's trial runs.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

_EXPORTS = {
    "default_tracking_uri": "uris",
    "resolve_tracking_uri": "uris",
    "TrackingUnavailable": "errors",
    "StudyTracking": "study",
    "trial_callback": "trial",
    "TrialTracker": "trial",
    "load_study_runs": "tables",
    "sync_spool": "sync",
    "fill_run_id_column": "tables",
    "SyncResult": "sync",
    "scrub": "secrets",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(import_module(f"racecar_study.tracking.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module 'racecar_study.tracking' has no attribute {name!r}")
