"""The one line a failed trial gets instead of Tune's traceback (no Ray needed: a log record as
Tune's controller writes it)."""

import logging
from types import SimpleNamespace

import pytest

from racecar_study.study.layout import study_paths
from racecar_study.study.tune_log import TrialFailure

NAME = "train_trial_1a2b3c4d"


def _record(error: BaseException) -> logging.LogRecord:
    return logging.LogRecord(
        "ray.tune.execution.tune_controller",
        logging.ERROR,
        __file__,
        1,
        f"Trial task failed for trial {NAME}",
        None,
        (type(error), error, None),
    )


@pytest.mark.parametrize("storage", ["local", "file", "s3"])
def test_the_line_names_the_error_the_retry_and_where_the_traceback_is(tmp_path, capsys, storage):
    given = {"local": str(tmp_path), "file": f"file://{tmp_path}", "s3": "s3://bucket/runs"}[storage]
    paths = study_paths("s", given, "127.0.0.1:6379" if storage == "s3" else None, False)
    # a view of one's own (a benchmark's clock) need not have a console: the line goes to stderr
    failure = TrialFailure(SimpleNamespace(paths=paths, view=object()), retries=1)
    error = ValueError("device 'cuda' asked for\nbut CUDA is not available here")
    assert not failure.filter(_record(error)) and not failure.filter(_record(error))
    first, again = capsys.readouterr().err.splitlines()
    where = "s3://bucket/runs/s/tune" if storage == "s3" else str(tmp_path.resolve() / "s" / "tune")
    assert first == (
        f"trial {NAME} failed: ValueError: device 'cuda' asked for; retrying it from its last "
        f"checkpoint (traceback: {where}/{NAME}/error.txt)"
    )
    trace = f"(traceback: {where}/{NAME}/error.txt)"
    assert again == f"trial {NAME} failed again: ValueError: device 'cuda' asked for {trace}"
    other = logging.LogRecord("x", logging.ERROR, __file__, 1, "something else", None, None)
    assert failure.filter(other)  # passes through
