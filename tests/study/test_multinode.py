"""Two Ray nodes on this machine (`ray start --head` and `ray start --address`), each declaring one
logical GPU; a study whose trials ask for half a GPU runs on both, and on CPU where CUDA is absent.

The nodes stay on 127.0.0.1 (loopback_ray.py) and are stopped by process group at the end, also
when the test fails.
"""

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import loopback_ray
import pyarrow.parquet as pq
import pytest
import ray
import torch
from study_helpers import free_port, run_cli, spec_dict, write_spec

RAY_CLI = [sys.executable, str(Path(__file__).with_name("loopback_ray.py"))]
NODE = ["--num-cpus", "1", "--num-gpus", "1", "--disable-usage-stats", "--block"]
STUDY = spec_dict(
    **{
        "name": "multinode",
        "search": {
            "space": {"train.lr": {"choice": [1e-3, 2e-3, 3e-3, 4e-3]}},
            "algorithm": "grid",
            "max_concurrent": 2,
        },
        "train.epochs": 3,
        "resources": {"cpu": 1, "gpu": 0.5},
    }
)


def _start(args: list[str], log: Path) -> subprocess.Popen:
    env = {**os.environ, "RAY_AUTH_MODE": "disabled"}
    with log.open("w") as out:
        return subprocess.Popen(
            [*RAY_CLI, "start", *args, *NODE],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )


def _stop(nodes: list[subprocess.Popen]) -> None:
    for node in reversed(nodes):  # the worker before the head
        if node.poll() is None:
            os.killpg(node.pid, signal.SIGTERM)  # `ray start --block` and the processes it started
    deadline = time.monotonic() + 8  # Ray's graceful GCS shutdown can take half a minute
    for node in nodes:
        try:
            node.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            pass
        try:  # whatever of the group is left, leader or not
            os.killpg(node.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        node.wait()


def _wait_for_nodes(address: str, n: int, nodes, logs: list[Path]) -> None:
    deadline = time.monotonic() + 90
    ray.init(address=address, log_to_driver=False)
    try:
        while sum(1 for x in ray.nodes() if x["Alive"]) < n:
            dead = [log for node, log in zip(nodes, logs) if node.poll() is not None]
            assert not dead, dead[0].read_text()[-2000:]
            assert time.monotonic() < deadline, "the second node did not join"
            time.sleep(0.5)
    finally:
        ray.shutdown()


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """Started once for the module's tests."""
    if torch.cuda.is_available():
        pytest.skip("these tests check trials that hold a logical GPU on nodes without CUDA")
    port = free_port()
    address = f"127.0.0.1:{port}"
    folder = tmp_path_factory.mktemp("cluster")
    logs = [folder / "head.log", folder / "worker.log"]
    head = ["--head", "--node-ip-address", "127.0.0.1", "--port", str(port), "--include-dashboard", "false"]
    nodes = []
    with pytest.MonkeyPatch.context() as patch:
        # This process is the driver: it dials 127.0.0.1 as given, like the nodes (loopback_ray.py).
        patch.setattr(loopback_ray.services, "resolve_ip_for_localhost", lambda host: host)
        try:
            nodes.append(_start(head, logs[0]))
            _wait_for_nodes(address, 1, nodes, logs)
            nodes.append(_start(["--address", address], logs[1]))
            _wait_for_nodes(address, 2, nodes, logs)
            yield address
        finally:
            _stop(nodes)


def _run_on(cluster: str, spec: Path, storage: Path, capture) -> tuple[int, str, str]:
    """`racecar-study run` attached to the cluster, Tune's experiment on the shared path."""
    args = ["--address", cluster, "--storage", f"file://{storage}", "--shared-storage", "--plain"]
    return run_cli(capture, "run", str(spec), *args)


def test_trials_run_on_both_nodes_on_cpu(cluster, workdir, capsys):
    storage = workdir / "shared"
    rc, out, err = _run_on(cluster, write_spec(workdir, STUDY), storage, capsys)
    assert rc == 0, err
    assert not ray.is_initialized()
    rows = pq.read_table(storage / "multinode" / "results.parquet").to_pylist()
    assert len(rows) == 4 and {r["status"] for r in rows} == {"done"}
    assert len({r["node_id"] for r in rows}) == 2, [r["node_id"] for r in rows]
    assert {r["device"] for r in rows} == {"cpu"}
    assert not (workdir / "runs").exists()  # everything went to the shared storage


def test_a_failing_trial_is_one_line_not_tunes_traceback(cluster, workdir, capfd):
    """Trials that ask for `device: cuda` on nodes that declare a GPU but have no CUDA fail where
    they run (the launch cannot see a remote node's CUDA). Each failure is one line naming the error
    and where its traceback is, Tune's tracebacks stay off the terminal, and the table and the
    summary say error."""
    raw = {
        **STUDY,
        "name": "no-cuda",
        "search": {**STUDY["search"], "space": {"train.lr": {"choice": [1e-3]}}},
    }
    spec = write_spec(workdir, {**raw, "train": {**raw["train"], "device": "cuda"}})
    storage = workdir / "shared"
    rc, out, err = _run_on(cluster, spec, storage, capfd)
    said = out + err
    assert rc == 1 and "Traceback" not in said and "Trials did not complete" not in said, said
    failed = [
        line for line in said.splitlines() if line.startswith("trial train_trial_") and " failed" in line
    ]
    assert len(failed) == 2, said  # Tune tries a failed trial twice (FailureConfig)
    error = "ValueError: device 'cuda' asked for but CUDA is not available here"
    first = re.fullmatch(rf"trial (\S+) failed: {error}; (.*)", failed[0])
    assert first and f" failed again: {error}" in failed[1], failed
    assert first[2].startswith("retrying it from its last checkpoint (traceback: ")  # Tune runs it once more
    assert "retrying" not in failed[1]  # and then gives up
    traceback = re.search(r"\(traceback: (\S+)\)$", first[2])
    assert traceback and "racecar_study/study/trainable.py" in Path(traceback[1]).read_text()
    (row,) = pq.read_table(storage / "no-cuda" / "results.parquet").to_pylist()
    assert row["status"] == "error" and "CUDA is not available" in row["error"]
    assert f"error {row['trial_id']}: {error}" in said  # the summary
