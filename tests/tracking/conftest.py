"""A real `mlflow server` on 127.0.0.1 (free port, tmp SQLite store) for the whole session, and a
tiny study setup: peak data and peak_mlp when those wings import, else a small net on random data."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest
import torch
from torch import nn

from racecar_study.tracking.server import free_port, start_server, stop_server, wait_healthy

START_TIMEOUT_S = 150


class MlflowServer:
    def __init__(self, root: Path):
        self.root = root
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.backend = f"sqlite:///{root / 'mlflow.db'}"
        self.proc = None

    def start(self) -> None:
        self.proc = start_server(
            self.port, self.backend, self.root / "artifacts", log_path=self.root / "server.log"
        )
        if not wait_healthy(self.url, self.proc, timeout=START_TIMEOUT_S):
            log = (self.root / "server.log").read_text()[-3000:]
            self.stop()
            pytest.fail(f"mlflow server did not come up on {self.url}:\n{log}")

    def stop(self, kill: bool = False) -> None:
        if self.proc is not None:
            stop_server(self.proc, kill=kill)
            self.proc = None


@pytest.fixture(scope="session")
def mlflow_server(tmp_path_factory):
    server = MlflowServer(tmp_path_factory.mktemp("mlflow"))
    server.start()
    try:
        yield server
    finally:
        server.stop()


@dataclass
class TinyTask:
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_val: torch.Tensor
    y_val: torch.Tensor
    input_shape: tuple[int, int, int]

    def net(self, seed: int):
        torch.manual_seed(seed)
        try:
            from racecar_study.models import build_model

            return build_model("peak_mlp", self.input_shape, 2, hidden=16)
        except Exception:
            from racecar_study.core.net import RacecarNet

            body = nn.Sequential(
                nn.Flatten(), nn.Linear(784, 16), nn.BatchNorm1d(16), nn.ReLU(), nn.Linear(16, 2)
            )
            return RacecarNet(body)


@pytest.fixture(scope="session")
def tiny_task() -> TinyTask:
    try:
        from racecar_study.data import load_dataset

        s = load_dataset("peak", n_per_class=10)
        return TinyTask(s.x_train, s.y_train, s.x_test, s.y_test, tuple(s.input_shape))
    except Exception:
        g = torch.Generator().manual_seed(0)
        x = torch.rand(30, 1, 28, 28, generator=g)
        y = torch.arange(30) % 2
        return TinyTask(x[:20], y[:20], x[20:], y[20:], (1, 28, 28))


def _trainer(net, epochs: int, callbacks):
    from racecar_study.core import MethodConfig, TrainConfig, Trainer, build_method

    cfg = TrainConfig(epochs=epochs, batch_size=10, lr=1e-3, device="cpu", seed=0)
    return Trainer(net, build_method(MethodConfig(name="rr", lam=1e-6)), cfg, list(callbacks))


def _spec(name: str, uri: str, data: dict | None = None, **tracking):
    from racecar_study.study.spec import StudySpec

    return StudySpec.model_validate(
        {
            "name": name,
            "data": {"name": "peak", "n_per_class": 10, **(data or {})},
            "model": {"arch": "peak_mlp", "hidden": 16},
            "method": {"name": "rr", "lam": 1e-6},
            "train": {"epochs": 4, "batch_size": 10},
            "tracking": {"tracking_uri": uri, **tracking},
        }
    )


@pytest.fixture(scope="session")
def make_trainer():
    """make_trainer(net, epochs, callbacks) -> a CPU rr Trainer, batch 10."""
    return _trainer


@pytest.fixture(scope="session")
def make_spec():
    """make_spec(name, uri, data=None, **tracking) -> a StudySpec (no registry checks)."""
    return _spec
