"""How a trial's status is read: done, stopped by the scheduler, or diverged (its loss stopped being
finite), and what the progress view shows of it."""

import re
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pyarrow.parquet as pq
import pytest
from rich.console import Console
from study_helpers import spec_dict, write_spec

from racecar_study.cli.main import main
from racecar_study.study.experiment import build_run
from racecar_study.study.progress import ProgressView
from racecar_study.study.results import trial_status
from racecar_study.study.seeds import SeedGroup
from racecar_study.study.spec import parse_spec

EPOCHS = 3


def _spec(lr: float):
    return parse_spec(
        {
            "name": "status",
            "data": {"name": "peak", "n_per_class": 10},
            "model": {"arch": "mlp", "widths": [16]},
            "method": {"name": "rr", "lam": 1e-3},
            "train": {"epochs": EPOCHS, "batch_size": 10, "optimizer": "sgd", "lr": lr},
            "seeds": [0, 1],
        }
    )


def _trial(trial_id: str, last: dict | None, status: str = "TERMINATED"):
    return SimpleNamespace(
        trial_id=trial_id,
        status=status,
        has_reported_at_least_once=last is not None,
        last_result=last or {},
        metric_analysis={},
    )


@pytest.mark.parametrize(("lr", "diverges"), [(1e-2, False), (1e12, True)])
def test_a_seed_whose_loss_diverges_ends_the_trial_and_says_so(tmp_path, monkeypatch, lr, diverges):
    monkeypatch.setenv("RACECAR_CACHE_DIR", str(tmp_path))
    spec = _spec(lr)
    group = SeedGroup([build_run(spec, s) for s in spec.seeds], spec.metric)
    reports = []
    while not group.done:
        reports.append(group.step())
    if diverges:
        assert len(reports) == 1 and reports[-1]["diverged"] == 1
    else:
        assert len(reports) == EPOCHS and all("diverged" not in r for r in reports)


def test_status_of_an_ended_trial():
    assert trial_status(_trial("a", {"epoch": EPOCHS}), EPOCHS) == "done"
    assert trial_status(_trial("b", {"epoch": 1}), EPOCHS) == "stopped"
    assert trial_status(_trial("c", {"epoch": 1, "diverged": 1}), EPOCHS) == "diverged"
    ending = _trial("d", {"epoch": 1, "diverged": 1}, "RUNNING")  # on_trial_complete: still RUNNING
    assert trial_status(ending, EPOCHS, ending=True) == "diverged"
    assert trial_status(_trial("e", None, "ERROR"), EPOCHS) == "error"


def test_the_headline_names_diverged_trials_once_there_are_some():
    view = ProgressView(_spec(1e-2), console=Console(file=None, force_terminal=False), live=False)
    view.total = 2
    calm = [_trial("a", {"epoch": EPOCHS}), _trial("b", {"epoch": 1})]
    assert view._headline(calm) == "pending 0  running 0  done 1  stopped 1  error 0"
    wild = [_trial("a", {"epoch": EPOCHS}), _trial("c", {"epoch": 1, "diverged": 1})]
    assert view._headline(wild) == "pending 0  running 0  done 1  stopped 0  diverged 1  error 0"


def test_a_failing_trial_is_one_line_not_tunes_traceback(tmp_path, capsys):
    """A metric no trial reports (recon_err_9 of a 2-state network; the launch builds no network
    when the search changes the data, as trials then load their own) fails each trial with one line
    naming what it does report, and where the traceback is; Tune's tracebacks stay off the terminal."""
    changes = {"search.num_samples": 1, "search.space.data.n_per_class": {"choice": [10, 12]}}
    spec = write_spec(tmp_path, spec_dict(metric="recon_err_9", **changes))
    runs = tmp_path / "runs"
    argv = [sys.executable, "-m", "racecar_study.cli", "run", str(spec), "--plain", "--storage", str(runs)]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=300)
    said = proc.stdout + proc.stderr
    assert proc.returncode == 1 and "Traceback" not in said and "Trials did not complete" not in said, said
    failed = [
        line for line in said.splitlines() if line.startswith("trial train_trial_") and " failed" in line
    ]
    assert len(failed) == 2, said  # Tune tries a failed trial twice (FailureConfig)
    first = re.fullmatch(
        r"trial (\S+) failed: ValueError: metric: this trial reports no 'recon_err_9'; (.*)", failed[0]
    )
    assert first and "recon_err_1, " in first[2] and " failed again: " in failed[1], failed
    assert "; retrying it from its last checkpoint (traceback: " in first[2]  # Tune runs it once more
    assert "retrying" not in failed[1]  # and then gives up
    traceback = re.search(r"\(traceback: (\S+)\)$", first[2])
    assert traceback and "racecar_study/study/trainable.py" in Path(traceback[1]).read_text()
    (row,) = pq.read_table(runs / "tiny" / "results.parquet").to_pylist()
    assert row["status"] == "error" and "recon_err_9" in row["error"]
    assert (
        f"error {row['trial_id']}: ValueError: metric: this trial reports no 'recon_err_9'" in said
    )  # summary
    with pytest.raises(SystemExit) as exit_:  # argparse's error, in-process
        main(["results", str(runs / "tiny"), "--top", "0"])
    assert exit_.value.code == 2
    assert capsys.readouterr().err.strip().endswith("argument --top: must be > 0, got 0")
