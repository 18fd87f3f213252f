"""A searcher restored from a state older than its Optuna database ignores late reports of trials
the database has closed, where Tune's OptunaSearch fails on them (the killed-driver race)."""

import optuna
import pytest
from ray.tune.search.optuna import OptunaSearch

from racecar_study.study.optuna_search import StudyOptunaSearch


def _searcher(cls, db):
    return cls(
        space={"x": optuna.distributions.FloatDistribution(0.0, 1.0)},
        metric="val_acc",
        mode="max",
        study_name="s",
        storage=optuna.storages.RDBStorage(f"sqlite:///{db}"),
        sampler=optuna.samplers.RandomSampler(seed=0),
    )


@pytest.mark.parametrize("cls", [OptunaSearch, StudyOptunaSearch])
def test_late_report_after_restore(tmp_path, cls):
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    live = _searcher(cls, tmp_path / "optuna.db")
    assert "x" in live.suggest("t1")
    live.on_trial_result("t1", {"val_acc": 0.4, "training_iteration": 1})
    live.save(str(tmp_path / "state.pkl"))  # Tune's snapshot: t1 still running
    live.on_trial_complete("t1", {"val_acc": 0.5, "training_iteration": 2})  # the database closes it

    restored = _searcher(cls, tmp_path / "optuna.db")
    restored.restore(str(tmp_path / "state.pkl"))
    late = {"val_acc": 0.6, "training_iteration": 2}
    if cls is OptunaSearch:  # the race this guards against
        with pytest.raises(optuna.exceptions.UpdateFinishedTrialError):
            restored.on_trial_result("t1", late)
        return
    restored.on_trial_result("t1", late)
    restored.on_trial_complete("t1", late)
    (trial,) = optuna.load_study(study_name="s", storage=f"sqlite:///{tmp_path / 'optuna.db'}").trials
    assert trial.state == optuna.trial.TrialState.COMPLETE and trial.value == 0.5  # the first value kept
