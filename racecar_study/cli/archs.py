"""`racecar-study archs`: every registered architecture, its size and its reconstructed states."""

from __future__ import annotations

import argparse
import sys


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "archs", help="list architectures with parameter and state counts for an input shape"
    )
    p.add_argument("--input", default="1,28,28", metavar="C,H,W", help="input shape (default 1,28,28)")
    p.add_argument("--classes", default="10", metavar="K", help="number of classes (default 10)")
    p.set_defaults(func=run)


def _positive_ints(text: str, count: int, flag: str) -> list[int]:
    try:
        values = [int(v) for v in text.split(",")]
    except ValueError:
        values = []
    if len(values) != count or any(v < 1 for v in values):
        what = "C,H,W" if count == 3 else "a positive integer"
        raise ValueError(f"{flag} takes {what} (positive integers), got {text!r}")
    return values


def describe(name: str, shape: tuple[int, int, int], classes: int) -> tuple[str, str, str]:
    """(name, parameter count, state count) or (name, reason it cannot build, '-')."""
    from racecar_study.models import ModelError, build_model

    try:
        net = build_model(name, shape, classes)
    except ModelError as e:
        return name, f"cannot build: {str(e).removeprefix(name + ': ')}", "-"
    return name, f"{sum(p.numel() for p in net.parameters()):,}", str(net.num_states)


def run(args: argparse.Namespace) -> int:
    try:
        shape = tuple(_positive_ints(args.input, 3, "--input"))
        (classes,) = _positive_ints(args.classes, 1, "--classes")
    except ValueError as e:
        print(f"racecar-study: error: {e}", file=sys.stderr)
        return 2
    from racecar_study.models import list_models

    rows = [("architecture", "parameters", "states")]
    rows += [describe(n, shape, classes) for n in list_models()]  # type: ignore[arg-type]
    print(f"input {'x'.join(map(str, shape))}, {classes} classes")
    w0 = max(len(r[0]) for r in rows)
    w1 = max(len(r[1]) for r in rows if not r[1].startswith("cannot"))
    for name, params, states in rows:
        if params.startswith("cannot"):
            print(f"{name:<{w0}}  {params}")
        else:
            print(f"{name:<{w0}}  {params:>{w1}}  {states:>6}")
    return 0
