"""Tune's OptunaSearch, made to agree with its Optuna database after a restore.

The Optuna study lives in SQLite and learns a trial's end at once; Tune's pickled copy of the
searcher is saved with its experiment state, about every second. A driver killed in between
comes back with a searcher that still waits on a trial the database has closed: the resumed
trial's next report then fails ("Trial#N has already finished and can not be updated"). After a
restore, trials the database has finished count as completed, so their late reports are ignored
(Optuna keeps the value it was told first).
"""

from __future__ import annotations

from ray.tune.search.optuna import OptunaSearch


class StudyOptunaSearch(OptunaSearch):
    def restore(self, checkpoint_path: str) -> None:
        super().restore(checkpoint_path)
        finished = {t.number for t in self._ot_study.get_trials(deepcopy=False) if t.state.is_finished()}
        for trial_id, ot_trial in self._ot_trials.items():
            if ot_trial.number in finished:
                self._completed_trials.add(trial_id)
