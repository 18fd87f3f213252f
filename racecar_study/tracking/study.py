"""The driver side: one experiment per study, one parent run per study launch (re-opened on resume)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from racecar_study.tracking.errors import TrackingUnavailable
from racecar_study.tracking.link import Link, is_outage, short_reason
from racecar_study.tracking.params import chunks
from racecar_study.tracking.spool import (
    SPOOL_DIRNAME,
    STUDY_SPOOL,
    Spool,
    describe,
    pending_files,
    read_spool,
)
from racecar_study.tracking.uris import is_http, redact_uri, resolve_tracking_uri

SPEC_ARTIFACT = "spec"
RESULTS_ARTIFACT = "results"


@dataclass
class StudyTracking:
    enabled: bool
    study: str
    study_dir: Path
    tracking_uri: str = ""
    experiment_id: str = ""
    parent_run_id: str = ""
    log_models: bool = True
    register_best: bool = True
    log_every: int = 1
    resumed: bool = False
    link: Link | None = field(default=None, repr=False)

    @property
    def spool_dir(self) -> Path:
        return self.study_dir / SPOOL_DIRNAME

    # -- launch ------------------------------------------------------------------------------------

    @classmethod
    def open(
        cls,
        spec,
        study_dir: Path,
        tracking_uri: str | None = None,
        ray_address: str | None = None,
        resume: bool = False,
    ) -> StudyTracking:
        """Check the store answers, get or create the experiment, start (or on resume re-open) the
        parent run. Raises TrackingUnavailable before anything else runs."""
        study_dir = Path(study_dir).resolve()
        t = spec.tracking
        if not t.enabled:
            return cls(enabled=False, study=spec.name, study_dir=study_dir)
        from racecar_study.tracking.connect import check_reachable, make_client

        uri = resolve_tracking_uri(tracking_uri, t.tracking_uri)
        check_reachable(uri)
        client = make_client(uri)
        self = cls(
            enabled=True,
            study=spec.name,
            study_dir=study_dir,
            tracking_uri=uri,
            log_models=t.log_models,
            register_best=t.register_best,
            log_every=t.log_every,
        )
        try:
            self._start(client, spec, ray_address, resume)
        except TrackingUnavailable:
            raise
        except Exception as e:
            what = "tracking server" if is_http(uri) else "tracking store"
            how = "unreachable" if is_outage(e) else "failed"
            raise TrackingUnavailable(f"{what} {redact_uri(uri)} {how}: {short_reason(e)}") from None
        return self

    def _start(self, client, spec, ray_address: str | None, resume: bool) -> None:
        import yaml

        from racecar_study.tracking.runs import find_parent, get_or_create_experiment
        from racecar_study.tracking.secrets import scrub, scrub_tree

        self.experiment_id = get_or_create_experiment(
            client, spec.tracking.experiment or spec.name, self.tracking_uri, spec.name
        )
        parent = find_parent(client, self.experiment_id, str(self.study_dir)) if resume else None
        tags = scrub(self._tags(spec, ray_address))
        if parent is None:
            parent = client.create_run(self.experiment_id, tags=tags, run_name=spec.name)
        else:
            self.resumed = True
            client.update_run(parent.info.run_id, status="RUNNING")
            tags["racecar.resumed"] = str(int(parent.data.tags.get("racecar.resumed", "0")) + 1)
            from mlflow.entities import RunTag

            client.log_batch(parent.info.run_id, tags=[RunTag(k, v) for k, v in tags.items()])
        self.parent_run_id = parent.info.run_id
        spec_yaml = yaml.safe_dump(scrub_tree(spec.model_dump(mode="json")), sort_keys=False)
        client.log_text(self.parent_run_id, spec_yaml, f"{SPEC_ARTIFACT}/spec.yaml")
        header = {
            "tracking_uri": redact_uri(self.tracking_uri),
            "experiment_id": self.experiment_id,
            "parent_run_id": self.parent_run_id,
            "study": self.study,
            "run_id": self.parent_run_id,
        }
        self.link = Link(client, Spool(self.spool_dir, STUDY_SPOOL, header))

    def _tags(self, spec, ray_address: str | None) -> dict[str, Any]:
        from racecar_study.tracking.versions import git_commit, package_versions

        tags = {
            "racecar.study": spec.name,
            "racecar.role": "study",
            "racecar.study_dir": str(self.study_dir),
            "racecar.spec_hash": spec.hash(),
            "racecar.ray_address": ray_address or "local",
            **{f"racecar.version.{k}": v for k, v in package_versions().items()},
        }
        commit = git_commit()
        if commit:
            tags["racecar.git_commit"] = commit
            tags["mlflow.source.git.commit"] = commit.removesuffix("-dirty")
        return tags

    def trial_context(self) -> dict[str, Any]:
        """Small and picklable: what every trial needs to find its run, on any node."""
        if not self.enabled:
            return {"enabled": False}
        return {
            "enabled": True,
            "tracking_uri": self.tracking_uri,
            "experiment_id": self.experiment_id,
            "parent_run_id": self.parent_run_id,
            "study": self.study,
            "log_models": self.log_models,
            "log_every": self.log_every,
            "spool_dir": str(self.spool_dir),
        }

    # -- end ---------------------------------------------------------------------------------------

    def run_ids(self) -> dict[str, str]:
        """trial id -> child run id, for the results table's mlflow_run_id column."""
        from racecar_study.tracking.runs import TAG_TRIAL_ID, children

        if not self.enabled or self.link is None:
            return {}
        out = {}
        self.link.try_call(
            lambda: out.update(
                {
                    r.data.tags[TAG_TRIAL_ID]: r.info.run_id
                    for r in children(self.link.client, self.experiment_id, self.parent_run_id)
                    if TAG_TRIAL_ID in r.data.tags
                }
            )
        )
        return out

    def fill_run_ids(self, results_path: Path) -> int:
        """Fill null `mlflow_run_id` cells of results.parquet (by `trial_id`) from the child runs."""
        from racecar_study.tracking.tables import fill_run_id_column

        if not self.enabled or not Path(results_path).is_file():
            return 0
        return fill_run_id_column(results_path, self.run_ids())

    def end_trial(self, trial_id: str, run_id: str | None, status: str) -> bool:
        """End a trial's child run that its trial could not end (stopped by the scheduler, failed);
        a run already ended is left as it is. Never raises; True when a run was ended."""
        if not self.enabled or self.link is None:
            return False
        run_id = run_id or self.run_ids().get(str(trial_id))
        if not run_id:
            return False
        client, ended = self.link.client, []

        def call():
            if client.get_run(run_id).info.status == "RUNNING":
                client.set_terminated(run_id, status, int(time.time() * 1000))
                ended.append(run_id)

        self.link.try_call(call)
        return bool(ended)

    def backfill_trial(self, trial_id: str, run_id: str | None, epochs: list) -> int:
        """Log the epochs of a trial's child run that the run does not have yet: `epochs` are the
        trial's reports, `(step, timestamp_ms, metrics)`, as its tracker logged them (the same
        timestamps: MLflow's SQL store keeps a row it already holds once, so the trial sending the
        same epoch too, even at the same time, is harmless). A trial stopped by the scheduler or
        failed may never send what it still held; this fills it in from the driver's side. Steps
        the run has (by the history of one metric) are skipped; what cannot be sent goes to the
        spool (`racecar-study sync`). Never raises; returns the number of steps logged or spooled."""
        from racecar_study.tracking.params import BATCH_METRICS, logged_steps, metric_entities, step_key
        from racecar_study.tracking.sender import epoch_rows

        if not self.enabled or self.link is None or not epochs:
            return 0
        run_id = run_id or self.run_ids().get(str(trial_id))
        key = step_key(epochs[0][2])
        if not run_id or key is None:  # no run: the trial's own spool holds what it logged
            return 0
        link, client, present = self.link, self.link.client, set()
        link.try_call(lambda: present.update(logged_steps(client, run_id, key)))
        missing = [e for e in epochs if e[0] not in present]
        spool = None
        for part in chunks(epoch_rows(missing), BATCH_METRICS):
            record = {"kind": "metrics", "rows": list(part)}
            if not link.try_call(lambda p=part: client.log_batch(run_id, metrics=metric_entities(p))):
                spool = spool or self._trial_spool(str(trial_id), run_id)
                spool.write(record)
        return len(missing)

    def _trial_spool(self, trial_id: str, run_id: str) -> Spool:
        header = {
            "tracking_uri": redact_uri(self.tracking_uri),
            "experiment_id": self.experiment_id,
            "parent_run_id": self.parent_run_id,
            "study": self.study,
            "trial_id": trial_id,
            "trial_name": trial_id,
            "run_id": run_id,
        }
        return Spool(self.spool_dir, f"backfill-{trial_id}", header)

    def prune_children(self, trial_ids) -> list[str]:
        """Delete child runs of trials the study no longer knows (a trial started after Ray Tune's
        last snapshot before a kill gets a new id on resume): a study keeps one child per trial.
        Returns the deleted run ids. Never raises."""
        from racecar_study.tracking.runs import TAG_TRIAL_ID, children

        if not self.enabled or self.link is None:
            return []
        keep, deleted = {str(t) for t in trial_ids}, []

        def call():
            for r in children(self.link.client, self.experiment_id, self.parent_run_id):
                if r.data.tags.get(TAG_TRIAL_ID) not in keep:
                    self.link.client.delete_run(r.info.run_id)
                    deleted.append(r.info.run_id)

        self.link.try_call(call)
        return deleted

    def finish(self, results_path: Path | None, best_run_id: str | None, status: str = "FINISHED") -> None:
        """Log results.parquet, register the best trial's model (alias `best`), end runs left
        RUNNING as KILLED, end the parent run. Never raises: what fails is spooled."""
        if not self.enabled or self.link is None:
            return
        link, client, run = self.link, self.link.client, self.parent_run_id
        if results_path is not None and Path(results_path).is_file():
            path = str(Path(results_path).resolve())
            link.send(
                {"kind": "artifact", "path": path, "artifact_path": RESULTS_ARTIFACT},
                lambda: client.log_artifact(run, path, RESULTS_ARTIFACT),
            )
        if best_run_id:
            link.send(
                {"kind": "tags", "tags": {"racecar.best_run_id": best_run_id}},
                lambda: client.set_tag(run, "racecar.best_run_id", best_run_id),
            )
            if self.register_best and self.log_models:
                self._register(best_run_id)
        link.try_call(self._end_stragglers)
        end = int(time.time() * 1000)
        link.send(
            {"kind": "terminate", "status": status, "end_time": end},
            lambda: client.set_terminated(run, status, end),
        )

    def _register(self, best_run_id: str) -> None:
        from racecar_study.tracking.models import register_best

        record = {"kind": "register", "name": self.study, "run_id": best_run_id}
        version: list = []
        sent = self.link.try_call(
            lambda: version.append(register_best(self.link.client, self.study, best_run_id))
        )
        if not sent or version[0] is None:  # the model itself may still sit in a trial's spool
            self.link.spool.write(record)

    def _end_stragglers(self) -> None:
        from racecar_study.tracking.runs import children

        for r in children(self.link.client, self.experiment_id, self.parent_run_id):
            if r.info.status == "RUNNING":
                self.link.client.set_terminated(r.info.run_id, "KILLED")

    def gap_report(self) -> list[str]:
        """One line per spool file with records not yet sent; [] when complete."""
        if not self.enabled:
            return []
        lines: list[str] = []
        for path in pending_files(self.spool_dir):
            try:
                header, records = read_spool(path)
            except (OSError, ValueError) as e:
                lines.append(f"{path.name}: unreadable ({e})")
                continue
            if records:
                who = "study run" if path.stem == STUDY_SPOOL else f"trial {header.get('trial_name')}"
                lines.append(
                    f"{who}: not logged to {header.get('tracking_uri')}: {describe(records)} "
                    f"(re-send with `racecar-study sync {self.study_dir}`)"
                )
        return lines
