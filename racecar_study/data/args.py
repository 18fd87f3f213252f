"""Checks for option values, each raising a one-line DataError that names the option."""

from __future__ import annotations

from .base import DataError


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def number_arg(name: str, value) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise DataError(f"{name} needs a number, got {value!r}")
    return float(value)


def count_arg(name: str, value, minimum: int = 1) -> int:
    if not _is_int(value) or value < minimum:
        raise DataError(f"{name} must be an int >= {minimum}, got {value!r}")
    return value


def fraction_arg(name: str, value, *, allow_zero: bool = True) -> float:
    low_ok = (lambda v: v >= 0) if allow_zero else (lambda v: v > 0)
    if isinstance(value, bool) or not isinstance(value, int | float) or not (low_ok(value) and value < 1):
        raise DataError(f"{name} must be a number in {'[' if allow_zero else '('}0, 1), got {value!r}")
    return float(value)


def bool_arg(name: str, value) -> bool:
    if not isinstance(value, bool):
        raise DataError(f"{name} must be true or false, got {value!r}")
    return value


def size_arg(name: str, value) -> tuple[int, int]:
    """An int or [H, W] of positive ints."""
    if _is_int(value):
        value = [value, value]
    if not isinstance(value, list | tuple) or len(value) != 2 or not all(_is_int(v) and v > 0 for v in value):
        raise DataError(f"{name} must be a positive int or [H, W], got {value!r}")
    return int(value[0]), int(value[1])
