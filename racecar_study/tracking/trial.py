"""The trial side: a core `Callback` that records one trial as a child run of the study's run.

It runs inside Ray workers on any node, so it talks to `ctx["tracking_uri"]` explicitly. Metrics
go out in background batches; whatever cannot be sent goes to the spool (`ctx["spool_dir"]`), so
a lost server never crashes or stalls training.
"""

from __future__ import annotations

import atexit
import socket
import tempfile
import time
import warnings
import weakref
from pathlib import Path
from typing import Any

import numpy as np
import torch

from racecar_study.core.trainer import Callback, Trainer
from racecar_study.tracking.link import Link, short_reason
from racecar_study.tracking.params import (
    BATCH_PARAMS,
    BATCH_TAGS,
    chunks,
    flatten_params,
    logged_steps,
    step_key,
)
from racecar_study.tracking.secrets import scrub
from racecar_study.tracking.sender import MetricSender
from racecar_study.tracking.spool import Spool
from racecar_study.tracking.uris import is_http, redact_uri

FLUSH_TIMEOUT_S = 20.0
# The least time between two background metric requests during training: each request costs the
# training process CPU (and GIL) time, and a server on the same machine more. What is still pending
# goes out when training ends (log_final/close) or at an explicit flush.
MIN_INTERVAL_S = 5.0
PROBE_TIMEOUT_S = 2.0
EXAMPLE_ROWS = 2
CHANGED_PREFIX = "racecar.param_changed."


class NullTrialTracker(Callback):
    """What `trial_callback` returns when tracking is off: does nothing."""

    run_id = None

    def log_epoch(self, *args, **kwargs) -> None: ...

    def log_final(self, *args, **kwargs) -> None: ...

    def close(self, status: str = "FINISHED") -> None: ...

    def flush(self, timeout: float = FLUSH_TIMEOUT_S, wait: bool = True) -> bool:
        return True

    def gap_report(self) -> list[str]:
        return []


