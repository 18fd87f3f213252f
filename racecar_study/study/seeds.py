"""The seeds of one trial, trained side by side one epoch at a time.

A trial reports the *mean* over `spec.seeds` of every metric after each epoch, so ASHA compares
trials on seed-averaged curves; `<metric>_std` is the spread across seeds. The seeds take turns in
one process (not in parallel): a trial uses the CPUs it asked for, whatever its number of seeds.
A seed whose loss diverges ends the trial; its last report then carries `diverged: 1`, and
results.parquet calls the trial diverged. No Ray here.
"""

from __future__ import annotations

import json
import statistics
from pathlib import Path

from racecar_study.study.experiment import Run, fit


class SeedGroup:
    def __init__(self, runs: list[Run], metric: str):
        self.runs, self.metric = runs, metric
        self.epochs = runs[0].trainer.cfg.epochs  # the trainers' cfg.epochs moves one epoch at a time

    @property
    def epoch(self) -> int:
        return min(r.trainer.epoch for r in self.runs)

    @property
    def done(self) -> bool:
        return self.epoch >= self.epochs or any(r.trainer.should_stop for r in self.runs)

    def step(self) -> dict[str, float]:
        """Train every seed one more epoch; the mean of each metric they all report."""
        target = self.epoch + 1
        for run in self.runs:
            # Trainer.fit trains while epoch < cfg.epochs and does not pretrain twice, so raising
            # the bound by one gives exactly one more epoch through the core loop.
            run.trainer.cfg.epochs = target
            fit(run)
        rows = [r.trainer.history[-1] for r in self.runs]
        keys = [k for k in rows[0] if all(k in r for r in rows)]
        out = {k: statistics.fmean(float(r[k]) for r in rows) for k in keys}
        if self.metric in out:
            out[f"{self.metric}_std"] = statistics.pstdev(float(r[self.metric]) for r in rows)
        out["epoch"] = target
        if any(r.trainer.diverged for r in self.runs):
            out["diverged"] = 1
        return out

    def save(self, folder: Path) -> None:
        for run in self.runs:
            run.trainer.save_checkpoint(folder / f"seed_{run.seed}.pt")
        (folder / "seeds.json").write_text(
            json.dumps({"seeds": [r.seed for r in self.runs], "epoch": self.epoch})
        )

    def load(self, folder: Path) -> None:
        saved = json.loads((folder / "seeds.json").read_text())["seeds"]
        if saved != [r.seed for r in self.runs]:
            raise ValueError(f"checkpoint holds seeds {saved}, the trial has {[r.seed for r in self.runs]}")
        for run in self.runs:
            run.trainer.load_checkpoint(folder / f"seed_{run.seed}.pt")
