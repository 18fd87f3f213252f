"""Start and stop a local `mlflow server` process (for `racecar-study ui`, tests and benchmarks)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from racecar_study.tracking.uris import ARTIFACTS, default_store_dir, default_tracking_uri, sqlite_path

HOST = "127.0.0.1"


def free_port(host: str = HOST) -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def port_in_use(port: int, host: str = HOST) -> bool:
    with socket.socket() as s:
        return s.connect_ex((host, port)) == 0


def artifacts_for(backend_uri: str) -> Path:
    """Artifacts beside a SQLite database; the default store's folder for any other backend."""
    db = sqlite_path(backend_uri)
    return (db.parent if db is not None else default_store_dir()) / ARTIFACTS


def server_command(
    port: int,
    backend_uri: str | None = None,
    artifacts: Path | None = None,
    host: str = HOST,
    workers: int = 1,
) -> list[str]:
    backend_uri = backend_uri or default_tracking_uri()
    artifacts = artifacts or artifacts_for(backend_uri)
    artifacts.mkdir(parents=True, exist_ok=True)
    return [
        sys.executable,
        "-m",
        "mlflow",
        "server",
        "--host",
        host,
        "--port",
        str(port),
        "--backend-store-uri",
        backend_uri,
        "--artifacts-destination",
        str(artifacts),
        "--workers",
        str(workers),
    ]


def start_server(
    port: int,
    backend_uri: str | None = None,
    artifacts: Path | None = None,
    log_path: Path | None = None,
    host: str = HOST,
) -> subprocess.Popen:
    """The server in its own process group (so that stopping it stops its workers too)."""
    env = dict(os.environ)
    # Background job runners serve MLflow's GenAI features only; they add seven processes.
    env.setdefault("MLFLOW_SERVER_ENABLE_JOB_EXECUTION", "false")
    out = open(log_path, "ab") if log_path else subprocess.DEVNULL  # noqa: SIM115
    try:
        return subprocess.Popen(
            server_command(port, backend_uri, artifacts, host),
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    finally:
        if log_path:
            out.close()


def wait_healthy(url: str, proc: subprocess.Popen | None = None, timeout: float = 120.0) -> bool:
    """Poll GET /health until it answers OK; False if the process exits or time runs out."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            return False
        try:
            with urllib.request.urlopen(url.rstrip("/") + "/health", timeout=1.0) as r:
                if r.status == 200:
                    return True
        except OSError:
            pass
        time.sleep(0.25)
    return False


def stop_server(proc: subprocess.Popen, timeout: float = 10.0, kill: bool = False) -> None:
    """SIGTERM (or SIGKILL with `kill`) to the server's process group, by its PID; then reap it."""
    try:  # the group too: uvicorn workers outlive a parent that died first
        os.killpg(proc.pid, signal.SIGKILL if kill else signal.SIGTERM)
    except ProcessLookupError:
        pass
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait(timeout=timeout)
