"""`sync_spool`: re-send what a study's trials and parent run could not log (`racecar-study sync`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from racecar_study.tracking.link import short_reason
from racecar_study.tracking.params import BATCH_METRICS, BATCH_PARAMS, BATCH_TAGS, chunks, metric_entities
from racecar_study.tracking.spool import SPOOL_DIRNAME, STUDY_SPOOL, pending_files, read_spool, rewrite_spool


@dataclass
class SyncResult:
    files: int = 0
    records: int = 0
    failed: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        return not self.failed


def sync_spool(study_dir: str | Path, tracking_uri: str | None = None) -> SyncResult:
    """Replay every spool file under `study_dir`; sent records are removed, the rest stay for the
    next try. `tracking_uri` overrides the one the spool names. Raises TrackingUnavailable."""
    from racecar_study.tracking.connect import check_reachable, make_client

    result = SyncResult()
    spool_dir = Path(study_dir) / SPOOL_DIRNAME
    clients: dict[str, Any] = {}
    for path in pending_files(spool_dir):
        header, records = read_spool(path)
        uri = tracking_uri or header.get("tracking_uri")
        if not uri or "***" in uri:
            result.failed.append(f"{path.name}: give --tracking-uri (the spool holds no usable URI)")
            continue
        if uri not in clients:
            check_reachable(uri)
            clients[uri] = make_client(uri)
        replay = _Replay(clients[uri], header, spool_dir, result)
        done = 0
        try:
            replay.open_run(is_study=path.stem == STUDY_SPOOL)
            for record in records:
                replay.apply(record)
                done += 1
        except Exception as e:
            result.failed.append(f"{path.name}: {short_reason(e)}")
        rewrite_spool(path, header, records[done:])
        result.files += 1
        result.records += done
    return result


class _Replay:
    def __init__(self, client, header: dict[str, Any], spool_dir: Path, result: SyncResult):
        self.client, self.header, self.spool_dir, self.result = client, header, spool_dir, result
        self.run_id: str | None = header.get("run_id")

    def open_run(self, is_study: bool) -> None:
        from racecar_study.tracking.runs import create_child, find_child

        h = self.header
        if is_study or self.run_id:
            self.client.get_run(self.run_id)  # raises if it is not there
            return
        run = find_child(self.client, h["experiment_id"], h["parent_run_id"], h["trial_id"])
        if run is None:
            run = create_child(
                self.client,
                h["experiment_id"],
                h["parent_run_id"],
                h["trial_id"],
                h["trial_name"],
                h["study"],
            )
        self.run_id = run.info.run_id

    def apply(self, r: dict[str, Any]) -> None:
        from mlflow.entities import Param, RunTag

        kind, c, run = r["kind"], self.client, self.run_id
        if kind == "metrics":
            for part in chunks(r["rows"], BATCH_METRICS):
                c.log_batch(run, metrics=metric_entities(part))
        elif kind == "params":
            old = c.get_run(run).data.params
            new = [Param(k, v) for k, v in r["params"].items() if k not in old]
            for part in chunks(new, BATCH_PARAMS):
                c.log_batch(run, params=list(part))
        elif kind == "tags":
            for part in chunks([RunTag(k, v) for k, v in r["tags"].items()], BATCH_TAGS):
                c.log_batch(run, tags=list(part))
        elif kind == "artifacts":
            c.log_artifacts(run, str(self.spool_dir / r["dir"]), r.get("artifact_path"))
        elif kind == "artifact":
            c.log_artifact(run, r["path"], r.get("artifact_path"))
        elif kind == "model":
            from racecar_study.tracking.models import upload_model_dir

            upload_model_dir(
                c, self.header["experiment_id"], run, self.spool_dir / r["dir"], int(r.get("step", 0))
            )
        elif kind == "register":
            from racecar_study.tracking.models import register_best

            if register_best(c, r["name"], r["run_id"]) is None:
                self.result.notes.append(f"run {r['run_id']} has no logged model: nothing registered")
        elif kind == "terminate":
            c.set_terminated(run, r["status"], r.get("end_time"))
        else:
            raise ValueError(f"unknown spool record kind {kind!r}")
