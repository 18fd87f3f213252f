"""Option checks and small pieces the architectures share."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import nn

from racecar_study.models.registry import ModelError

ACTIVATIONS: dict[str, Callable[[], nn.Module]] = {
    "relu": nn.ReLU,
    "leaky_relu": nn.LeakyReLU,
    "gelu": nn.GELU,
    "tanh": nn.Tanh,
    "silu": nn.SiLU,
    "identity": nn.Identity,  # makes a net linear, so its reverse pass can be checked against autograd
}


def choice(option: str, value: Any, choices: Sequence[str]) -> str:
    if value not in choices:
        raise ModelError(f"{option} must be one of {', '.join(choices)}; got {value!r}")
    return value


def make_activation(name: Any) -> nn.Module:
    return ACTIVATIONS[choice("activation", name, list(ACTIVATIONS))]()


def boolean(option: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise ModelError(f"{option} must be true or false, got {value!r}")
    return value


def positive_int(option: str, value: Any) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ModelError(f"{option} must be a positive integer, got {value!r}")
    return value


def positive_ints(option: str, values: Any) -> list[int]:
    """A non-empty list of positive integers (layer widths, channel counts)."""
    if not isinstance(values, (list, tuple)) or not values:
        raise ModelError(f"{option} must be a non-empty list of positive integers, got {values!r}")
    return [positive_int(f"{option}[{i}]", v) for i, v in enumerate(values)]


def probability(option: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < 1:
        raise ModelError(f"{option} must be a number in [0, 1), got {value!r}")
    return float(value)


def shape_text(shape: Sequence[int]) -> str:
    return "x".join(map(str, shape))


@torch.no_grad()
def flat_size(features: nn.Module, input_shape: Sequence[int]) -> int:
    """Features per sample after `features`, found by one dummy forward (so no size arithmetic
    has to track kernels, padding and pooling). Raises ModelError when the input is too small."""
    was_training = features.training
    features.eval()  # a train-mode BN would fold the dummy batch into its running statistics
    try:
        out = features(torch.zeros(1, *input_shape))
    except RuntimeError as e:
        reason = str(e).strip().splitlines()[0]
        raise ModelError(f"input {shape_text(input_shape)} is too small ({reason})") from None
    finally:
        features.train(was_training)
    if out.numel() == 0:
        raise ModelError(f"input {shape_text(input_shape)} is too small (no features left)")
    return out[0].numel()
