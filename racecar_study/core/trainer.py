"""The training loop. Side concerns (metrics files, checkpoints, tracking, Ray reports) are callbacks."""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F

from racecar_study.core.allocator import retain_freed_memory
from racecar_study.core.methods import Method
from racecar_study.core.net import RacecarNet
from racecar_study.core.optim import build_optimizer, build_scheduler

PRECISIONS = ("fp32", "bf16")
# What each epoch's metrics row holds (`fit`): these, and one `<name>_<state index>` per
# reconstructed state for each of PER_STATE_METRICS (reg_term_* from methods with a per-layer
# regulariser, i.e. rr).
EPOCH_METRICS = (
    "train_loss",
    "task_loss",
    "reg_loss",
    "train_acc",
    "val_loss",
    "val_acc",
    "lr",
    "epoch_time",
)
PER_STATE_METRICS = ("recon_err", "reg_term")


def better(name: str) -> str | None:
    """'max' or 'min': which way an epoch metric improves (None: neither, e.g. lr)."""
    if name.endswith("_acc"):
        return "max"
    if name.endswith(("_loss", "_time")) or name.rpartition("_")[0] in PER_STATE_METRICS:
        return "min"
    return None


def is_epoch_metric(name: str) -> bool:
    """Whether `name` can be a key of an epoch's metrics (per-state indices are not checked)."""
    stem, _, index = name.rpartition("_")
    return name in EPOCH_METRICS or (stem in PER_STATE_METRICS and index.isdigit())


@dataclass
class TrainConfig:
    epochs: int = 10
    batch_size: int = 100
    optimizer: str = "adam"  # adam | adamw | sgd
    lr: float = 1e-3
    weight_decay: float = 0.0
    momentum: float = 0.9  # sgd only
    schedule: str = "none"  # none | cosine | step
    step_size: int = 30  # step schedule: epochs between decays
    gamma: float = 0.1  # step schedule: decay factor
    seed: int = 0
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    precision: str = "fp32"  # fp32 | bf16 (autocast; the racecar loss stays float32)
    probe_size: int = 256  # validation samples used for per-layer reconstruction errors
    # Keep freed CPU memory for the next step instead of returning it to the OS (glibc; for the
    # whole process, once set): RR steps otherwise page-fault their activations back in (allocator.py).
    retain_cpu_memory: bool = True
    # Run the reverse pass's BN/ReLU chains and their terms as compiled kernels (fused.py): faster
    # steps after a first one that compiles them (ResNet-20: about 5 s, 38 s with a cold cache).
    # None leaves the net's own setting (RacecarNet.fuse).
    fuse_reverse: bool | None = None


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(name)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {name!r} asked for but CUDA is not available here")
    return dev


class Callback:
    """Hooks into the loop. `on_epoch_end` may set `trainer.should_stop = True`."""

    def on_fit_start(self, trainer: Trainer) -> None: ...

    def on_epoch_end(self, trainer: Trainer, metrics: dict[str, float]) -> None: ...

    def on_pretrain_epoch_end(self, trainer: Trainer, row: dict[str, float]) -> None:
        """One epoch of a method's pretraining phase (`pre`: layer, epoch, recon_loss)."""

    def on_fit_end(self, trainer: Trainer) -> None:
        """Also after Ctrl-C or an error (`trainer.interrupted`): the history holds finished epochs only."""


