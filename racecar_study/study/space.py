"""Search-space translation: the spec's `Param`s as an Optuna define-by-run space, as Tune domains
(random search) or as an explicit list of points (grid search), plus the checks and the decoding
that all three share.

A trial's config is a flat dict of dotted paths (`{"method.lam": 1e-5}`); `active_overrides` drops
the parameters whose `when` does not hold, so every algorithm hands the trainable the same form.
"""

from __future__ import annotations

import itertools
import json
import math
from collections.abc import Callable
from typing import Any

from racecar_study.study.spec import Param, SpecError

Space = dict[str, Param]
_MISSING = object()
_MAX_ENUMERATION = 100_000  # assignments tried when checking that conditions can hold
_MAX_BUILDS = 64  # network configurations a launch builds to check them (shape_points)


def is_active(param: Param, values: dict[str, Any]) -> bool:
    return all(values.get(k, _MISSING) == v for k, v in (param.when or {}).items())


def ordered(space: Space) -> list[tuple[str, Param]]:
    """Parameters with every `when` parent before its children; a cycle is a SpecError."""
    done: dict[str, Param] = {}
    pending = dict(space)
    while pending:
        ready = [p for p, prm in pending.items() if all(k in done for k in (prm.when or {}))]
        if not ready:
            raise SpecError(
                f"search.space: the 'when' conditions of {', '.join(sorted(pending))} form a cycle"
            )
        for path in ready:
            done[path] = pending.pop(path)
    return list(done.items())


def active_overrides(space: Space, config: dict[str, Any]) -> dict[str, Any]:
    """The dotted overrides a trial applies: config values of the parameters that are active,
    a grid point's JSON label (see `grid_points`) decoded."""
    chosen: dict[str, Any] = {}
    for path, param in ordered(space):
        if path in config and is_active(param, chosen):
            chosen[path] = _decoded(param, config[path])
    return chosen


def _labels(param: Param) -> list[str] | None:
    """JSON labels of a choice that holds lists or dicts (None when every value is a scalar)."""
    if param.kind != "choice" or all(_plain(v) for v in param.choice):
        return None
    return [json.dumps(v) for v in param.choice]


def _decoded(param: Param, value: Any) -> Any:
    labels = _labels(param)
    if labels is not None and isinstance(value, str) and value in labels:
        return param.choice[labels.index(value)]
    return value


def _reachable(space: Space) -> set[str]:
    """Parameters that some assignment of the controlling choices activates."""
    order = ordered(space)
    controllers = sorted({k for _, p in order for k in (p.when or {})})
    values = [space[c].choice for c in controllers]
    if any(len(v) > _MAX_ENUMERATION for v in values):
        return set(space)
    reached: set[str] = set()
    for n, combo in enumerate(itertools.product(*values)):
        if n >= _MAX_ENUMERATION:  # too many to enumerate: assume the rest can hold
            return set(space)
        fixed = dict(zip(controllers, combo))
        chosen: dict[str, Any] = {}
        for path, param in order:
            if is_active(param, chosen):
                reached.add(path)
                chosen[path] = fixed.get(path)
    return reached


def check_space(space: Space, algorithm: str) -> None:
    """A space that can be searched: not empty, no cycles, every parameter can become active, and
    grid search only over choice/int parameters."""
    if not space:
        raise SpecError("search.space: empty; give at least one parameter to search")
    never = sorted(set(space) - _reachable(space))
    if never:
        raise SpecError(f"search.space.{never[0]}: its 'when' conditions can never all hold")
    if algorithm == "grid":
        for path, param in space.items():
            if param.kind not in _GRID_VALUES:
                raise SpecError(
                    f"search.space.{path}: grid search needs choice or int parameters, not {param.kind}"
                )


# --- Optuna (define-by-run, so `when` becomes an if) -----------------------------------------------


def _plain(v: Any) -> bool:
    return v is None or isinstance(v, bool | int | float | str)


def _suggest_choice(trial, path: str, param: Param) -> Any:
    # Optuna's categoricals hold only scalars: lists such as widths [256, 128] travel as JSON labels.
    labels = _labels(param)
    if labels is None:
        return trial.suggest_categorical(path, list(param.choice))
    return _decoded(param, trial.suggest_categorical(path, labels))


_OPTUNA: dict[str, Callable] = {
    "loguniform": lambda t, path, p: t.suggest_float(path, *p.loguniform, log=True),
    "uniform": lambda t, path, p: t.suggest_float(path, *p.uniform),
    "int": lambda t, path, p: t.suggest_int(path, *p.int),
    "choice": _suggest_choice,
}


