"""Per-layer lambdas: one value per reconstructed state (`net.lambda_layers`)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from numbers import Real
from typing import Any

from racecar_study.core.net import RacecarNet
from racecar_study.models.registry import ModelError


def _value(where: str, v: Any) -> float:
    if isinstance(v, bool) or not isinstance(v, Real) or not math.isfinite(v) or v < 0:
        raise ModelError(f"{where} must be a finite number >= 0, got {v!r}")
    return float(v)


def _index(key: Any, names: list[str]) -> int:
    """A state addressed by its name, its index (negative counts from the end) or an index string."""
    n = len(names)
    if isinstance(key, str) and key in names:
        return names.index(key)
    if isinstance(key, str) and key.lstrip("-").isdigit():
        key = int(key)  # dict keys from YAML/JSON specs arrive as strings
    if isinstance(key, int) and not isinstance(key, bool) and -n <= key < n:
        return key % n
    raise ModelError(f"lambda key {key!r} names no state; states (0..{n - 1}): {', '.join(names)}")


def resolve_lambdas(net: RacecarNet, lam: Any, ratio: float | None = None) -> list[float]:
    """One lambda per state of `net` from a number (all states), a list (one per state) or a dict
    {state name or index: value, "default": value}. A dict without "default" must cover every state.
    `ratio` makes a number a schedule over depth: state m (0 = the input) gets lam * ratio**m."""
    names = list(net.state_names)
    n = len(names)
    if ratio is not None:
        if not isinstance(lam, Real) or isinstance(lam, bool):
            raise ModelError(f"a lambda ratio scales one number over depth, not a {type(lam).__name__}")
        lam, ratio = _value("lambda", lam), _value("lambda ratio", ratio)
        return [lam * ratio**m for m in range(n)]
    if isinstance(lam, Real) and not isinstance(lam, bool):
        return [_value("lambda", lam)] * n
    if isinstance(lam, Mapping):
        default = lam.get("default")
        out: list[float | None] = [None if default is None else _value("lambda default", default)] * n
        given: set[int] = set()
        for key, v in lam.items():
            if key == "default":
                continue
            i = _index(key, names)
            if i in given:
                raise ModelError(f"lambda for state {i} ({names[i]}) is given twice")
            given.add(i)
            out[i] = _value(f"lambda[{key!r}]", v)
        missing = [names[i] for i, v in enumerate(out) if v is None]
        if missing:
            raise ModelError(f"lambda dict leaves {', '.join(missing)} unset; name them or give a 'default'")
        return out  # type: ignore[return-value]
    if isinstance(lam, Sequence) and not isinstance(lam, str):
        if len(lam) != n:
            raise ModelError(f"lambda list has {len(lam)} values but the network has {n} states")
        return [_value(f"lambda[{i}]", v) for i, v in enumerate(lam)]
    raise ModelError(f"lambda must be a number, a list of {n} numbers or a dict, got {type(lam).__name__}")