class TrialTracker(Callback):
    def __init__(
        self, ctx: dict[str, Any], trial_id: str, trial_name: str, params: dict[str, Any], input_example=None
    ):
        from racecar_study.tracking.connect import make_client

        self.ctx, self.trial_id, self.trial_name = ctx, str(trial_id), str(trial_name)
        self.input_example = input_example
        self.log_every = max(1, int(ctx.get("log_every", 1)))
        header = {k: ctx.get(k) for k in ("experiment_id", "parent_run_id", "study")}
        header["tracking_uri"] = redact_uri(ctx["tracking_uri"])
        header.update(trial_id=self.trial_id, trial_name=self.trial_name, run_id=None)
        self.spool = Spool(ctx["spool_dir"], f"trial-{self.trial_id}", header)
        try:
            client = make_client(ctx["tracking_uri"])
        except Exception as e:  # e.g. a SQLite path that does not exist on this node
            client = _Broken(e)
        self.link = Link(client, self.spool)
        self.local_errors: list[str] = []
        self._pending: list = []  # epochs not yet handed to the sender (log_every > 1)
        self._skip_upto = 0
        self._resumed_metrics = False
        self._closed = False
        self.fit_ended = False
        self.run_id = self._open_run(flatten_params(params))
        header["run_id"] = self.run_id
        self.sender = MetricSender(self.link, self.run_id, float(ctx.get("min_interval_s", MIN_INTERVAL_S)))
        _OPEN.add(self)

    # -- run ---------------------------------------------------------------------------------------

    def _open_run(self, params: dict[str, str]) -> str | None:
        from racecar_study.tracking.connect import check_reachable
        from racecar_study.tracking.runs import create_child, find_child

        c, ctx = self.link.client, self.ctx
        params = scrub(params)
        try:
            if is_http(ctx["tracking_uri"]):  # a quick probe: a dead server costs 2 s here, not retries
                check_reachable(ctx["tracking_uri"], timeout=PROBE_TIMEOUT_S)
            run = find_child(c, ctx["experiment_id"], ctx["parent_run_id"], self.trial_id)
            if run is None:
                run = create_child(
                    c,
                    ctx["experiment_id"],
                    ctx["parent_run_id"],
                    self.trial_id,
                    self.trial_name,
                    ctx["study"],
                    scrub({"racecar.host": socket.gethostname()}),
                )
            else:
                c.update_run(run.info.run_id, status="RUNNING")
                self._resumed_metrics = bool(run.data.metrics)
        except Exception as e:
            self.link.go_offline(e)
            self.spool.write({"kind": "params", "params": params})
            return None
        old = run.data.params
        new = {k: v for k, v in params.items() if k not in old}
        # MLflow params are write-once: a value that changed on resume is recorded as a tag.
        changed = {f"{CHANGED_PREFIX}{k}": v for k, v in params.items() if k in old and old[k] != v}
        self._log_params(run.info.run_id, new, changed)
        return run.info.run_id

    def _log_params(self, run_id: str, params: dict[str, str], tags: dict[str, str]) -> None:
        from mlflow.entities import Param, RunTag

        for part in chunks(sorted(params.items()), BATCH_PARAMS):
            batch = [Param(k, v) for k, v in part]
            self.link.send(
                {"kind": "params", "params": dict(part)},
                lambda b=batch: self.link.client.log_batch(run_id, params=b),
            )
        for part in chunks(sorted(tags.items()), BATCH_TAGS):
            batch = [RunTag(k, v) for k, v in part]
            self.link.send(
                {"kind": "tags", "tags": dict(part)},
                lambda b=batch: self.link.client.log_batch(run_id, tags=b),
            )

    # -- callback hooks ----------------------------------------------------------------------------

    def on_fit_start(self, trainer: Trainer) -> None:
        if trainer.epoch > 0 and self._resumed_metrics and self.run_id and self.link.online:
            # Resumed from a checkpoint: epochs up to the last one logged are replayed exactly; skip them.
            try:
                self._skip_upto = max(logged_steps(self.link.client, self.run_id, "train_loss"), default=0)
            except Exception as e:
                self.link.go_offline(e)

    def on_epoch_end(self, trainer: Trainer, metrics: dict[str, float]) -> None:
        self.log_epoch(int(metrics.get("epoch", trainer.epoch)), metrics)

    def log_epoch(self, step: int, metrics: dict[str, Any], timestamp_ms: int | None = None) -> None:
        """Hand one epoch's metrics (numeric values; `epoch` is the step) to the background sender.
        Cheap: a copy of the dict; rows are built when they are sent. `timestamp_ms` (default: now)
        lets another writer log the very same rows, which MLflow then stores once."""
        if step <= self._skip_upto:
            return
        ts = _now_ms() if timestamp_ms is None else timestamp_ms
        self._pending.append((step, ts, dict(metrics)))
        if step % self.log_every == 0:
            self.sender.submit(self._pending)
            self._pending = []

    def on_fit_end(self, trainer: Trainer) -> None:
        # Hand the last rows over but send nothing yet: log_final/close (outside the training time)
        # send them in the same request as whatever is still pending; a worker exiting first, atexit.
        self.fit_ended = True
        self.sender.submit(self._pending)
        self._pending = []

    def flush(self, timeout: float = FLUSH_TIMEOUT_S, wait: bool = True) -> bool:
        """Send the metrics handed over so far, now. `wait`: until sent (at most `timeout`, then
        spool what is left); else the background sender starts at once and training goes on."""
        if self._closed:
            return True
        self.sender.submit(self._pending)
        self._pending = []
        if not wait:
            self.sender.request_flush()
            return True
        return self.sender.flush(timeout)

    # -- end of trial ------------------------------------------------------------------------------

    def log_final(
        self,
        net: torch.nn.Module,
        best_state_dict: dict | None,
        input_shape: tuple[int, ...] | None,
        splits_sample_x: torch.Tensor | np.ndarray | None,
        step: int | None = None,
        status: str = "FINISHED",
    ) -> None:
        """Log pictures (svd/vectors.png, reconstructions.png) of the best weights and, if
        ctx['log_models'], the best checkpoint as an MLflow PyTorch model (logged-model step
        `step`); then end the run with `status`. Never raises."""
        from racecar_study.core.analysis import save_model_pictures
        from racecar_study.tracking.models import best_network, save_model_dir

        self.sender.flush(FLUSH_TIMEOUT_S)
        try:
            best = best_network(net, best_state_dict)
            x = None if splits_sample_x is None else torch.as_tensor(splits_sample_x).detach().cpu().float()
            with tempfile.TemporaryDirectory(prefix="racecar-trial-") as tmp:
                try:
                    pictures = Path(tmp) / "pictures"
                    save_model_pictures(best, pictures, input_shape=input_shape, x=x)
                    self._log_folder(pictures)
                except Exception as e:
                    self._local_error("pictures", e)
                if self.ctx.get("log_models", True):
                    example = self._example(x)
                    if example is None:
                        self._local_error("model", ValueError("no input example and no sample inputs"))
                    else:
                        meta = {"racecar_trial_id": self.trial_id, "racecar_study": self.ctx.get("study")}
                        model_dir = save_model_dir(best, example, Path(tmp) / "model", metadata=meta)
                        self._log_model(model_dir, step)
        except Exception as e:
            self._local_error("model", e)
        finally:
            self.close(status)

    def close(self, status: str = "FINISHED") -> None:
        """Send what is left and end the run with `status` (idempotent)."""
        if self._closed:
            return
        self._closed = True
        _OPEN.discard(self)
        self.sender.submit(self._pending)
        self._pending = []
        if status != "FINISHED":
            self._drop_logged_steps()
        self.sender.close(FLUSH_TIMEOUT_S)
        record = {"kind": "terminate", "status": status, "end_time": _now_ms()}
        if self.run_id is None:
            self.spool.write(record)
        else:
            self.link.send(record, lambda: self.link.client.set_terminated(self.run_id, status, _now_ms()))

    def _drop_logged_steps(self) -> None:
        """A trial stopped or failed: the study driver may have logged its last epochs already
        (from Tune's results, StudyTracking.backfill_trial); do not send those steps again."""
        pending = self.sender.pending()
        key = step_key(pending[0][2]) if pending else None
        if key is None or not self.run_id or not self.link.online:
            return
        present: set[int] = set()
        if self.link.try_call(lambda: present.update(logged_steps(self.link.client, self.run_id, key))):
            self.sender.discard_steps(present)

    def gap_report(self) -> list[str]:
        lines = [f"trial {self.trial_name}: {e}" for e in self.local_errors]
        if self.spool.written:
            lines.append(
                f"trial {self.trial_name}: {self.spool.written} records spooled to {self.spool.path}"
            )
        return lines

    # -- helpers -----------------------------------------------------------------------------------

    def _example(self, x: torch.Tensor | None) -> np.ndarray | None:
        if self.input_example is not None:
            ex = self.input_example
            ex = ex.detach().cpu().numpy() if isinstance(ex, torch.Tensor) else np.asarray(ex)
            return ex.astype(np.float32)
        if x is None or len(x) == 0:
            return None
        return x[:EXAMPLE_ROWS].numpy().astype(np.float32)

    def _log_folder(self, folder: Path, artifact_path: str | None = None) -> None:
        def call():
            self.link.client.log_artifacts(self.run_id, str(folder), artifact_path)

        if not (self.run_id and self.link.try_call(call)):
            self._keep("artifacts", folder, {"kind": "artifacts", "artifact_path": artifact_path})

    def _log_model(self, model_dir: Path, step: int | None) -> None:
        from racecar_study.tracking.models import upload_model_dir

        step = int(step or 0)

        def call():
            upload_model_dir(self.link.client, self.ctx["experiment_id"], self.run_id, model_dir, step)

        if not (self.run_id and self.link.try_call(call)):
            self._keep("model", model_dir, {"kind": "model", "step": step})

    def _keep(self, label: str, src: Path, record: dict[str, Any]) -> None:
        try:
            record["dir"] = self.spool.keep_copy(src, label)
        except OSError as e:
            self._local_error(label, e)
            return
        self.spool.write(record)

    def _local_error(self, what: str, err: BaseException) -> None:
        self.local_errors.append(f"{what} not logged: {short_reason(err)}")
        warnings.warn(
            f"tracking: trial {self.trial_name}: {what} not logged: {short_reason(err)}",
            RuntimeWarning,
            stacklevel=2,
        )


