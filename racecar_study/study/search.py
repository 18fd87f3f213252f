"""Search algorithms and schedulers by name, as the spec's `search.algorithm` and `scheduler.kind`.

- optuna: TPE (seeded) over the define-by-run space; its study lives in `optuna.db` in the study
  folder, so a resumed study keeps the searcher's history.
- random: Tune's BasicVariantGenerator (seeded) over Tune domains.
- grid: every combination of the choice/int parameters once (conditional ones only where they
  apply); `num_samples` does not apply.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from racecar_study.study.layout import StudyPaths
from racecar_study.study.space import (
    OptunaSpace,
    check_space,
    countable,
    distinct_configurations,
    grid_points,
    tune_space,
)
from racecar_study.study.spec import SpecError, StudySpec


@dataclass
class SearchPlan:
    search_alg: Any
    num_samples: int
    param_space: dict[str, Any] = field(default_factory=dict)


def _optuna(spec: StudySpec, paths: StudyPaths, limit: int | None) -> SearchPlan:
    import optuna
    from ray.tune.search import ConcurrencyLimiter

    from racecar_study.study.optuna_search import StudyOptunaSearch

    optuna.logging.set_verbosity(optuna.logging.WARNING)  # one line per trial is the view's job
    n = min(spec.search.num_samples, limit or spec.search.num_samples)
    # TPE's default 10 random start-up trials would be all of a 12-trial study; a third of the
    # budget (at least 3) leaves TPE something to do.
    startup = max(3, min(10, n // 3))
    sampler = optuna.samplers.TPESampler(seed=spec.search.seed, n_startup_trials=startup)
    searcher = StudyOptunaSearch(
        space=OptunaSpace(spec.search.space),
        metric=spec.metric,
        mode=spec.mode,
        sampler=sampler,
        study_name=spec.name,
        storage=optuna.storages.RDBStorage(f"sqlite:///{paths.optuna_db}"),
    )
    return SearchPlan(ConcurrencyLimiter(searcher, max_concurrent=spec.search.max_concurrent), n)


def _random(spec: StudySpec, paths: StudyPaths, limit: int | None) -> SearchPlan:
    from ray.tune.search.basic_variant import BasicVariantGenerator

    n = min(spec.search.num_samples, limit or spec.search.num_samples)
    if not countable(spec.search.space):
        searcher = BasicVariantGenerator(
            max_concurrent=spec.search.max_concurrent, random_state=spec.search.seed
        )
        return SearchPlan(searcher, n, param_space(spec))
    # A space of choices: n different points of it, drawn by the seed. Independent draws would
    # repeat some (4 draws over 4 configurations repeat one 91% of the time), training the same
    # model again.
    points = grid_points(spec.search.space)
    points = [points[i] for i in random.Random(spec.search.seed).sample(range(len(points)), n)]
    searcher = BasicVariantGenerator(
        points_to_evaluate=points, max_concurrent=spec.search.max_concurrent, random_state=spec.search.seed
    )
    return SearchPlan(searcher, n, param_space(spec))


def _grid(spec: StudySpec, paths: StudyPaths, limit: int | None) -> SearchPlan:
    from ray.tune.search.basic_variant import BasicVariantGenerator

    points = _spread(grid_points(spec.search.space), limit)
    searcher = BasicVariantGenerator(
        points_to_evaluate=points, max_concurrent=spec.search.max_concurrent, random_state=spec.search.seed
    )
    # Tune takes preset points only for keys the param_space has: None holds each key's place.
    return SearchPlan(searcher, len(points), param_space(spec))


def _spread(points: list, limit: int | None) -> list:
    """`limit` points evenly spaced over the grid, its first and last included (a smoke run of an
    architectures x methods grid then tries every architecture, not only the first one)."""
    if not limit or len(points) <= limit:
        return points
    if limit == 1:
        return points[:1]
    return [points[round(i * (len(points) - 1) / (limit - 1))] for i in range(limit)]


SEARCHERS: dict[str, Callable[[StudySpec, StudyPaths, int | None], SearchPlan]] = {
    "optuna": _optuna,
    "random": _random,
    "grid": _grid,
}


def check_study(spec: StudySpec, new: bool = True) -> None:
    """What the spec model cannot see alone: the space can be searched, the scheduler fits.
    `new`: a launch, not a resume (a study launched before a check existed still resumes)."""
    check_space(spec.search.space, spec.search.algorithm)
    distinct = distinct_configurations(spec.search.space) if new else None
    if spec.search.algorithm != "grid" and distinct is not None and spec.search.num_samples > distinct:
        # the same configuration with the same seeds trains the same model again
        raise SpecError(
            f"search.num_samples: {spec.search.num_samples} trials, but the space (choices and "
            f"integers only) holds {distinct} different configurations, so "
            f"{spec.search.num_samples - distinct} would train one again; ask for at most {distinct} "
            "or use algorithm: grid"
        )
    if spec.scheduler.kind == "asha" and spec.scheduler.grace_period > most_epochs(spec):
        raise SpecError(
            f"scheduler.grace_period: {spec.scheduler.grace_period} epochs is more than train.epochs "
            f"({most_epochs(spec)}{' at most' if 'train.epochs' in spec.search.space else ''})"
        )
    searched = spec.search.space.get("train.device")
    devices = searched.candidate_values() if searched is not None else [spec.train.device]
    cuda = next((d for d in devices if str(d).startswith("cuda")), None)
    if cuda is not None and spec.resources.gpu == 0:  # Ray sets CUDA_VISIBLE_DEVICES='' for them
        raise SpecError(
            f"train.device: {cuda} needs resources.gpu > 0; Ray shows no GPU to a trial that asks "
            "for none (device: auto trains on the GPU a trial is given, else on CPU)"
        )


def most_epochs(spec: StudySpec) -> int:
    """The most epochs any trial runs: train.epochs, or the largest the search can set."""
    searched = spec.search.space.get("train.epochs")
    if searched is None:
        return spec.train.epochs
    values = [int(v) for v in searched.candidate_values()]
    # a conditional one leaves the trials where it does not apply at train.epochs
    return max(values + [spec.train.epochs] if searched.when else values)


def build_search(spec: StudySpec, paths: StudyPaths, limit: int | None = None) -> SearchPlan:
    """The searcher for a spec that has been through `check_study` (runner.resolve_spec does it)."""
    return SEARCHERS[spec.search.algorithm](spec, paths, limit)


def param_space(spec: StudySpec) -> dict[str, Any]:
    """The Tuner's param_space: Tune domains for random search, placeholders for grid points (also
    a random search's over a space of choices), and nothing for Optuna, which defines its space as
    it runs."""
    spaces = {
        "random": lambda space: dict.fromkeys(space) if countable(space) else tune_space(space),
        "grid": lambda space: dict.fromkeys(space),
        "optuna": lambda space: {},
    }
    return spaces[spec.search.algorithm](spec.search.space)


def _asha(spec: StudySpec):
    from ray.tune.schedulers import ASHAScheduler

    return ASHAScheduler(
        time_attr="epoch",  # the trial's own epoch count, which survives a resume unchanged
        max_t=most_epochs(spec),  # ASHA ends every trial there: a searched train.epochs sets it
        grace_period=spec.scheduler.grace_period,
        reduction_factor=spec.scheduler.reduction_factor,
    )


def _fifo(spec: StudySpec):
    from ray.tune.schedulers import FIFOScheduler

    return FIFOScheduler()


SCHEDULERS: dict[str, Callable[[StudySpec], Any]] = {"asha": _asha, "none": _fifo}


def build_scheduler(spec: StudySpec):
    return SCHEDULERS[spec.scheduler.kind](spec)
