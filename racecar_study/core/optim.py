"""Optimizers and learning-rate schedules, built by name."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

import torch

if TYPE_CHECKING:
    from racecar_study.core.trainer import TrainConfig

OPTIMIZERS: dict[str, Callable[[Iterable, TrainConfig], torch.optim.Optimizer]] = {
    "adam": lambda p, c: torch.optim.Adam(p, lr=c.lr, weight_decay=c.weight_decay),
    "adamw": lambda p, c: torch.optim.AdamW(p, lr=c.lr, weight_decay=c.weight_decay),
    "sgd": lambda p, c: torch.optim.SGD(p, lr=c.lr, momentum=c.momentum, weight_decay=c.weight_decay),
}

SCHEDULES: dict[str, Callable[[torch.optim.Optimizer, TrainConfig], object | None]] = {
    "none": lambda o, c: None,
    "cosine": lambda o, c: torch.optim.lr_scheduler.CosineAnnealingLR(o, T_max=max(c.epochs, 1)),
    "step": lambda o, c: torch.optim.lr_scheduler.StepLR(o, step_size=c.step_size, gamma=c.gamma),
}


def build_optimizer(params: Iterable, cfg: TrainConfig) -> torch.optim.Optimizer:
    if cfg.optimizer not in OPTIMIZERS:
        raise ValueError(f"unknown optimizer '{cfg.optimizer}'; known: {', '.join(OPTIMIZERS)}")
    return OPTIMIZERS[cfg.optimizer](params, cfg)


def build_scheduler(optimizer: torch.optim.Optimizer, cfg: TrainConfig):
    if cfg.schedule not in SCHEDULES:
        raise ValueError(f"unknown schedule '{cfg.schedule}'; known: {', '.join(SCHEDULES)}")
    return SCHEDULES[cfg.schedule](optimizer, cfg)
