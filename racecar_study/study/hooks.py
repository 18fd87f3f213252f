"""The seam for side concerns of a study (MLflow tracking plugs in here; this wing imports no mlflow).

Two kinds of hooks, both no-op by default:
- `DriverHook`: lives in the driver process. `on_study_start` returns values handed to every
  trial (e.g. an experiment id created once, to avoid concurrent creation races);
  `on_trial_finish` sees each finished trial's results row, plus `result_file`: the trial's
  reports as Tune logged them on the driver (result.json, one JSON object per report with Tune's
  own keys added; None or absent when unknown); `on_study_end` the final table;
  `on_study_abort` the error of a launch that failed after `on_study_start` (end what it opened).
  `on_study_start` runs before the study folder is created or Ray starts: raising there (e.g. an
  unreachable tracking server) stops the launch with nothing created.
- `TrialHook`: pickled into every trial. `on_trial_start` returns values added to every report
  (e.g. {"mlflow_run_id": ...}, which results.parquet then records); `on_report` sees each
  report and the checkpoint folder when one was written, and may return values added to that
  report (hooks after it see them too); `on_trial_end` sees the last report of a
  trial that ran to its end, before Tune does (what a finished trial leaves behind goes there).
  A trial stopped by the scheduler ends without notice: close per-trial state from the driver's
  `on_trial_finish`.

A provider is `spec -> StudyHooks`; `register_hooks(provider)` adds one for every later study.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from racecar_study.study.spec import StudySpec


@dataclass(frozen=True)
class StudyInfo:
    spec: StudySpec
    folder: Path  # driver-side study folder: spec.yaml, optuna.db, results.parquet
    storage: str  # where Ray Tune keeps trials and checkpoints (a path or URI)
    resumed: bool
    address: str | None = None  # the Ray cluster attached to; None: a local Ray


@dataclass(frozen=True)
class TrialInfo:
    trial_id: str
    trial_name: str
    spec: StudySpec  # the trial's spec: the study spec with its overrides applied
    overrides: dict[str, Any]
    context: dict[str, Any]  # what the driver hooks returned from on_study_start
    resumed: bool
    node_id: str
    hostname: str
    run: Any = None  # the first seed's experiment.Run (net, trainer, splits), restored if resumed
    checkpoint_dir: Path | None = None  # resumed: the restored checkpoint (during on_trial_start only)


class DriverHook:
    def on_study_start(self, study: StudyInfo) -> dict[str, Any]:
        return {}

    def on_trial_finish(self, row: dict[str, Any]) -> None: ...

    def on_study_end(self, table) -> None: ...

    def on_study_abort(self, error: BaseException) -> None: ...


class TrialHook:
    def on_trial_start(self, trial: TrialInfo) -> dict[str, Any]:
        return {}

    def on_report(self, metrics: dict[str, Any], checkpoint_dir: Path | None) -> dict[str, Any] | None:
        return None

    def on_trial_end(self, metrics: dict[str, Any]) -> None: ...


@dataclass
class StudyHooks:
    driver: list[DriverHook] = field(default_factory=list)
    trial: list[TrialHook] = field(default_factory=list)


_PROVIDERS: list[Callable[[StudySpec], StudyHooks]] = []


def register_hooks(provider: Callable[[StudySpec], StudyHooks]) -> None:
    if provider not in _PROVIDERS:
        _PROVIDERS.append(provider)


def hooks_for(spec: StudySpec) -> StudyHooks:
    out = StudyHooks()
    for provider in _PROVIDERS:
        got = provider(spec)
        out.driver += got.driver
        out.trial += got.trial
    return out
