"""Before launch: build every network a study's search can ask for on the data it will train on,
so that a network that cannot take the data or suit the method is one spec error, not a failure of
every such trial after Ray has started."""

from __future__ import annotations

import json
from typing import Any

from racecar_study.core.trainer import PER_STATE_METRICS
from racecar_study.study.space import shape_points
from racecar_study.study.spec import SpecError, StudySpec, apply_overrides


def check_networks(spec: StudySpec, tables: dict[int, Any] | None) -> None:
    """Every network the search can ask for takes the data and suits the method: an architecture
    too deep for 8x8 images or a lambda list of the wrong length is a SpecError before launch, not
    a failure of every such trial. `tables`: the driver's data (runner.load_tables); None when the
    search changes the data, and then each data configuration it can ask for is loaded here once,
    on the first seed (bad data options among them are spec errors too)."""
    _check_method_metric(spec)
    from racecar_study.data import DataError
    from racecar_study.models import ModelError
    from racecar_study.study.experiment import build_net

    given = None if tables is None else _shape_of(next(iter(tables.values())))  # every point's
    loaded: dict[str, tuple[tuple[int, ...], int]] = {}
    for overrides in shape_points(spec.search.space):
        try:
            trial = apply_overrides(spec, overrides)
            shape, classes = given or _loaded_shape(trial, loaded)
            net, method = build_net(trial, spec.seeds[0], shape, classes)
            method.validate(net)
            _check_state_metric(spec.metric, net.num_states)
        except ValueError as e:  # ModelError, DataError, SpecError, a method's refusal
            message = str(e)
            if isinstance(e, ModelError):
                message = f"model: {e}"
            elif isinstance(e, DataError) and not message.startswith("data"):
                message = f"data: {e}"
            if overrides:
                message += f" (trials with {', '.join(f'{k}={v}' for k, v in overrides.items())})"
            raise SpecError(message) from None


def _loaded_shape(spec: StudySpec, seen: dict) -> tuple[tuple[int, ...], int]:
    """(input shape, number of classes) of the data configuration `spec` trains on, loaded once
    (`seen` keeps them) on its first seed."""
    key = json.dumps(spec.data.model_dump(mode="json"), sort_keys=True)
    if key not in seen:
        from racecar_study.data import load_table

        seen[key] = _shape_of(load_table(spec.data.name, seed=spec.seeds[0], **spec.data.options()))
    return seen[key]


def _shape_of(table) -> tuple[tuple[int, ...], int]:
    from racecar_study.data.storage import table_meta

    meta = table_meta(table)
    return tuple(meta["shape"]), len(meta["class_names"])


def _check_state_metric(metric: str, states: int) -> None:
    """A per-state metric (recon_err_9) names a state the network has."""
    stem, _, index = metric.rpartition("_")
    if stem in PER_STATE_METRICS and index.isdigit() and int(index) >= states:
        raise SpecError(
            f"metric: {metric} names state {index}, but the network reconstructs {states} "
            f"({stem}_0 to {stem}_{states - 1})"
        )


def _check_method_metric(spec: StudySpec) -> None:
    """A per-state metric only some methods report (reg_term_0: rr's per-layer terms) is reported
    by every method the search can ask for."""
    from racecar_study.core.methods import method_class, method_names

    stem, _, index = spec.metric.rpartition("_")
    if stem not in PER_STATE_METRICS or not index.isdigit():
        return
    param = spec.search.space.get("method.name")
    names = [spec.method.name] if param is None else param.candidate_values()
    if param is not None and param.when:  # trials where it is off train the spec's method
        names.append(spec.method.name)
    lacking = [n for n in dict.fromkeys(names) if stem not in method_class(n).state_metrics]
    if lacking:
        reporters = [n for n in method_names() if stem in method_class(n).state_metrics]
        message = f"metric: {spec.metric} is reported only by method {' and '.join(reporters)}"
        if param is not None:
            message += f" (trials with method.name={', '.join(lacking)})"
        else:
            message += f", not by {lacking[0]}"
        raise SpecError(message)
