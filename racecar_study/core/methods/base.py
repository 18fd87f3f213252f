"""The method interface: how one training step's loss is formed. Registered by name."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, ClassVar

import torch
import torch.nn.functional as F

from racecar_study.core.net import RacecarNet

if TYPE_CHECKING:
    from racecar_study.core.trainer import Trainer


@dataclass
class MethodConfig:
    """Settings of every method; each method reads the fields it needs."""

    name: str = "std"
    lam: float | list[float] = 0.0  # rr: one lambda, or one per state (net.state_names)
    reduction: str = "sum"  # rr: "sum" (reference code) or "mean"
    ort_weight: float = 0.1  # ort: SRIP weight
    ort_power_iters: int = 2
    pre_epochs: int = 10  # pre: epochs of autoencoder pretraining per layer
    pre_lr: float | None = None  # pre: lr of the pretraining (training optimizer); default the training lr
    extra: dict = field(default_factory=dict)


@dataclass
class StepOutput:
    loss: torch.Tensor
    task_loss: torch.Tensor
    reg_loss: torch.Tensor
    logits: torch.Tensor
    per_layer: torch.Tensor | None = None  # unweighted per-state reconstruction terms (rr)


class Method(ABC):
    name: ClassVar[str]
    # The per-state metrics (trainer.PER_STATE_METRICS) its trials report: every method's reverse
    # pass is probed for recon_err; reg_term comes from a per-layer regulariser (StepOutput.per_layer).
    state_metrics: ClassVar[tuple[str, ...]] = ("recon_err",)
    # True where MethodConfig.lam weighs the regulariser: at its default, 0, the method trains as std.
    weighed_by_lam: ClassVar[bool] = False

    def __init__(self, cfg: MethodConfig):
        self.cfg = cfg

    def validate(self, net: RacecarNet) -> None:
        """Raise ValueError when the config cannot apply to `net`."""

    def prepare(self, net: RacecarNet, trainer: Trainer) -> None:
        """Runs once before supervised training (layer-wise pretraining lives here)."""

    @abstractmethod
    def step(self, net: RacecarNet, x: torch.Tensor, y: torch.Tensor) -> StepOutput: ...

    @staticmethod
    def task_loss(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(logits.float(), y)


_METHODS: dict[str, type[Method]] = {}


def register_method(name: str) -> Callable[[type[Method]], type[Method]]:
    def wrap(cls: type[Method]) -> type[Method]:
        cls.name = name
        _METHODS[name] = cls
        return cls

    return wrap


def method_names() -> list[str]:
    return sorted(_METHODS)


def method_class(name: str) -> type[Method]:
    if name not in _METHODS:
        raise ValueError(f"unknown method '{name}'; known: {', '.join(method_names())}")
    return _METHODS[name]


def build_method(cfg: MethodConfig) -> Method:
    return method_class(cfg.name)(cfg)
