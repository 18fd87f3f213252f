"""`racecar-study ui` starts a server, prints its URL, and Ctrl-C stops it (and its workers)."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
import urllib.request

import pytest

from racecar_study.cli.main import main
from racecar_study.tracking.server import free_port, port_in_use


def test_ui_prints_url_and_stops_on_ctrl_c(tmp_path):
    port = free_port()
    cmd = [
        sys.executable,
        "-m",
        "racecar_study.cli",
        "ui",
        "--port",
        str(port),
        "--tracking-uri",
        f"sqlite:///{tmp_path}/mlflow.db",
    ]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 150
        line = ""
        while time.monotonic() < deadline and "MLflow UI:" not in line:
            line = proc.stdout.readline()
            assert line or proc.poll() is None, "ui exited early"
        assert f"MLflow UI: http://127.0.0.1:{port}" in line
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=5) as r:
            assert r.status == 200
        assert (tmp_path / "artifacts").is_dir()
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=30) == 0
        deadline = time.monotonic() + 10
        while port_in_use(port) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not port_in_use(port)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


@pytest.mark.parametrize(
    "argv, message",
    [
        (["ui", "--tracking-uri", "http://127.0.0.1:1"], "is already a server"),
        (["ui", "--tracking-uri", "file:///tmp/mlruns"], "give a database URI"),
        (["sync", "/definitely/not/here"], "study folder not found"),
    ],
)
def test_usage_errors_are_one_line(argv, message, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and "\n" not in err


def test_sync_without_spool_has_nothing_to_do(tmp_path, capsys):
    assert main(["sync", str(tmp_path)]) == 0
    assert "nothing to sync" in capsys.readouterr().out
