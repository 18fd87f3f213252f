"""Helpers for the study tests: tiny specs written to a temporary working folder, the CLI in-process.

A module of its own (not conftest.py): `from conftest import` would find tests/tracking/conftest.py
when both folders run in one session."""

from __future__ import annotations

import copy
import socket
import subprocess
import sys
from pathlib import Path

import yaml

from racecar_study.cli.main import main

# 100 real MNIST digits for training, 2 epochs of a 16-unit MLP: a trial costs well under a second.
TINY = {
    "name": "tiny",
    "data": {"name": "mnist5k", "n_per_class": 10},
    "model": {"arch": "mlp", "widths": [16]},
    "method": {"name": "std", "lam": 1e-6},  # the lambda RR trials use where a test searches method.name
    "train": {"epochs": 2, "batch_size": 50},
    "search": {"space": {"train.lr": {"loguniform": [1e-4, 1e-2]}}, "num_samples": 2, "max_concurrent": 2},
    "scheduler": {"kind": "none"},
    "tracking": {"enabled": False},  # tests/tracking covers it; see also _tmp_tracking_store
}


def spec_dict(**changes) -> dict:
    """TINY with dotted-path changes; a value of None removes the key."""
    raw = copy.deepcopy(TINY)
    for path, value in changes.items():
        *parents, leaf = path.split(".") if not path.startswith("search.space.") else _space_path(path)
        d = raw
        for key in parents:
            d = d.setdefault(key, {})
        if value is None:
            d.pop(leaf, None)
        else:
            d[leaf] = value
    return raw


def _space_path(path: str) -> list[str]:
    # search.space keys are themselves dotted (train.lr): keep them whole.
    return ["search", "space", path.removeprefix("search.space.")]


def write_spec(folder: Path, raw: dict, name: str = "spec.yaml") -> Path:
    path = folder / name
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


def run_cli(capsys, *argv: str) -> tuple[int, str, str]:
    try:
        rc = main(list(argv))
    except SystemExit as e:  # argparse errors
        rc = e.code
    out, err = capsys.readouterr()
    return rc, out, err


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def dead_pid() -> int:
    """The PID of a process that has ended (a child started and waited for)."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid
