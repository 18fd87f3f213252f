"""Secrets come from the environment only and never reach params, tags, artifacts or the spool."""

from __future__ import annotations

from pathlib import Path

from racecar_study.tracking import StudyTracking, trial_callback
from racecar_study.tracking.secrets import REDACTED, scrub, scrub_text, scrub_tree

TOKEN = "tok-Zq81-very-secret"
AWS = "aws/SECRET+key/123456"
URL_PASSWORD = "hunter2-hunter2"
KEY_VALUE = "plain-api-key-98765"


def _secret_env(monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", TOKEN)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", AWS)


def test_scrub_rules(monkeypatch):
    _secret_env(monkeypatch)
    out = scrub(
        {
            "data.api_key": KEY_VALUE,
            "model.width": 16,
            "note": f"token is {TOKEN}",
            "uri": f"http://bob:{URL_PASSWORD}@example.com:5000/x",
            "empty_password": "",
        }
    )
    assert out["data.api_key"] == REDACTED and out["model.width"] == "16"
    assert out["note"] == f"token is {REDACTED}"
    assert out["uri"] == f"http://bob:{REDACTED}@example.com:5000/x"
    assert out["empty_password"] == ""
    assert scrub_text(f"s3 {AWS} done") == f"s3 {REDACTED} done"
    tree = scrub_tree({"a": [{"password": "x1"}, f"{TOKEN}"], "n": 3})
    assert tree == {"a": [{"password": REDACTED}, REDACTED], "n": 3}


def _everything_recorded(client, run_id: str, tmp: Path) -> str:
    run = client.get_run(run_id)
    parts = [repr(run.data.params), repr(run.data.tags), repr(run.info)]
    local = Path(client.download_artifacts(run_id, "", str(tmp / run_id)))
    for f in local.rglob("*"):
        if f.is_file() and f.suffix in ("", ".yaml", ".json", ".txt", ".MLmodel") or f.name == "MLmodel":
            parts.append(f.read_text(errors="ignore"))
    return "\n".join(parts)


def test_no_secret_reaches_the_server_or_the_spool(
    monkeypatch, mlflow_server, tiny_task, make_trainer, make_spec, tmp_path
):
    from mlflow import MlflowClient

    _secret_env(monkeypatch)
    spec = make_spec("secretive", mlflow_server.url, data={"api_key": KEY_VALUE, "note": f"see {TOKEN}"})
    study_dir = tmp_path / "secretive"
    study_dir.mkdir()
    tracking = StudyTracking.open(spec, study_dir)
    ctx = tracking.trial_context()
    params = {
        "data": {"api_key": KEY_VALUE, "bucket": f"s3://bucket?key={AWS}"},
        "storage": f"http://bob:{URL_PASSWORD}@store.example.com",
        "_tracking": {**ctx, "password": "should-not-even-be-seen"},
    }
    cb = trial_callback(ctx, "t0", "trial_t0", params)
    trainer = make_trainer(tiny_task.net(seed=0), 2, [cb])
    trainer.fit((tiny_task.x_train, tiny_task.y_train), (tiny_task.x_val, tiny_task.y_val))
    cb.log_final(trainer.net, None, tiny_task.input_shape, tiny_task.x_train[:4])
    tracking.finish(None, cb.run_id)

    client = MlflowClient(mlflow_server.url)
    recorded = _everything_recorded(client, tracking.parent_run_id, tmp_path)
    recorded += _everything_recorded(client, cb.run_id, tmp_path)
    assert "api_key: '***'" in recorded or 'api_key: "***"' in recorded or "api_key: ***" in recorded
    spool = (
        "".join(p.read_text() for p in (study_dir / "tracking_spool").rglob("*.jsonl*"))
        if (study_dir / "tracking_spool").exists()
        else ""
    )
    for secret in (TOKEN, AWS, URL_PASSWORD, KEY_VALUE, "should-not-even-be-seen"):
        assert secret not in recorded, secret
        assert secret not in spool, secret
    assert client.get_run(cb.run_id).data.params["data.api_key"] == REDACTED