@dataclass
class Trainer:
    net: RacecarNet
    method: Method
    cfg: TrainConfig
    callbacks: Sequence[Callback] = ()
    history: list[dict[str, float]] = field(default_factory=list)
    pretrain_history: list[dict[str, float]] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.cfg.precision not in PRECISIONS:
            raise ValueError(f"train.precision must be one of {PRECISIONS}, got {self.cfg.precision!r}")
        self.device = resolve_device(self.cfg.device)
        if self.cfg.retain_cpu_memory:
            retain_freed_memory()
        if self.cfg.fuse_reverse is not None:
            self.net.fuse = self.cfg.fuse_reverse
        self.net.to(self.device)
        self.method.validate(self.net)
        self.optimizer = build_optimizer(self.net.parameters(), self.cfg)
        self.scheduler = build_scheduler(self.optimizer, self.cfg)
        self.generator = torch.Generator().manual_seed(self.cfg.seed)
        self.epoch = 0
        self.should_stop = False
        self.diverged = False  # the training loss stopped being finite; the run stopped there
        self.interrupted = False  # the last fit ended by an exception (Ctrl-C included), maybe mid-epoch
        self.train_data: tuple[torch.Tensor, torch.Tensor] | None = None
        self._prepared = False

    def record_pretrain(self, row: dict[str, float]) -> None:
        """A method's pretraining reports each of its epochs here (before epoch 1 of training)."""
        self.pretrain_history.append(row)
        for cb in self.callbacks:
            cb.on_pretrain_epoch_end(self, row)

    # -- data --------------------------------------------------------------------------------------

    def batches(
        self, data: tuple[torch.Tensor, torch.Tensor], shuffle: bool
    ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        x, y = data
        n, b = len(x), self.cfg.batch_size
        order = torch.randperm(n, generator=self.generator) if shuffle else torch.arange(n)
        if shuffle and b > 1 and n > b and n % b == 1:
            # A last training batch of one sample: batch norm has no batch statistics to train on
            # (torch raises), and the step would be one sample's noise. Reshuffled each epoch, that
            # sample is in another batch next time.
            n -= 1
        for i in range(0, n, b):
            idx = order[i : i + b]
            yield x[idx].to(self.device, non_blocking=True), y[idx].to(self.device, non_blocking=True)

    def _autocast(self) -> contextlib.AbstractContextManager:
        if self.cfg.precision == "bf16":
            return torch.autocast(device_type=self.device.type, dtype=torch.bfloat16)
        return contextlib.nullcontext()

    # -- loop --------------------------------------------------------------------------------------

    def fit(
        self,
        train: tuple[torch.Tensor, torch.Tensor],
        val: tuple[torch.Tensor, torch.Tensor] | None = None,
    ) -> list[dict[str, float]]:
        self.train_data = train
        self.interrupted = False
        for cb in self.callbacks:
            cb.on_fit_start(self)
        try:
            if not self._prepared:  # a resumed trainer does not pretrain again
                self.method.prepare(self.net, self)
                self._prepared = True
            while self.epoch < self.cfg.epochs and not self.should_stop:
                metrics = self.train_epoch(train)
                if val is not None and len(val[0]) > 0:
                    metrics.update(self.evaluate(val, prefix="val_"))
                    metrics.update(self.reconstruction_errors(val[0][: self.cfg.probe_size]))
                self.epoch += 1
                metrics["epoch"] = self.epoch
                self.history.append(metrics)
                for cb in self.callbacks:
                    cb.on_epoch_end(self, metrics)
        except BaseException:
            # Ctrl-C or an error: callbacks still end the fit (metric files keep the finished
            # epochs), but the weights may be part-way through an epoch: `interrupted` tells them
            # not to save those as a checkpoint.
            self.interrupted = True
            raise
        finally:
            for cb in self.callbacks:
                cb.on_fit_end(self)
        return self.history

    def train_epoch(self, train: tuple[torch.Tensor, torch.Tensor]) -> dict[str, float]:
        self.net.train()
        start = time.perf_counter()
        sums = torch.zeros(4, dtype=torch.float64, device=self.device)  # loss, task, reg, correct
        per_layer = None
        seen = 0
        for x, y in self.batches(train, shuffle=True):
            with self._autocast():
                out = self.method.step(self.net, x, y)
            self.optimizer.zero_grad(set_to_none=True)
            out.loss.backward()
            self.optimizer.step()
            b = len(x)
            seen += b
            with torch.no_grad():  # accumulate on device; one sync per epoch, not per step
                correct = (out.logits.argmax(1) == y).sum()
                sums += torch.stack(
                    [out.loss.detach() * b, out.task_loss.detach() * b, out.reg_loss.detach() * b, correct]
                ).double()
                if out.per_layer is not None:
                    pl = out.per_layer.detach().double() * b
                    per_layer = pl if per_layer is None else per_layer + pl
        lr = self.optimizer.param_groups[0]["lr"]
        if self.scheduler is not None:
            self.scheduler.step()
        s = (sums / max(seen, 1)).tolist()
        metrics = {"train_loss": s[0], "task_loss": s[1], "reg_loss": s[2], "train_acc": s[3], "lr": lr}
        if per_layer is not None:
            for i, v in enumerate((per_layer / max(seen, 1)).tolist()):
                metrics[f"reg_term_{i}"] = v
        metrics["epoch_time"] = time.perf_counter() - start
        if not math.isfinite(metrics["train_loss"]):
            self.should_stop = self.diverged = True  # its metrics still say why
        return metrics

    @torch.no_grad()
    def evaluate(self, data: tuple[torch.Tensor, torch.Tensor], prefix: str = "") -> dict[str, float]:
        self.net.eval()
        loss, correct, n = 0.0, 0, 0
        for x, y in self.batches(data, shuffle=False):
            with self._autocast():
                logits = self.net(x)
            loss += F.cross_entropy(logits.float(), y, reduction="sum").item()
            correct += (logits.argmax(1) == y).sum().item()
            n += len(x)
        return {f"{prefix}loss": loss / max(n, 1), f"{prefix}acc": correct / max(n, 1)}

    @torch.no_grad()
    def reconstruction_errors(self, x: torch.Tensor) -> dict[str, float]:
        """Per-state reconstruction error (per-element mean) of the reverse pass on a probe batch,
        reported for every method so that they can be compared."""
        if len(x) < 2:
            return {}
        was_training = self.net.training
        self.net.eval()
        terms = self.net.racecar(x.to(self.device), reduction="mean").terms
        self.net.train(was_training)
        return {f"recon_err_{i}": v for i, v in enumerate(terms.tolist())}

    # -- checkpoints -------------------------------------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        return {
            "model": self.net.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": None if self.scheduler is None else self.scheduler.state_dict(),
            "epoch": self.epoch,
            "generator": self.generator.get_state(),
            "prepared": self._prepared,
            "pretrain_history": self.pretrain_history,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.net.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        if self.scheduler is not None and state.get("scheduler") is not None:
            self.scheduler.load_state_dict(state["scheduler"])
        self.epoch = int(state["epoch"])
        self.generator.set_state(state["generator"])
        self._prepared = bool(state.get("prepared", True))
        self.pretrain_history = list(state.get("pretrain_history", []))

    def save_checkpoint(self, path) -> None:
        torch.save(self.state_dict(), path)

    def load_checkpoint(self, path) -> None:
        self.load_state_dict(torch.load(path, map_location=self.device, weights_only=True))
