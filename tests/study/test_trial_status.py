"""How a trial's status is read: done, stopped by the scheduler, or diverged (its loss stopped being
finite), and what the progress view shows of it."""

from types import SimpleNamespace

import pytest
from rich.console import Console

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
