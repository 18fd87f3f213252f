"""Tune's OptunaSearch, made to agree with its Optuna database after a restore and to skip
configurations a trial already has.

The Optuna study lives in SQLite and learns a trial's end at once; Tune's pickled copy of the
searcher is saved with its experiment state, about every second. A driver killed in between
comes back with a searcher that still waits on a trial the database has closed: the resumed
trial's next report then fails ("Trial#N has already finished and can not be updated"). After a
restore, trials the database has finished count as completed, so their late reports are ignored
(Optuna keeps the value it was told first).

TPE proposes a configuration again when it finds nothing better, which over a space of choices
is often: 3.2 of 12 trials over 12 configurations, in a simulation of the quickstart's space, and
2 of the quickstart's own 12. The same configuration and seeds train the same model again. A
repeat is closed as pruned (Optuna's advice for duplicates) and TPE asked again, up to REDRAWS
times (a space of choices with fewer configurations than trials is refused before launch:
search.check_study).

A trial resumed from its checkpoint trains again the epochs it reported after that checkpoint.
Optuna keeps the value it was told first for each step and warned of every repeat, a
`UserWarning` with a source path on the terminal of every `resume` after a kill; the repeats are
expected there, so they pass quietly.
"""

from __future__ import annotations

import warnings

from optuna.trial import TrialState
from ray.tune.search.optuna import OptunaSearch

REDRAWS = 20
REPORTED_AGAIN = "The reported value is ignored because this `step="  # Optuna's words


class StudyOptunaSearch(OptunaSearch):
    def suggest(self, trial_id: str):
        for attempt in range(REDRAWS):
            config = super().suggest(trial_id)
            if attempt == REDRAWS - 1 or not self._repeats(self._ot_trials[trial_id]):
                return config
            self._ot_study.tell(self._ot_trials.pop(trial_id), state=TrialState.PRUNED)
        return config

    def on_trial_result(self, trial_id: str, result: dict) -> None:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=REPORTED_AGAIN, category=UserWarning)
            super().on_trial_result(trial_id, result)

    def _repeats(self, ot_trial) -> bool:
        """Another trial of the study (any state, restored ones too) has these parameters."""
        return any(
            t.number != ot_trial.number and t.params == ot_trial.params
            for t in self._ot_study.get_trials(deepcopy=False)
        )

    def restore(self, checkpoint_path: str) -> None:
        super().restore(checkpoint_path)
        finished = {t.number for t in self._ot_study.get_trials(deepcopy=False) if t.state.is_finished()}
        for trial_id, ot_trial in self._ot_trials.items():
            if ot_trial.number in finished:
                self._completed_trials.add(trial_id)
