"""The study's trial runs as a pyarrow Table, for scripts and notebooks."""

from __future__ import annotations

import pyarrow as pa

FIXED = ["run_id", "trial_id", "trial_name", "run_name", "parent_run_id", "status", "start_time", "end_time"]


def _experiment_ids(client, name: str) -> list[str]:
    from racecar_study.tracking.runs import TAG_STUDY, quote

    ids = {
        e.experiment_id
        for e in client.search_experiments(filter_string=f"tags.`{TAG_STUDY}` = {quote(name)}")
    }
    exp = client.get_experiment_by_name(name)
    if exp is not None:
        ids.add(exp.experiment_id)
    return sorted(ids)


def load_study_runs(name: str, tracking_uri: str | None = None) -> pa.Table:
    """One row per trial run of study `name`: run_id, trial_id, trial_name, run_name, parent_run_id,
    status, start_time, end_time (UTC), `params.*` (strings) and `metrics.*` (last values).
    Empty (with the fixed columns) when the study has no runs."""
    from racecar_study.tracking.connect import make_client
    from racecar_study.tracking.runs import TAG_PARENT, TAG_TRIAL_ID, TAG_TRIAL_NAME, search_all, tag_filter
    from racecar_study.tracking.uris import resolve_tracking_uri

    client = make_client(resolve_tracking_uri(tracking_uri))
    ids = _experiment_ids(client, name)
    runs = search_all(client, ids, tag_filter(racecar__study=name, racecar__role="trial")) if ids else []
    rows, params, metrics = [], set(), set()
    for r in runs:
        t = r.data.tags
        row = {
            "run_id": r.info.run_id,
            "trial_id": t.get(TAG_TRIAL_ID),
            "trial_name": t.get(TAG_TRIAL_NAME),
            "run_name": r.info.run_name,
            "parent_run_id": t.get(TAG_PARENT),
            "status": r.info.status,
            "start_time": r.info.start_time,
            "end_time": r.info.end_time,
        }
        row.update({f"params.{k}": v for k, v in r.data.params.items()})
        row.update({f"metrics.{k}": float(v) for k, v in r.data.metrics.items()})
        params.update(f"params.{k}" for k in r.data.params)
        metrics.update(f"metrics.{k}" for k in r.data.metrics)
        rows.append(row)
    rows.sort(key=lambda x: (x["trial_id"] or "", x["start_time"] or 0))
    ms = pa.timestamp("ms", tz="UTC")
    fields = [pa.field(c, ms if c.endswith("_time") else pa.string()) for c in FIXED]
    fields += [pa.field(c, pa.string()) for c in sorted(params)]
    fields += [pa.field(c, pa.float64()) for c in sorted(metrics)]
    schema = pa.schema(fields)
    return pa.table(
        {f.name: pa.array([row.get(f.name) for row in rows], f.type) for f in schema}, schema=schema
    )


def fill_run_id_column(
    path, run_ids: dict[str, str], column: str = "mlflow_run_id", key: str = "trial_id"
) -> int:
    """Fill the null cells of `column` in a results Parquet file from {trial id: run id}; rewrites
    the file atomically when something changed. Returns how many cells were filled."""
    import os
    from pathlib import Path

    import pyarrow.parquet as pq

    path = Path(path)
    table = pq.read_table(path)
    if key not in table.column_names:
        return 0
    keys = [None if k is None else str(k) for k in table.column(key).to_pylist()]
    old = table.column(column).to_pylist() if column in table.column_names else [None] * table.num_rows
    new = [o if o is not None else run_ids.get(k) for o, k in zip(old, keys)]
    filled = sum(o is None and n is not None for o, n in zip(old, new))
    if not filled:
        return 0
    values = pa.array(new, pa.string())
    if column in table.column_names:
        table = table.set_column(table.column_names.index(column), pa.field(column, pa.string()), values)
    else:
        table = table.append_column(pa.field(column, pa.string()), values)
    tmp = path.with_name(path.name + ".tmp")
    pq.write_table(table, tmp)
    os.replace(tmp, path)
    return filled
