"""Filters on Ray Tune's driver log: what Tune logs with a traceback, the study says in one line."""

from __future__ import annotations

import logging
import sys
from collections import Counter
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from racecar_study.study.session import StudySession


def one_line(error: BaseException) -> str:
    return f"{type(error).__name__}: {error}".splitlines()[0]


class _TuneLogFilter(logging.Filter):
    """A filter on Tune's controller log while a study runs (`with Filter(session): tuner.fit()`)."""

    LOGGER = "ray.tune.execution.tune_controller"

    def __init__(self, session: StudySession | None):
        super().__init__()
        self.session = session

    def __enter__(self):
        logging.getLogger(self.LOGGER).addFilter(self)
        return self

    def __exit__(self, *exc) -> None:
        logging.getLogger(self.LOGGER).removeFilter(self)


class RestoreFailure(_TuneLogFilter):
    """Tune logs a failed restore with its traceback and goes on with an empty experiment: keep
    the exception's one line for the session's error instead of printing it."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.getMessage() == "Failed to restore the run state." and record.exc_info:
            self.session.restore_error = one_line(record.exc_info[1])
            return False
        return True


class TrialFailure(_TuneLogFilter):
    """Tune logs every failed trial task with the whole remote traceback, which the trial's
    error.txt keeps: print the exception's one line and where that file is instead."""

    PREFIX = "Trial task failed for trial "

    def __init__(self, session: StudySession, retries: int = 0):
        super().__init__(session)
        self.retries = retries  # FailureConfig's max_failures: Tune runs a failed trial again so often
        self.failed: Counter[str] = Counter()

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if not (message.startswith(self.PREFIX) and record.exc_info):
            return True
        name = message.removeprefix(self.PREFIX)
        error = getattr(record.exc_info[1], "cause", None) or record.exc_info[1]  # RayTaskError wraps it
        tune = self.session.paths.tune_dir or self.session.paths.tune_path  # a folder here, or a URI
        where = f"{tune}/{name}/error.txt"
        again = " again" if self.failed[name] else ""
        self.failed[name] += 1
        retry = "; retrying it from its last checkpoint" if self.failed[name] <= self.retries else ""
        line = f"trial {name} failed{again}: {one_line(error)}{retry} (traceback: {where})"
        console = getattr(self.session.view, "console", None)  # a view of one's own may have none
        if console is not None:
            console.print(line, highlight=False, soft_wrap=True)
        else:
            print(line, file=sys.stderr)
        return False


class UnfinishedTrials(_TuneLogFilter):
    """Tune's closing "Trials did not complete: [...]" names trials the summary lists with their
    errors (and the lines above gave one each as they failed)."""

    LOGGER = "ray.tune.tune"

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith("Trials did not complete")


class MissingResults(_TuneLogFilter):
    """Tune's analysis of a restored or finished experiment warns "Failed to fetch metrics" for
    every trial with no result file: trials a kill or a failure caught before their first report.
    They are pending (a resume runs them) or failed (the summary says why), not lost."""

    LOGGER = "ray.tune.analysis.experiment_analysis"

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if not message.startswith("Failed to fetch metrics for "):
            return True
        return not all(" were not found at " in line for line in message.splitlines()[1:])
