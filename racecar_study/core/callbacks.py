"""Callbacks for the side concerns of a training run: metric files, checkpoints, progress."""

from __future__ import annotations

import csv
import os
from pathlib import Path

from racecar_study.core.trainer import Callback, Trainer


class CsvMetrics(Callback):
    """Appends one row per epoch to a CSV file; the header grows to the union of keys at the end."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)

    def on_fit_end(self, trainer: Trainer) -> None:
        keys: list[str] = []
        for row in trainer.history:
            keys += [k for k in row if k not in keys]
        keys.sort(key=lambda k: (k != "epoch", k))
        tmp = self.path.with_suffix(".csv.tmp")
        with open(tmp, "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=keys)
            w.writeheader()
            w.writerows(trainer.history)
        os.replace(tmp, self.path)


class Checkpoint(Callback):
    """Saves the trainer state every `every` epochs (and at the end), written atomically."""

    def __init__(self, path: str | os.PathLike, every: int = 1):
        self.path, self.every = Path(path), max(1, every)

    def _save(self, trainer: Trainer) -> None:
        tmp = self.path.with_suffix(".tmp")
        trainer.save_checkpoint(tmp)
        os.replace(tmp, self.path)

    def on_epoch_end(self, trainer: Trainer, metrics: dict[str, float]) -> None:
        if trainer.epoch % self.every == 0:
            self._save(trainer)

    def on_fit_end(self, trainer: Trainer) -> None:
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