class OptunaSpace:
    """The define-by-run function for `OptunaSearch(space=...)`.

    A class, not a closure: OptunaSearch saves itself with plain pickle for `Tuner.restore`.
    """

    def __init__(self, space: Space):
        self.space = dict(space)

    def __call__(self, trial) -> dict[str, Any]:
        chosen: dict[str, Any] = {}
        for path, param in ordered(self.space):
            if is_active(param, chosen):
                chosen[path] = _OPTUNA[param.kind](trial, path, param)
        return chosen  # decoded values replace the JSON labels Optuna recorded


# --- Tune domains (random search: every parameter drawn, inactive ones dropped by the trial) -------


def _tune_domain(param: Param):
    from ray import tune

    domains = {
        "loguniform": lambda p: tune.loguniform(*p.loguniform),
        "uniform": lambda p: tune.uniform(*p.uniform),
        "int": lambda p: tune.randint(p.int[0], p.int[1] + 1),  # randint's upper bound is exclusive
        "choice": lambda p: tune.choice(list(p.choice)),
    }
    return domains[param.kind](param)


def tune_space(space: Space) -> dict[str, Any]:
    return {path: _tune_domain(param) for path, param in space.items()}


# --- grid (explicit points, so that conditional parameters do not multiply the grid) ---------------

_GRID_VALUES: dict[str, Callable[[Param], list]] = {
    "choice": lambda p: list(p.choice),
    "int": lambda p: list(range(p.int[0], p.int[1] + 1)),
}


def grid_points(space: Space) -> list[dict[str, Any]]:
    """Every combination, conditional parameters only where they apply. A list or dict value
    (widths [64, 32]) stands as its JSON label: Tune walks into a preset point's lists as if they
    were nested parameters and fails on them. `active_overrides` decodes the labels."""
    points: list[dict[str, Any]] = [{}]
    for path, param in ordered(space):
        labels = _labels(param)
        grown = []
        for point in points:
            if is_active(param, {k: _decoded(space[k], v) for k, v in point.items()}):
                values = _GRID_VALUES[param.kind](param)
                grown += [{**point, path: labels[i] if labels else v} for i, v in enumerate(values)]
            else:
                grown.append(point)
        points = grown
    return points


COUNT_LIMIT = 100_000  # spaces with more combinations than this are not enumerated to count them


def countable(space: Space) -> bool:
    """Only choice and int parameters, with at most COUNT_LIMIT combinations (checked without
    enumerating them)."""
    if any(param.kind not in _GRID_VALUES for param in space.values()):
        return False
    sizes = [len(p.choice) if p.kind == "choice" else p.int[1] - p.int[0] + 1 for p in space.values()]
    return math.prod(sizes) <= COUNT_LIMIT


def distinct_configurations(space: Space) -> int | None:
    """How many different trials a countable space can make (conditional parameters only where
    they apply); None where a parameter is continuous or the combinations are too many to count."""
    return len(grid_points(space)) if countable(space) else None


# --- configurations that shape the network (built before launch: netcheck.check_networks) --------


def _shapes_network(path: str, param: Param) -> bool:
    """Parameters that can change whether a network builds for the data: the data's options (its
    shape), the model's options, the method (pre and ort ask things of the network), per-layer
    lambda lists."""
    if path.startswith(("data.", "model.")) or path == "method.name":
        return True
    return path.startswith("method.") and _labels(param) is not None


def shape_points(space: Space, limit: int = _MAX_BUILDS) -> list[dict[str, Any]]:
    """Overrides of up to `limit` trial configurations, one per combination of the values of the
    parameters that shape the network (each at its candidate values: a choice's values, a range's
    bounds) and of the choices that switch them on; [{}] when the search shapes nothing."""
    kept = {path for path, param in space.items() if _shapes_network(path, param)}
    grown = True
    while grown:  # the choices whose values switch a kept parameter on, and theirs
        parents = {k for path in kept for k in (space[path].when or {}) if k in space}
        grown = not parents <= kept
        kept |= parents
    order = [(path, param) for path, param in ordered(space) if path in kept]

    def points(i: int, chosen: dict[str, Any]):
        if i == len(order):
            yield chosen
            return
        path, param = order[i]
        if not is_active(param, chosen):
            yield from points(i + 1, chosen)
            return
        for value in param.candidate_values():
            yield from points(i + 1, {**chosen, path: value})

    return list(itertools.islice(points(0, {}), limit))
