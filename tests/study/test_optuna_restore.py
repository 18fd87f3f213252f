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


def test_tpe_repeats_are_asked_again(tmp_path):
    """Over 8 configurations TPE proposes some twice in 8 trials (Tune's OptunaSearch runs them);
    the study's searcher prunes each repeat and asks again, so 8 trials get 8 configurations, and
    a 9th, with none left, takes a repeat rather than none."""
    optuna.logging.set_verbosity(optuna.logging.ERROR)

    def space(trial):
        trial.suggest_categorical("m", ["std", "ort"])
        trial.suggest_categorical("w", [16, 32, 64, 128])

    def run(cls, n):
        searcher = cls(
            space=space,
            metric="val_acc",
            mode="max",
            study_name=cls.__name__,
            storage=optuna.storages.RDBStorage(f"sqlite:///{tmp_path / 'optuna.db'}"),
            sampler=optuna.samplers.TPESampler(seed=0, n_startup_trials=2),
        )
        configs = []
        for i in range(n):
            config = searcher.suggest(f"t{i}")
            configs.append((config["m"], config["w"]))
            searcher.on_trial_complete(f"t{i}", {"val_acc": config["w"] / 128 + (config["m"] == "ort")})
        return configs

    assert len(set(run(OptunaSearch, 8))) < 8  # what this guards against
    configs = run(StudyOptunaSearch, 9)
    assert len(set(configs[:8])) == 8 and configs[8] in configs[:8]


def test_an_epoch_reported_again_after_a_resume_passes_quietly(tmp_path, recwarn):
    """A trial resumed from its checkpoint reports again the epochs it reported after it; Optuna
    keeps the first value and warned of each repeat on the terminal of every resume."""
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    searcher = _searcher(StudyOptunaSearch, tmp_path / "optuna.db")
    searcher.suggest("t1")
    for epoch, value in ((1, 0.4), (2, 0.5), (2, 0.45)):  # epoch 2 again after the resume
        searcher.on_trial_result("t1", {"val_acc": value, "training_iteration": epoch})
    searcher.on_trial_complete("t1", {"val_acc": 0.45, "training_iteration": 2})
    assert [str(w.message) for w in recwarn] == []
    (trial,) = optuna.load_study(study_name="s", storage=f"sqlite:///{tmp_path / 'optuna.db'}").trials
    assert trial.intermediate_values == {1: 0.4, 2: 0.5}  # Optuna kept what it was told first
