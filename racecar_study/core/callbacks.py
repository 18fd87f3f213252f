"""Callbacks for the side concerns of a training run: metric files, checkpoints, progress."""

from __future__ import annotations

import csv
import os
from pathlib import Path

import torch

from racecar_study.core.trainer import Callback, Trainer


class CsvMetrics(Callback):
    """One row per epoch in a CSV file, the header the union of keys. Each epoch's row is appended
    as it ends, so a process killed outright (SIGKILL, the OOM killer) leaves every finished epoch;
    the end of fit writes the whole file again, atomically. A method with a pretraining phase
    (`pre`) also gets `pretrain.csv` beside it at the end of fit: layer, epoch, recon_loss."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self.pretrain_path = self.path.with_name("pretrain.csv")
        self.keys: list[str] | None = None  # the header on disk

    def on_fit_start(self, trainer: Trainer) -> None:
        self.keys = _write_csv(self.path, trainer.history, first="epoch")  # a resumed run's rows

    def on_epoch_end(self, trainer: Trainer, metrics: dict[str, float]) -> None:
        if self.keys is None or not set(metrics) <= set(self.keys):  # first row, or a new column
            self.keys = _write_csv(self.path, trainer.history, first="epoch")
            return
        with open(self.path, "a", newline="") as f:
            csv.DictWriter(f, fieldnames=self.keys).writerow(metrics)

    def on_fit_end(self, trainer: Trainer) -> None:
        _write_csv(self.path, trainer.history, first="epoch")
        if trainer.pretrain_history:
            _write_csv(self.pretrain_path, trainer.pretrain_history, first="layer")


def _write_csv(path: Path, rows: list[dict[str, float]], first: str) -> list[str] | None:
    """The rows with a header of their keys (`first` leading), atomically; the header, or None
    when there are no rows (no file rather than an empty one)."""
    if not rows:
        return None
    keys: list[str] = []
    for row in rows:
        keys += [k for k in row if k not in keys]
    keys.sort(key=lambda k: (k != first, k))
    tmp = path.with_suffix(".csv.tmp")
    with open(tmp, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=keys)
        w.writeheader()
        w.writerows(rows)
    os.replace(tmp, path)
    return keys


class Checkpoint(Callback):
    """Saves the trainer state every `every` epochs (and at the end), written atomically."""

    def __init__(self, path: str | os.PathLike, every: int = 1):
        self.path, self.every = Path(path), max(1, every)

    def saved_epoch(self) -> int | None:
        """The epoch the file holds, read from it: a Ctrl-C can land between the file's replacement
        and any note of it made here."""
        if not self.path.is_file():
            return None
        return int(torch.load(self.path, map_location="cpu", weights_only=True)["epoch"])

    def _save(self, trainer: Trainer) -> None:
        tmp = self.path.with_suffix(".tmp")
        try:
            trainer.save_checkpoint(tmp)
            os.replace(tmp, self.path)
        except BaseException:  # Ctrl-C while saving: the last whole checkpoint stays, no half file
            tmp.unlink(missing_ok=True)
            raise

    def on_epoch_end(self, trainer: Trainer, metrics: dict[str, float]) -> None:
        if trainer.epoch % self.every == 0:
            self._save(trainer)

    def on_fit_end(self, trainer: Trainer) -> None:
        if not trainer.interrupted:  # keep the last epoch's state, not one part-way through the next
            self._save(trainer)


class Progress(Callback):
    """A one-line-per-interval progress print for in-process runs."""

    def __init__(self, every: int = 10, printer=print):
        self.every, self.printer = max(1, every), printer

    def on_epoch_end(self, trainer: Trainer, metrics: dict[str, float]) -> None:
        if trainer.epoch % self.every == 0 or trainer.epoch == trainer.cfg.epochs:
            shown = {
                k: metrics[k] for k in ("train_loss", "reg_loss", "train_acc", "val_acc") if k in metrics
            }
            text = " ".join(f"{k}={v:.4g}" for k, v in shown.items())
            self.printer(f"epoch {trainer.epoch}/{trainer.cfg.epochs} {text}")

    def on_pretrain_epoch_end(self, trainer: Trainer, row: dict[str, float]) -> None:
        epochs = trainer.method.cfg.pre_epochs
        if row["epoch"] % self.every == 0 or row["epoch"] == epochs:
            loss = f"recon_loss={row['recon_loss']:.4g}"
            self.printer(f"pretrain layer {row['layer']} epoch {row['epoch']}/{epochs} {loss}")
