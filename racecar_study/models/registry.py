"""Architecture registry: `@register_model(name)` over a builder, `build_model(name, ...)` to build.

A builder is `fn(input_shape: (C, H, W), num_classes: int, **options) -> RacecarNet`; its keyword
parameters (with their defaults) are the architecture's options.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from typing import Any

from racecar_study.core.net import RacecarNet

Builder = Callable[..., RacecarNet]

_MODELS: dict[str, Builder] = {}


class ModelError(ValueError):
    """An unknown architecture, an unknown option, or options that cannot build a network."""


def register_model(name: str) -> Callable[[Builder], Builder]:
    def wrap(fn: Builder) -> Builder:
        if name in _MODELS:
            raise ModelError(f"architecture '{name}' is already registered")
        _MODELS[name] = fn
        return fn

    return wrap


def list_models() -> list[str]:
    return sorted(_MODELS)


def _builder(name: str) -> Builder:
    if name not in _MODELS:
        raise ModelError(f"unknown architecture '{name}'; known: {', '.join(list_models())}")
    return _MODELS[name]


def model_options(name: str) -> dict[str, Any]:
    """The options an architecture accepts, with their defaults (tuple defaults as lists, as a
    spec would give them)."""
    params = list(inspect.signature(_builder(name)).parameters.values())[2:]
    return {
        p.name: list(p.default) if isinstance(p.default, tuple) else p.default
        for p in params
        if p.kind is not p.VAR_KEYWORD
    }


def check_options(name: str, options: Mapping[str, Any]) -> None:
    """Raise ModelError unless `name` is registered and accepts every option name in `options`.
    Values are checked when the network is built (some depend on the input shape)."""
    accepted = model_options(name)
    unknown = [k for k in options if k not in accepted]
    if unknown:
        listed = ", ".join(accepted) or "none"
        raise ModelError(
            f"unknown option{'s' if len(unknown) > 1 else ''} {', '.join(map(repr, unknown))} "
            f"for architecture '{name}'; accepted: {listed}"
        )


def _shape(input_shape: Any) -> tuple[int, int, int]:
    ok = (
        isinstance(input_shape, (tuple, list))
        and len(input_shape) == 3
        and all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in input_shape)
    )
    if not ok:
        raise ModelError(f"input_shape must be three positive integers (C, H, W), got {input_shape!r}")
    return tuple(input_shape)  # type: ignore[return-value]


def build_model(name: str, input_shape: tuple[int, int, int], num_classes: int, **options: Any) -> RacecarNet:
    """Build a registered architecture for inputs of `input_shape` and `num_classes` outputs.

    The network also carries `lambda_layers` (its state names: per-layer lambdas are addressed by
    index or by these names), `arch_name` and `arch_options` (every option, defaults included).
    """
    check_options(name, options)
    shape = _shape(input_shape)
    if not isinstance(num_classes, int) or isinstance(num_classes, bool) or num_classes < 1:
        raise ModelError(f"num_classes must be a positive integer, got {num_classes!r}")
    try:
        net = _builder(name)(shape, num_classes, **options)
    except ModelError as e:
        raise ModelError(f"{name}: {e}") from None
    net.lambda_layers = list(net.state_names)
    net.arch_name = name
    net.arch_options = {**model_options(name), **options}
    return net
