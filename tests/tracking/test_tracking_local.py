"""No server needed: URI resolution, the background sender under a slow or dead client, the spool."""

from __future__ import annotations

import time
from types import SimpleNamespace

import pytest

from racecar_study.tracking import default_tracking_uri, resolve_tracking_uri
from racecar_study.tracking.link import Link
from racecar_study.tracking.sender import MetricSender
from racecar_study.tracking.spool import Spool, describe, pending_files, read_spool
from racecar_study.tracking.uris import artifact_location, redact_uri, repo_root


def test_default_uri_and_precedence(monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    default = default_tracking_uri()
    assert default == f"sqlite:///{repo_root()}/mlflow/store/mlflow.db"
    assert (repo_root() / "mlflow" / "store" / "artifacts").is_dir()
    assert resolve_tracking_uri() == default
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://env:5000")
    assert resolve_tracking_uri() == "http://env:5000"
    assert resolve_tracking_uri(spec_uri="http://spec:5000") == "http://spec:5000"
    assert resolve_tracking_uri("http://flag:5000", "http://spec:5000") == "http://flag:5000"


def test_sqlite_artifact_location_and_redaction(tmp_path):
    loc = artifact_location(f"sqlite:///{tmp_path}/m.db", "my study")
    assert loc == (tmp_path / "artifacts" / "my_study").as_uri()
    assert artifact_location("http://host:5000", "x") is None
    assert redact_uri("http://u:pw@h:5/x") == "http://u:***@h:5/x" and redact_uri("http://h") == "http://h"


class _SlowClient:
    def __init__(self, delay: float = 0.0, fail: bool = False):
        self.delay, self.fail, self.batches = delay, fail, []

    def log_batch(self, run_id, metrics=()):
        time.sleep(self.delay)
        if self.fail:
            raise ConnectionError("Connection refused")
        self.batches.append(list(metrics))


def _sender(tmp_path, client, interval=0.0):
    spool = Spool(tmp_path, "trial-x", {"trial_id": "x"})
    return MetricSender(Link(client, spool), "run", min_interval_s=interval), spool


def test_submit_never_waits_for_a_slow_server(tmp_path):
    client = _SlowClient(delay=0.5)
    sender, spool = _sender(tmp_path, client)
    start = time.monotonic()
    for step in range(1, 21):
        sender.submit([(step, 0, {"loss": 1.0 / step})])
    assert time.monotonic() - start < 0.1
    assert sender.flush(timeout=10)
    steps = sorted(m.step for b in client.batches for m in b)
    assert steps == list(range(1, 21)) and len(client.batches) < 20  # coalesced while busy
    assert spool.written == 0


def test_sender_wakes_on_its_own_clock_and_sends_one_batch(tmp_path):
    """Hand-overs wake no thread: the sender sends when its interval is due, everything at once."""
    client = _SlowClient()
    sender, _ = _sender(tmp_path, client, interval=0.4)
    for step in range(1, 6):
        sender.submit([(step, 7, {"loss": float(step), "epoch": step, "device": "cpu", "flag": True})])
    time.sleep(0.1)
    assert client.batches == []  # not due yet
    deadline = time.monotonic() + 5
    while not client.batches and time.monotonic() < deadline:
        time.sleep(0.02)
    assert len(client.batches) == 1  # epoch is the step; strings and bools are not metrics
    assert [(m.key, m.value, m.timestamp, m.step) for m in client.batches[0]] == [
        ("loss", float(s), 7, s) for s in range(1, 6)
    ]
    assert sender.close(timeout=5)


def test_dead_server_goes_to_the_spool_once_then_offline(tmp_path):
    client = _SlowClient(fail=True)
    sender, spool = _sender(tmp_path, client)
    for step in range(1, 6):
        sender.submit([(step, 0, {"loss": float(step)})])
        time.sleep(0.02)
    sender.close(timeout=5)
    header, records = read_spool(spool.path)
    assert header["trial_id"] == "x"
    assert sorted(r[3] for rec in records for r in rec["rows"]) == [1, 2, 3, 4, 5]
    assert not sender.link.online and len(sender.link.errors) == 1  # one failed request, then spooled
    assert describe(records) == "5 metric values"
    assert pending_files(tmp_path) == [spool.path]


def test_flush_is_bounded_when_the_server_hangs(tmp_path):
    sender, spool = _sender(tmp_path, _SlowClient(delay=3.0))
    sender.submit([(1, 0, {"loss": 1.0})])
    time.sleep(0.1)  # the first batch is in flight
    sender.submit([(2, 0, {"loss": 2.0})])
    start = time.monotonic()
    assert sender.flush(timeout=0.3) is False
    assert time.monotonic() - start < 1.0
    _, records = read_spool(spool.path)
    assert [r[3] for rec in records for r in rec["rows"]] == [2]


def test_disabled_tracking_is_a_no_op(tmp_path):
    from racecar_study.tracking import StudyTracking, trial_callback

    spec = SimpleNamespace(name="off", tracking=SimpleNamespace(enabled=False))
    st = StudyTracking.open(spec, tmp_path)
    assert st.trial_context() == {"enabled": False} and st.gap_report() == []
    cb = trial_callback(st.trial_context(), "t", "t", {})
    assert cb.run_id is None
    cb.log_final(None, None, None, None)
    st.finish(None, None)


def test_import_is_cheap():
    import subprocess
    import sys

    code = "import racecar_study.tracking, sys; print('mlflow' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


@pytest.mark.parametrize("uri", ["file:///tmp/mlruns", "/tmp/mlruns"])
def test_plain_file_store_refused(uri):
    from racecar_study.tracking import TrackingUnavailable
    from racecar_study.tracking.connect import check_reachable

    with pytest.raises(TrackingUnavailable):
        check_reachable(uri)


def test_trial_with_a_dead_server_starts_fast_trains_and_spools(tmp_path, tiny_task, make_trainer):
    import mlflow  # noqa: F401  (import time is not what this measures)

    from racecar_study.tracking import trial_callback
    from racecar_study.tracking.server import free_port

    ctx = {
        "enabled": True,
        "tracking_uri": f"http://127.0.0.1:{free_port()}",
        "experiment_id": "1",
        "parent_run_id": "p",
        "study": "s",
        "spool_dir": str(tmp_path),
        "log_models": False,
    }
    start = time.monotonic()
    cb = trial_callback(ctx, "t9", "trial_t9", {"train": {"lr": 0.1}})
    assert time.monotonic() - start < 2.5 and cb.run_id is None
    trainer = make_trainer(tiny_task.net(seed=0), 3, [cb])
    trainer.fit((tiny_task.x_train, tiny_task.y_train), (tiny_task.x_val, tiny_task.y_val))
    cb.log_final(trainer.net, None, tiny_task.input_shape, tiny_task.x_train[:4])
    assert time.monotonic() - start < 30
    header, records = read_spool(tmp_path / "trial-t9.jsonl")
    assert header["trial_id"] == "t9" and header["run_id"] is None
    kinds = [r["kind"] for r in records]
    assert kinds[0] == "params" and kinds[-1] == "terminate" and "artifacts" in kinds
    steps = {row[3] for r in records if r["kind"] == "metrics" for row in r["rows"]}
    assert steps == {1, 2, 3}
