"""argparse types for numeric flags: a bad value is argparse's one-line usage error (exit 2)."""

from __future__ import annotations

import argparse
from collections.abc import Callable


def _bounded(kind: Callable, ok: Callable[[float], bool], bound: str) -> Callable[[str], float]:
    def parse(text: str):
        try:
            v = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
        if not ok(v):
            raise argparse.ArgumentTypeError(f"must be {bound}, got {text}")
        return v

    return parse


def positive(kind: Callable = float) -> Callable[[str], float]:
    return _bounded(kind, lambda v: v > 0, "> 0")


def non_negative(kind: Callable = float) -> Callable[[str], float]:
    return _bounded(kind, lambda v: v >= 0, ">= 0")
