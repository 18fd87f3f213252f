"""The embedded cluster's shut-down waits on no process's grace period."""

import subprocess

import ray

from racecar_study.study import cluster


def test_an_embedded_cluster_shuts_down_without_waiting_out_a_grace_period(monkeypatch):
    """`ray.shutdown` stopped the autoscaler monitor after the GCS it reports to; the monitor's
    SIGTERM handler then hung on the dead GCS and Ray waited out its 1 s grace period before
    killing it, which added a second to the end of every study."""
    expired = []
    wait = subprocess.Popen.wait

    def watched(self, timeout=None):
        try:
            return wait(self, timeout)
        except subprocess.TimeoutExpired:
            expired.append(" ".join(map(str, self.args))[:120])
            raise

    cluster.connect(None)
    try:
        monkeypatch.setattr(subprocess.Popen, "wait", watched)
    finally:
        cluster.disconnect()
    assert not ray.is_initialized()
    assert expired == [], f"shut-down waited out the grace period of {expired}"
