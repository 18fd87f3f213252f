"""The Ray cluster a study runs on: an embedded local one, or an existing one via `--address`.

Everything that can be checked before launch is checked here: an unreachable address (a TCP
probe, since `ray.init` would retry for a long time) and per-trial resources that no node has.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
from urllib.parse import urlparse

from racecar_study.study.errors import LaunchError
from racecar_study.study.signals import arrived_signals
from racecar_study.study.spec import ResourcesSpec

PROBE_TIMEOUT_S = 3.0
# The embedded cluster starts no idle workers: Ray would prestart one per CPU when it starts and
# again when the driver connects, but Tune's trial actors carry a runtime_env and so always get
# fresh worker processes. The prestarted ones would only take CPU from start-up (about 0.8
# CPU-seconds each, measured).
LOCAL_SYSTEM_CONFIG = {"enable_worker_prestart": False, "prestart_worker_first_driver": False}


def _dialled(address: str) -> str:
    """The host:port Ray will dial for `address`: Ray rewrites a loopback host (127.0.0.1) to this
    machine's network address, so probing what the user typed could pass where Ray then hangs."""
    try:
        from ray._private.services import canonicalize_bootstrap_address

        return canonicalize_bootstrap_address(address) or address
    except Exception:  # a private helper: without it, probe what was typed
        return address


def probe(address: str) -> None:
    """Raise LaunchError unless the cluster address accepts a TCP connection."""
    if address.startswith("ray://"):
        # Ray Client runs Tune's driver loop on the head, where this process's results writer,
        # progress view and optuna.db are not: the study would run blind.
        raise LaunchError(
            f"--address: {address} is a Ray Client address; run racecar-study on a node of the "
            "cluster and give the cluster's HOST:PORT (the GCS address, default port 6379)"
        )
    dialled = _dialled(address)
    parsed = urlparse(f"gcs://{dialled}")
    try:
        host, port = parsed.hostname, parsed.port
    except ValueError:
        host = port = None
    if not host or not port:
        raise LaunchError(f"--address: expected HOST:PORT or auto, got '{address}'")
    via = "" if dialled == address else f" (Ray dials {host}:{port} for {address})"
    try:
        with socket.create_connection((host, port), timeout=PROBE_TIMEOUT_S):
            pass
    except OSError as e:
        raise LaunchError(
            f"--address: cannot reach a Ray cluster at {address}{via}: {e.strerror or e}"
        ) from None


def local_gpus() -> int:
    import torch

    return torch.cuda.device_count()


def check_resources(asked: ResourcesSpec, nodes: list[dict[str, float]], where: str) -> None:
    """Every trial must fit on at least one node."""
    for key, field in (("CPU", "cpu"), ("GPU", "gpu")):
        want = getattr(asked, field)
        have = max((n.get(key, 0.0) for n in nodes), default=0.0)
        if want > have:
            none = "none" if have == 0 else f"at most {have:g} per node"
            raise LaunchError(f"resources.{field}: each trial asks for {want:g} {key}; {where} has {none}")


def local_nodes() -> list[dict[str, float]]:
    return [{"CPU": float(os.cpu_count() or 1), "GPU": float(local_gpus())}]


def connect(address: str | None) -> None:
    """Start the embedded local Ray, or attach to the cluster at `address`. A Ctrl-C or SIGTERM
    whose exception Python dropped while `ray.init` ran stops here, Ray shut down again."""
    import ray

    with arrived_signals() as arrived:
        _init(ray, address)
    if arrived & {signal.SIGINT, signal.SIGTERM, signal.SIGHUP}:
        ray.shutdown()
        raise KeyboardInterrupt


def _init(ray, address: str | None) -> None:
    quiet = {"include_dashboard": False, "log_to_driver": False, "logging_level": logging.WARNING}
    if address is None:
        # Token auth guards shared clusters; a private embedded one has nobody to keep out.
        os.environ["RAY_AUTH_MODE"] = "disabled"
        # "local" and no RAY_ADDRESS: a fresh private cluster, never one `ray start` left running.
        os.environ.pop("RAY_ADDRESS", None)
        ray.init(
            address="local",
            num_cpus=os.cpu_count(),
            num_gpus=local_gpus(),
            _node_ip_address="127.0.0.1",
            _system_config=dict(LOCAL_SYSTEM_CONFIG),  # Ray writes this session's paths into it
            **quiet,
        )  # loopback: it serves this process only
        return
    quiet.pop("include_dashboard")  # the cluster's head decides that
    try:
        ray.init(address=address, **quiet)
    except (ConnectionError, RuntimeError) as e:
        raise LaunchError(f"--address: cannot attach to {address}: {str(e).splitlines()[0]}") from None


def cluster_nodes() -> list[dict[str, float]]:
    import ray

    return [dict(n["Resources"]) for n in ray.nodes() if n.get("Alive")]


def disconnect() -> None:
    import ray

    if ray.is_initialized():
        _end_monitor()
        ray.shutdown()


def _end_monitor() -> None:
    """End the embedded cluster's autoscaler monitor before Ray's shut-down does.

    `ray.shutdown` stops the monitor last, after the GCS. The monitor's SIGTERM handler then reports
    its death through the GCS that is gone, and Ray waits out a 1 s grace period before killing it:
    a second added to every study's end (ray 2.60; measured 1.35 s shut-down, 0.34 s without).
    A cluster of one machine has nothing to autoscale, and the monitor keeps no state. With
    `--address` this driver started no processes, so there is nothing here to end."""
    try:
        from ray._private import ray_constants, worker

        node = worker._global_node
        monitors = node.all_processes.get(ray_constants.PROCESS_TYPE_MONITOR, []) if node else []
    except (ImportError, AttributeError):  # Ray's internals moved: its own shut-down still works
        return
    for info in monitors:
        if info.process.poll() is None:
            info.process.kill()
            info.process.wait()
