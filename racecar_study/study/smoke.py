"""`--smoke`: the same study, shrunk so that it runs in well under a minute (CI, a first look).

At most 2 epochs, 4 trials (spread over a grid), one seed and 20 training images per class; the
study is named `<name>-smoke` so that it never mixes with the real one.
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
    return apply_overrides(
        spec,
        {
            "name": f"{spec.name}-smoke",
            "train.epochs": epochs,
            "search.num_samples": min(spec.search.num_samples, TRIALS),
            "scheduler.grace_period": min(spec.scheduler.grace_period, epochs),
            "checkpoint.every": 1,
            "seeds": spec.seeds[:1],
            "data.n_per_class": _per_class(spec),
            "method.pre_epochs": min(spec.method.pre_epochs, 1),
        },
    )
