"""One training run from a spec: data, model, method, trainer. No Ray here; the Ray trainable and
the `train` command both call this."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from racecar_study.core.callbacks import Checkpoint, CsvMetrics
from racecar_study.core.methods import Method, build_method
from racecar_study.core.net import RacecarNet
from racecar_study.core.trainer import Callback, Trainer
from racecar_study.data import DataSplits, load_dataset
from racecar_study.study.spec import SpecError, StudySpec, dump_spec


@dataclass
class Run:
    spec: StudySpec
    seed: int
    splits: DataSplits
    net: RacecarNet
    trainer: Trainer

    @property
    def val(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Validation split, or the test split when the data set has no validation samples."""
        s = self.splits
        return (s.x_val, s.y_val) if len(s.x_val) else (s.x_test, s.y_test)


def load_splits(spec: StudySpec, seed: int | None = None) -> DataSplits:
    return load_dataset(spec.data.name, seed=spec.seeds[0] if seed is None else seed, **spec.data.options())


def build_run(
    spec: StudySpec, seed: int, splits: DataSplits | None = None, callbacks: list[Callback] | tuple = ()
) -> Run:
    splits = splits if splits is not None else load_splits(spec, seed)
    torch.manual_seed(seed)  # model initialisation is part of the seeded run
    net, method = build_net(spec, seed, splits.input_shape, splits.num_classes)
    trainer = Trainer(net, method, spec.train.to_config(seed), list(callbacks))
    return Run(spec, seed, splits, net, trainer)


def build_net(
    spec: StudySpec, seed: int, input_shape: tuple[int, ...], num_classes: int
) -> tuple[RacecarNet, Method]:
    """The spec's network for data of this shape, and its method (which the Trainer validates
    against the network). ModelError when the network cannot be built, SpecError when the batch
    size or the lambdas do not suit it."""
    from racecar_study.models import ModelError, build_model, resolve_lambdas

    options = spec.model.options()
    # `outputs` widens the head beyond the data's classes (the MNIST SVD test: 784 -> 10 on two digits)
    outputs = int(options.pop("outputs", num_classes))
    net = build_model(spec.model.arch, input_shape, outputs, **options)
    _check_batch_norm(net, spec.train.batch_size)
    method_cfg = spec.method.to_config(seed)
    if spec.method.lam_ratio is not None or not isinstance(method_cfg.lam, float | int):
        try:
            method_cfg.lam = resolve_lambdas(net, method_cfg.lam, ratio=spec.method.lam_ratio)
        except ModelError as e:
            raise SpecError(f"method.lam: {e}") from None
    return net, build_method(method_cfg)


