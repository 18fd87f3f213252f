"""The driver side of a running study: results.parquet, the progress view, the driver hooks.

Tune pickles its callbacks into the experiment state and uses those copies again on
`Tuner.restore`, so the callback it holds (`StudyEvents`) holds nothing: it forwards each event
to the `StudySession` the runner attached in this process for this launch.
"""

from __future__ import annotations

from pathlib import Path

from ray import tune
from ray.tune.result import EXPR_RESULT_FILE

from racecar_study.study.errors import LaunchError
from racecar_study.study.hooks import DriverHook
from racecar_study.study.layout import StudyPaths
from racecar_study.study.progress import ProgressView
from racecar_study.study.pruning import CheckpointPruner
from racecar_study.study.results import (
    COMPLETED,
    ENDED,
    planned_epochs,
    to_table,
    trial_row,
    trial_status,
    write_results,
)
from racecar_study.study.signals import interrupt_lost
from racecar_study.study.spec import StudySpec


class StudySession:
    def __init__(
        self,
        spec: StudySpec,
        paths: StudyPaths,
        view: ProgressView | None,
        hooks: list[DriverHook] = (),
        restoring: tuple[int, str | None] = (0, None),
    ):
        self.spec, self.paths, self.view, self.hooks = spec, paths, view, list(hooks)
        # A resume: how many trials Tune's saved state lists, and its file (tune_state.saved_trials)
        self.restoring = restoring
        self.restore_error: str | None = None  # why Tune could not restore, from its log
        self.failed = False  # the restore failed: nothing more is written
        self.table = None
        self.total = 0  # trials the study will have, created or not
        self._finished: set[str] = set()
        # Trials Tune ended: on_trial_complete, or ended already in the state a resume restored.
        # Tune's clean-up after Ctrl-C marks live trials TERMINATED without completing them, and
        # a resume runs them again, so until then they are pending, not done or stopped.
        self._ended: set[str] = set()
        self._begun = False
        self.pruner = CheckpointPruner(spec.checkpoint.keep)
        self._folders: dict[str, tuple[object, str]] = {}  # trial id: its storage folder (at the end)
        if isinstance(view, ProgressView):
            view.status = self.status  # the view counts trials as results.parquet does

    def begin(self, trials) -> None:
        """At Tune's first step (its trials restored, none created yet), or the first refresh when
        there is none: a resume checks that every saved trial is back; trials that had ended stay
        ended."""
        if self._begun:
            return
        self._begun = True
        if interrupt_lost():  # Ctrl-C during Tune's set-up, dropped by Python: stop as it asked
            raise KeyboardInterrupt
        if self.restoring[0]:
            self.check_restored(trials)
        self._ended.update(t.trial_id for t in trials if t.status == "TERMINATED")

    def check_restored(self, trials) -> None:
        """Before Tune's first step of a resume: every saved trial must be back. When restoring
        fails, Tune logs the error and starts a new, empty experiment, whose results would replace
        the recorded ones; stopping here leaves the study as it was."""
        expected, state = self.restoring
        if len(trials) < expected:
            self.failed = True
            why = f" ({self.restore_error})" if self.restore_error else ""
            raise LaunchError(
                f"{self.paths.folder}: Tune restored {len(trials)} of the {expected} trials in "
                f"{state}{why} and would start the study over; nothing was changed"
            )
        if self.view:
            self.view.start(self.total)

    def status(self, trial) -> str:
        """`trial_status`, except that a trial Tune stopped without ending it (its clean-up after
        Ctrl-C) is pending: a resume runs it again."""
        ended = trial.trial_id in self._ended
        state = trial_status(trial, planned_epochs(self.spec, trial), ending=ended)
        return "pending" if state in COMPLETED and not ended else state

    def refresh(self, trials, ending=None) -> None:
        if self.failed:
            return
        self.begin(trials)  # a resumed study with nothing left to run takes no step
        if ending is not None:
            self._ended.add(ending.trial_id)
        rows = [trial_row(t, self.spec, self.status(t)) for t in trials]
        self.table = to_table(rows, self.spec)
        write_results(self.table, self.paths.results)
        for trial, row in zip(trials, rows):
            if row["status"] in ENDED and row["trial_id"] not in self._finished:
                self._finished.add(row["trial_id"])
                seen = {**row, "result_file": _result_file(trial)}
                for hook in self.hooks:
                    hook.on_trial_finish(seen)

    def setup(self, total: int) -> None:
        self.total = total
        if self.view and not self.restoring[0]:  # a resume's view starts once the trials are back
            self.view.start(total)

    def update(self, trials, force: bool = False) -> None:
        if self.view:
            self.view.update(trials, force)

    def checkpointed(self, trial, checkpoint) -> None:
        self.pruner.add(trial.trial_id, checkpoint)

    def prune(self) -> None:
        self.pruner.prune()

    def prune_ended(self) -> None:
        """Once Tune has written its final state: a trial that ended keeps `keep` checkpoints,
        counted in its folder (a resumed trial's may hold some from before the kill)."""
        if self.table is None:
            return
        rows = zip(self.table.column("trial_id").to_pylist(), self.table.column("status").to_pylist())
        ended = {trial_id for trial_id, status in rows if status in COMPLETED}
        for trial_id in ended & set(self._folders):
            self.pruner.prune_stored(trial_id, *self._folders[trial_id])
        self.pruner.prune(ended=ended)  # any whose folder is unknown: what this driver saw

    def finish(self, trials) -> None:
        if self.failed:
            return
        self._folders = {t.trial_id: folder for t in trials if (folder := _trial_folder(t))}
        self.refresh(trials)
        if self.view:
            self.view.stop(trials)


