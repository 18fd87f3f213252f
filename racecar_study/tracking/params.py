"""Trial configs as MLflow params, epoch metrics as metric rows, and MLflow's batch limits."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

MAX_PARAM_VALUE = 6000  # MLflow 3's limit on a param value
MAX_KEY = 250
BATCH_METRICS = 1000  # log_batch limits: 1000 metrics, 100 params, 100 tags per request
BATCH_PARAMS = 100
BATCH_TAGS = 100
CONTEXT_KEY = "_tracking"  # the trial context travels in the trial config under this key; never a param
NOT_METRICS = ("epoch",)  # the epoch is the step


def flatten_params(config: Mapping[str, Any], prefix: str = "") -> dict[str, str]:
    """Nested dicts become dotted keys; lists and other leaves become JSON-ish strings."""
    out: dict[str, str] = {}
    for key, value in config.items():
        if not prefix and key == CONTEXT_KEY:
            continue
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            out.update(flatten_params(value, f"{name}."))
            continue
        if isinstance(value, str):
            text = value
        else:
            try:
                text = json.dumps(value, default=str)
            except (TypeError, ValueError):
                text = str(value)
        out[name[:MAX_KEY]] = text[:MAX_PARAM_VALUE]
    return out


def metric_rows(metrics: Mapping[str, Any], step: int, timestamp_ms: int | None = None) -> list[list]:
    """[key, value, timestamp_ms, step] rows of the numeric metrics (JSON-able, for the spool too)."""
    ts = int(time.time() * 1000) if timestamp_ms is None else timestamp_ms
    return [[key, float(value), ts, int(step)] for key, value in metrics.items() if _is_metric(key, value)]


def _is_metric(key: str, value: Any) -> bool:
    return key not in NOT_METRICS and not isinstance(value, bool) and isinstance(value, int | float)


def metric_entities(rows: Sequence[Sequence]) -> list:
    """MLflow Metric entities of [key, value, timestamp_ms, step] rows (for log_batch)."""
    from mlflow.entities import Metric

    return [Metric(key=k, value=v, timestamp=ts, step=s) for k, v, ts, s in rows]


def logged_steps(client, run_id: str, key: str) -> set[int]:
    """The steps a run has logged, by the history of one metric (an epoch's rows go together)."""
    return {m.step for m in client.get_metric_history(run_id, key)}


def step_key(metrics: Mapping[str, Any]) -> str | None:
    """The metric whose history tells which steps a run has logged: the first one `metric_rows`
    would log (every epoch's rows are logged together)."""
    return next((key for key, value in metrics.items() if _is_metric(key, value)), None)


def chunks(items: Sequence, size: int) -> Iterator[Sequence]:
    for i in range(0, len(items), size):
        yield items[i : i + size]