def _check_batch_norm(net: torch.nn.Module, batch_size: int) -> None:
    """Batch norm trains on a batch's statistics, which one sample does not have (torch raises a
    ValueError from deep inside the first step)."""
    if batch_size != 1:
        return
    norms = [type(m).__name__ for m in net.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    if norms:
        raise SpecError(
            f"train.batch_size: 1 sample per batch, but the model's {norms[0]} layers need at least 2 "
            "in training; use a larger batch or the architecture's batch_norm: false"
        )


def fit(run: Run) -> list[dict[str, float]]:
    s = run.splits
    return run.trainer.fit((s.x_train, s.y_train), run.val)


def write_run_outputs(run: Run, out: Path) -> None:
    """model.pt, first-layer SVD files and pictures, reverse-pass reconstructions; of a diverged run
    only model.pt (its weights are not finite: nothing to decompose or draw)."""
    import numpy as np

    from racecar_study.core.analysis import save_model_pictures

    out.mkdir(parents=True, exist_ok=True)
    torch.save(run.net.state_dict(), out / "model.pt")
    if run.trainer.diverged:
        return
    x = run.splits.x_train[:8].to(run.trainer.device)
    svd = save_model_pictures(run.net, out, input_shape=run.splits.input_shape, x=x)
    np.save(out / "svd" / "singular_values.npy", svd.singular_values)
    np.save(out / "svd" / "right_singular_vectors.npy", svd.right_vectors)


# What train_to_dir writes into its folder (svd/ is a folder of the SVD's files and picture).
RUN_OUTPUTS = (
    "config.yaml",
    "metrics.csv",
    "pretrain.csv",
    "checkpoint.pt",
    "model.pt",
    "reconstructions.png",
    "svd",
)


def previous_outputs(out: Path) -> list[str]:
    """The names of RUN_OUTPUTS already in `out`: a run trained there before."""
    return [name for name in RUN_OUTPUTS if (out / name).exists()]


def remove_outputs(out: Path) -> None:
    """Delete a previous run's outputs from `out`, and nothing else that is there."""
    import shutil

    for name in previous_outputs(out):
        path = out / name
        shutil.rmtree(path) if path.is_dir() else path.unlink()


class Interrupted(KeyboardInterrupt):
    """Ctrl-C in `train_to_dir`, raised once the finished epochs' outputs are written: config.yaml,
    metrics.csv and the checkpoint of the last epoch it was due (`checkpoint_epoch`, None if none)."""

    def __init__(self, run: Run, checkpoint_epoch: int | None):
        super().__init__()
        self.run, self.checkpoint_epoch = run, checkpoint_epoch


def _dir_callbacks(
    spec: StudySpec, out: Path, progress: Callback | None
) -> tuple[list[Callback], Checkpoint]:
    checkpoint = Checkpoint(out / "checkpoint.pt", every=max(1, spec.checkpoint.every))
    callbacks: list[Callback] = [CsvMetrics(out / "metrics.csv"), checkpoint]
    return callbacks + ([progress] if progress is not None else []), checkpoint


def _fit_to_dir(run: Run, out: Path, checkpoint: Checkpoint) -> Run:
    try:
        fit(run)
    except KeyboardInterrupt:
        raise Interrupted(run, checkpoint.saved_epoch()) from None
    write_run_outputs(run, out)
    return run


def train_to_dir(spec: StudySpec, seed: int, out: Path, progress: Callback | None = None) -> Run:
    callbacks, checkpoint = _dir_callbacks(spec, out, progress)
    run = build_run(spec, seed, callbacks=callbacks)  # a spec that cannot build leaves no folder
    out.mkdir(parents=True, exist_ok=True)
    (out / "config.yaml").write_text(dump_spec(run.spec) + f"seed: {run.seed}\n")  # what the run is
    return _fit_to_dir(run, out, checkpoint)


def saved_run(out: Path) -> tuple[StudySpec, int]:
    """The spec and seed `train_to_dir` recorded in `out`/config.yaml."""
    import yaml

    from racecar_study.study.spec import parse_spec

    raw = yaml.safe_load((out / "config.yaml").read_text())
    seed = raw.pop("seed")
    return parse_spec(raw, str(out / "config.yaml")), seed


def resume_in_dir(out: Path, progress: Callback | None = None) -> Run:
    """Continue the run `train_to_dir` left unfinished in `out` (Ctrl-C, a kill) from its
    checkpoint.pt: the same spec and seed, metrics.csv's rows up to the checkpoint's epoch kept and
    the rest trained again, so the finished run's files are those of an uninterrupted one."""
    spec, seed = saved_run(out)
    callbacks, checkpoint = _dir_callbacks(spec, out, progress)
    run = build_run(spec, seed, callbacks=callbacks)
    run.trainer.load_checkpoint(out / "checkpoint.pt")
    kept = _read_metrics(out / "metrics.csv")
    run.trainer.history = [row for row in kept if row["epoch"] <= run.trainer.epoch]
    return _fit_to_dir(run, out, checkpoint)


def _read_metrics(path: Path) -> list[dict[str, float]]:
    """metrics.csv's whole rows; a last line cut short by a kill (fields missing) is left out."""
    import csv

    if not path.is_file():
        return []
    rows = []
    with open(path, newline="") as f:
        for raw in csv.DictReader(f):
            if None in raw.values() or None in raw:  # too few or too many fields
                continue
            try:
                row = {k: float(v) for k, v in raw.items() if v != ""}
                row["epoch"] = int(row["epoch"])
            except (ValueError, KeyError):
                continue
            rows.append(row)
    return rows