def _trial_folder(trial) -> tuple[object, str] | None:
    """(pyarrow filesystem, path) of the trial's folder on the study's storage."""
    try:
        return trial.storage.storage_filesystem, trial.path
    except Exception:  # no storage context: a trial Tune never set up
        return None


def _result_file(trial) -> str | None:
    """Tune's per-report log of a trial on the driver (its JSON logger writes it there, whatever
    the storage; a restored trial gets it back from the storage first)."""
    try:
        return str(Path(trial.local_path) / EXPR_RESULT_FILE)
    except Exception:  # no storage context: a trial Tune never set up
        return None


_ACTIVE: list[StudySession] = []


def attach(session: StudySession) -> None:
    _ACTIVE[:] = [session]


def detach() -> None:
    _ACTIVE.clear()


class StudyEvents(tune.Callback):
    """Forwards Tune's driver events to the attached session (none attached: ignored)."""

    def _session(self) -> StudySession | None:
        return _ACTIVE[0] if _ACTIVE else None

    def setup(self, stop=None, num_samples=None, total_num_samples=None, **info):
        if s := self._session():
            s.setup(int(total_num_samples or num_samples or 0))

    def on_step_begin(self, iteration, trials, **info):
        if s := self._session():
            s.begin(trials)

    def on_trial_start(self, iteration, trials, trial, **info):
        if s := self._session():
            s.update(trials, force=True)

    def on_trial_result(self, iteration, trials, trial, result, **info):
        if s := self._session():
            s.update(trials)

    def on_trial_complete(self, iteration, trials, trial, **info):
        if s := self._session():
            s.refresh(trials, ending=trial)
            s.update(trials, force=True)

    def on_checkpoint(self, iteration, trials, trial, checkpoint, **info):
        if s := self._session():
            s.checkpointed(trial, checkpoint)

    def on_trial_error(self, iteration, trials, trial, **info):
        if s := self._session():
            s.refresh(trials)
            s.update(trials, force=True)

    def on_step_end(self, iteration, trials, **info):
        if s := self._session():
            s.update(trials)
            s.prune()

    def on_experiment_end(self, trials, **info):
        if s := self._session():
            s.finish(trials)
