"""`--smoke`: the same study, shrunk so that it runs in well under a minute (CI, a first look).

At most 2 epochs, 4 trials (spread over a grid), one seed and 20 training images per class, also
where the search sets epochs or images per class; the study is named `<name>-smoke` so that it
never mixes with the real one.
"""

from __future__ import annotations

from racecar_study.study.spec import StudySpec, apply_overrides

EPOCHS, TRIALS, PER_CLASS = 2, 4, 20


def _per_class(spec: StudySpec) -> int:
    """PER_CLASS, or fewer where the data set's smallest training class has fewer."""
    from racecar_study.study.experiment import load_splits

    y = load_splits(spec).y_train
    smallest = int(y.bincount().min()) if len(y) else PER_CLASS
    return max(1, min(PER_CLASS, smallest, spec.data.options().get("n_per_class") or PER_CLASS))


def smoke_spec(spec: StudySpec) -> StudySpec:
    epochs = min(spec.train.epochs, EPOCHS)
    caps = {
        "train.epochs": epochs,
        "data.n_per_class": _per_class(spec),
        "method.pre_epochs": min(spec.method.pre_epochs, 1),
    }
    shrunk = apply_overrides(
        spec,
        {
            "name": f"{spec.name}-smoke",
            "search.num_samples": min(spec.search.num_samples, TRIALS),
            "scheduler.grace_period": min(spec.scheduler.grace_period, epochs),
            "checkpoint.every": 1,
            "seeds": spec.seeds[:1],
            **caps,
        },
    )
    return _capped_search(shrunk, caps)


def _capped_search(spec: StudySpec, caps: dict[str, int]) -> StudySpec:
    """The search's values of the capped fields capped as well (a searched `train.epochs: {int:
    [50, 200]}` ran 200 epochs), and the conditions that name them; a grid that shrinks to fewer
    points says so in num_samples, as does a space of choices that shrinks below the trials asked."""
    if not caps.keys() & spec.search.space.keys():
        return spec
    raw = spec.model_dump(mode="json", exclude_none=False)
    space = raw["search"]["space"]

    def cap(path: str, value):
        return min(value, caps[path]) if isinstance(value, int) else caps[path]  # None: all images

    for path, param in space.items():
        for other, value in (param.get("when") or {}).items():
            if other in caps:
                param["when"][other] = cap(other, value)
        if path not in caps:
            continue
        if param.get("choice") is not None:
            param["choice"] = list(dict.fromkeys(cap(path, v) for v in param["choice"]))
        elif param.get("int") is not None:
            low, high = (cap(path, v) for v in param["int"])
            param["int"], param["choice"] = ([low, high], None) if low < high else (None, [high])
    capped = StudySpec.model_validate(raw)
    from racecar_study.study.space import distinct_configurations, grid_points

    if spec.search.algorithm == "grid":
        points = len(grid_points(capped.search.space))
        return apply_overrides(capped, {"search.num_samples": min(points, TRIALS)})
    # capped choices merge ([50, 100] epochs -> [2]): a space of choices may now hold fewer
    # configurations than the trials asked of it, which check_study refuses
    distinct = distinct_configurations(capped.search.space)
    if distinct is not None and capped.search.num_samples > distinct:
        return apply_overrides(capped, {"search.num_samples": distinct})
    return capped
