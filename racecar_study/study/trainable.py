"""The Ray Tune function trainable: one trial = the study spec with the trial's overrides, trained
for every seed in lockstep (seeds.py), reporting seed means every epoch.

Data arrives through the object store (one Arrow table per seed, put once by the driver); a
study that searches over `data.*` options loads data in each trial instead. The device is
"auto" unless the spec says otherwise: CUDA where the trial sees a GPU, else CPU, one code path.
"""

from __future__ import annotations

import contextlib
import socket
from pathlib import Path
from typing import Any

import ray
import torch
from ray import tune

from racecar_study.study.experiment import build_run, load_splits
from racecar_study.study.hooks import TrialHook, TrialInfo
from racecar_study.study.scratch import checkpoint_folder, sweep
from racecar_study.study.seeds import SeedGroup
from racecar_study.study.space import active_overrides
from racecar_study.study.spec import StudySpec, apply_overrides


def _splits(spec: StudySpec, seed: int, data_refs: dict[int, Any] | None):
    if data_refs is None:
        return load_splits(spec, seed)
    from racecar_study.data import splits_from_table

    return splits_from_table(ray.get(data_refs[seed]))


def _place() -> dict[str, str]:
    return {"node_id": ray.get_runtime_context().get_node_id(), "hostname": socket.gethostname()}


def train_trial(
    config: dict[str, Any],
    spec: StudySpec,
    data_refs: dict[int, Any] | None = None,
    trial_hooks: list[TrialHook] | None = None,
    context: dict[str, Any] | None = None,
) -> None:
    """`tune.with_parameters(train_trial, spec=..., data_refs=..., trial_hooks=..., context=...)`."""
    sweep()  # checkpoint folders of trials Tune killed on this host inside `tune.report`
    overrides = active_overrides(spec.search.space, config)
    trial_spec = apply_overrides(spec, overrides)
    # Each trial owns the CPUs it reserved; more threads would fight the trials beside it.
    torch.set_num_threads(max(1, int(spec.resources.cpu)))
    runs = [build_run(trial_spec, s, splits=_splits(trial_spec, s, data_refs)) for s in trial_spec.seeds]
    group = SeedGroup(runs, spec.metric)
    restored = tune.get_checkpoint()
    place = {**_place(), "device": str(runs[0].trainer.device)}
    ctx = tune.get_context()
    hooks = list(trial_hooks or [])
    extra: dict[str, Any] = {}
    with restored.as_directory() if restored is not None else contextlib.nullcontext() as folder:
        if folder is not None:
            group.load(Path(folder))
        info = TrialInfo(
            trial_id=ctx.get_trial_id(),
            trial_name=ctx.get_trial_name(),
            spec=trial_spec,
            overrides=overrides,
            context=dict(context or {}),
            resumed=restored is not None,
            node_id=place["node_id"],
            hostname=place["hostname"],
            run=runs[0],
            checkpoint_dir=None if folder is None else Path(folder),
        )
        for hook in hooks:
            extra.update(hook.on_trial_start(info))

    every = spec.checkpoint.every
    while not group.done:
        metrics = {**group.step(), **place, **extra}
        if spec.metric not in metrics:  # e.g. recon_err_9 of a 3-state net: say so, not Tune's traceback
            reported = sorted(k for k, v in metrics.items() if isinstance(v, int | float))
            raise ValueError(
                f"metric: this trial reports no '{spec.metric}'; it reports {', '.join(reported)}"
            )
        # Hooks see a report before Tune does: Tune may stop the trial inside `report`.
        if group.epoch % every == 0 or group.done:
            with checkpoint_folder() as tmp:
                group.save(tmp)
                for hook in hooks:
                    metrics.update(hook.on_report(metrics, tmp) or {})
                if group.done:
                    for hook in hooks:
                        hook.on_trial_end(metrics)
                tune.report(metrics, checkpoint=tune.Checkpoint.from_directory(tmp))
        else:
            for hook in hooks:
                metrics.update(hook.on_report(metrics, None) or {})
            tune.report(metrics)


def trial_dirname(trial) -> str:
    """Short trial folder names: Tune's default spells the whole config, lists included."""
    return f"{trial.trainable_name}_{trial.trial_id}"
