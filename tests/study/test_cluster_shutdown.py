"""Embedded clusters, one after another in one process (a notebook, a benchmark, a test run)."""

import subprocess
from pathlib import Path

import ray

from racecar_study.study import cluster


def _spill_folder() -> Path:
    import json

    from ray._private import worker

    node = worker._global_node
    config = json.loads(node._config["object_spilling_config"])
    return Path(config["params"]["directory_path"]).resolve()


def _session_folder() -> Path:
    from ray._private import worker

    return Path(worker._global_node.get_session_dir_path()).resolve()


def test_each_embedded_cluster_is_its_own_and_ends_without_a_grace_period(monkeypatch):
    """Two things the second of two studies in one process showed.

    Ray wrote the first session's spilling folder into the system-config dict it was given, our
    module constant, so the next cluster spilled objects into the previous session's folder and
    warned that the config came from an unstable API. And `ray.shutdown` stopped the autoscaler
    monitor after the GCS it reports to; its SIGTERM handler then hung on the dead GCS and Ray
    waited out a 1 s grace period before killing it, a second added to the end of every study.
    """
    expired = []
    wait = subprocess.Popen.wait

    def watched(self, timeout=None):
        try:
            return wait(self, timeout)
        except subprocess.TimeoutExpired:
            expired.append(" ".join(map(str, self.args))[:120])
            raise

    monkeypatch.setattr(subprocess.Popen, "wait", watched)
    sessions = []
    for _ in range(2):
        cluster.connect(None)
        try:
            sessions.append(_session_folder())
            assert _spill_folder() == sessions[-1]
        finally:
            cluster.disconnect()
        assert not ray.is_initialized()
    assert sessions[0] != sessions[1]
    assert expired == [], f"shut-down waited out the grace period of {expired}"