class _Broken:
    """Stands in for a client that could not be built: every call fails (and is spooled)."""

    def __init__(self, err: BaseException):
        self.err = err

    def __getattr__(self, name: str):
        def fail(*args, **kwargs):
            raise ConnectionError(f"no tracking client: {short_reason(self.err)}")

        return fail


_OPEN: weakref.WeakSet[TrialTracker] = weakref.WeakSet()


@atexit.register
def _close_open_trackers() -> None:
    """A worker that exits without log_final/close still sends (or spools) its last metrics."""
    for tracker in list(_OPEN):
        try:
            tracker.close("FINISHED" if tracker.fit_ended else "KILLED")
        except Exception:
            pass


def _now_ms() -> int:
    return int(time.time() * 1000)


def trial_callback(
    ctx: dict[str, Any], trial_id: str, trial_name: str, params: dict[str, Any], input_example=None
) -> Callback:
    """The trial's tracking callback: a TrialTracker, or a no-op when `ctx` says tracking is off.

    `params` is the trial config (nested or dotted; the `_tracking` key is skipped). The trainable
    must end with `log_final(...)` or `close(status)`; a worker that exits first closes it at exit.
    Optional ctx key `min_interval_s` (default MIN_INTERVAL_S, 5 s): least time between metric requests.
    """
    if not ctx or not ctx.get("enabled", True):
        return NullTrialTracker()
    return TrialTracker(ctx, trial_id, trial_name, params, input_example)
