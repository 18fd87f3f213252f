"""results.parquet: one row per trial, rewritten atomically (tmp + os.replace) as trials finish.

Columns: trial_id, status (pending/running/done/stopped/diverged/error), final_metric and best_metric (of
the spec's `metric`, named in the schema metadata with `mode`; both the mean over the spec's seeds),
final_metric_std (the seeds' spread at the last report; null with one seed), epochs, wall_time_s, node_id,
hostname, device, checkpoint_path, mlflow_run_id (set by tracking hooks; null without them),
error, then one `config.<dotted path>` column per search parameter (null where it did not apply).
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.parquet as pq

if TYPE_CHECKING:  # `racecar-study results` reads tables only: no spec, no torch
    from racecar_study.study.spec import StudySpec

FIXED = [
    ("trial_id", pa.string()),
    ("status", pa.string()),
    ("final_metric", pa.float64()),
    ("final_metric_std", pa.float64()),
    ("best_metric", pa.float64()),
    ("epochs", pa.int64()),
    ("wall_time_s", pa.float64()),
    ("node_id", pa.string()),
    ("hostname", pa.string()),
    ("device", pa.string()),
    ("checkpoint_path", pa.string()),
    ("mlflow_run_id", pa.string()),
    ("error", pa.string()),
]
_TUNE_STATUS = {"PENDING": "pending", "PAUSED": "pending", "RUNNING": "running", "ERROR": "error"}
STATUSES = ("pending", "running", "done", "stopped", "diverged", "error")
COMPLETED = ("done", "stopped", "diverged")  # the trainable returned: Tune runs them no more
ENDED = (*COMPLETED, "error")


def trial_status(trial, epochs: int, ending: bool = False) -> str:
    """Tune's TERMINATED covers a full run (done), an early stop by the scheduler (stopped) and a
    trial whose training loss stopped being finite (diverged: its last report says so).

    `ending`: Tune calls `on_trial_complete` while the trial is still RUNNING.
    """
    status = "TERMINATED" if ending and trial.status == "RUNNING" else trial.status
    if status in _TUNE_STATUS:
        return _TUNE_STATUS[status]
    last = _last(trial)
    if last.get("diverged"):
        return "diverged"
    return "done" if last.get("epoch", 0) >= epochs else "stopped"


def planned_epochs(spec: StudySpec, trial) -> int:
    """The epochs a trial was set to run: its own train.epochs where the search sets it."""
    if "train.epochs" in spec.search.space:
        from racecar_study.study.space import active_overrides

        value = active_overrides(spec.search.space, trial.config).get("train.epochs")
        if value is not None:
            return int(value)
    return spec.train.epochs


def _last(trial) -> dict[str, Any]:
    return trial.last_result if trial.has_reported_at_least_once else {}


def _finite(v: Any) -> float | None:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


def _error_line(trial) -> str | None:
    path = trial.error_file if trial.status == "ERROR" else None
    if not path or not Path(path).is_file():
        return None
    lines = [ln.strip() for ln in Path(path).read_text(errors="replace").splitlines() if ln.strip()]
    return lines[-1] if lines else None


def trial_row(trial, spec: StudySpec, status: str) -> dict[str, Any]:
    last = _last(trial)
    analysis = trial.metric_analysis.get(spec.metric, {})
    ckpt = trial.checkpoint
    row = {
        "trial_id": trial.trial_id,
        "status": status,
        "final_metric": _finite(last.get(spec.metric)),
        "final_metric_std": _finite(last.get(f"{spec.metric}_std")) if len(spec.seeds) > 1 else None,
        "best_metric": _finite(analysis.get(spec.mode)),
        "epochs": int(last.get("epoch", 0)),
        "wall_time_s": _finite(last.get("time_total_s")),
        "node_id": last.get("node_id"),
        "hostname": last.get("hostname"),
        "device": last.get("device"),
        "checkpoint_path": ckpt.path if ckpt is not None else None,
        "mlflow_run_id": last.get("mlflow_run_id"),
        "error": _error_line(trial),
    }
    from racecar_study.study.space import active_overrides

    active = active_overrides(spec.search.space, trial.config)
    for path in spec.search.space:
        row[f"config.{path}"] = active.get(path)
    return row


def _config_column(values: list[Any]) -> pa.Array:
    """Scalars keep their type; ints with floats become floats; anything else is JSON text."""
    present = [v for v in values if v is not None]
    kinds = {type(v) for v in present}
    if kinds <= {bool} or kinds <= {str} or kinds <= {int} or kinds <= {int, float}:
        return pa.array([float(v) if kinds == {int, float} and v is not None else v for v in values])
    return pa.array([None if v is None else json.dumps(v) for v in values], pa.string())


def to_table(rows: list[dict[str, Any]], spec: StudySpec) -> pa.Table:
    columns = {name: pa.array([r[name] for r in rows], kind) for name, kind in FIXED}
    for path in spec.search.space:
        columns[f"config.{path}"] = _config_column([r[f"config.{path}"] for r in rows])
    meta = {"study": spec.name, "metric": spec.metric, "mode": spec.mode, "epochs": spec.train.epochs}
    table = pa.table(columns)
    return table.replace_schema_metadata({b"racecar_study": json.dumps(meta).encode()})


def write_results(table: pa.Table, path: Path) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    pq.write_table(table, tmp)
    os.replace(tmp, path)


def read_results(path: str | os.PathLike) -> pa.Table:
    return pq.read_table(path)


def results_meta(table: pa.Table) -> dict[str, Any]:
    return json.loads((table.schema.metadata or {}).get(b"racecar_study", b"{}"))


def best_rows(table: pa.Table, k: int = 5) -> list[dict[str, Any]]:
    """The k best finished trials by best_metric, best first."""
    meta = results_meta(table)
    rows = [r for r in table.to_pylist() if r["best_metric"] is not None]
    rows.sort(key=lambda r: r["best_metric"], reverse=meta.get("mode", "max") == "max")
    return rows[:k]
