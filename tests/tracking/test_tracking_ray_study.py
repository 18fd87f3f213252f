"""A real Ray Tune study (local Ray, ASHA) logged over HTTP to a real `mlflow server`, browsed with
MlflowClient: the hooks in racecar_study/study/tracking_hooks.py wired end to end."""

from __future__ import annotations

import copy
import json
import os
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import torch
import yaml

from racecar_study.cli.main import main
from racecar_study.tracking.server import free_port

NAME = "ray_e2e"
EPOCHS = 3
TRIALS = 4
SPEC = {
    "name": NAME,
    "data": {"name": "peak", "n_per_class": 10},
    "model": {"arch": "peak_mlp", "hidden": 16},
    "method": {"name": "rr", "lam": 1e-6},
    "train": {"epochs": EPOCHS, "batch_size": 10},
    "search": {
        "space": {"train.lr": {"loguniform": [1e-5, 1e-1]}},
        "num_samples": TRIALS,
        "max_concurrent": 2,
        "seed": 1,
    },
    "scheduler": {"kind": "asha", "grace_period": 1, "reduction_factor": 2},
    "checkpoint": {"every": 1, "keep": EPOCHS},
}


def _write(folder: Path, raw: dict, name: str = "spec.yaml") -> Path:
    path = folder / name
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


class _Cwd:
    def __init__(self, folder: Path):
        self.folder, self.old = folder, None

    def __enter__(self):
        self.old = os.getcwd()
        os.chdir(self.folder)

    def __exit__(self, *exc):
        os.chdir(self.old)


@pytest.fixture(scope="module")
def study(mlflow_server, tmp_path_factory):
    from mlflow import MlflowClient

    work = tmp_path_factory.mktemp("ray_study")
    with _Cwd(work):
        spec = _write(work, SPEC)
        start = time.perf_counter()
        rc = main(["run", str(spec), "--tracking-uri", mlflow_server.url, "--plain"])
        wall = time.perf_counter() - start
    assert rc == 0
    client = MlflowClient(mlflow_server.url)
    exp = client.get_experiment_by_name(NAME)
    folder = work / "runs" / NAME
    return {
        "work": work,
        "folder": folder,
        "client": client,
        "exp": exp,
        "url": mlflow_server.url,
        "wall": wall,
        "rows": pq.read_table(folder / "results.parquet").to_pylist(),
    }


def _runs(study, role: str):
    from racecar_study.tracking.runs import search_all

    flt = f"tags.`racecar.role` = '{role}'"
    return search_all(study["client"], [study["exp"].experiment_id], flt)


def test_one_parent_and_one_child_per_trial(study):
    parents = _runs(study, "study")
    assert len(parents) == 1
    parent = parents[0]
    assert parent.info.status == "FINISHED"
    assert parent.data.tags["racecar.study_dir"] == str(study["folder"].resolve())
    assert parent.data.tags["racecar.ray_address"] == "local"
    children = _runs(study, "trial")
    assert len(children) == TRIALS == len(study["rows"])
    assert {c.data.tags["mlflow.parentRunId"] for c in children} == {parent.info.run_id}
    by_trial = {c.data.tags["racecar.trial_id"]: c for c in children}
    for row in study["rows"]:
        run = by_trial[row["trial_id"]]
        assert row["mlflow_run_id"] == run.info.run_id
        assert run.info.run_name.endswith(row["trial_id"])
        assert run.data.params["train.epochs"] == str(EPOCHS)
        assert "train.lr" in run.data.params and run.data.params["seeds"] == "[0]"
        expected = {"done": "FINISHED", "stopped": "KILLED"}[row["status"]]
        assert run.info.status == expected, row


def test_metric_histories_match_the_epochs_run(study):
    client = study["client"]
    assert {r["status"] for r in study["rows"]} <= {"done", "stopped"}
    for row in study["rows"]:
        deadline = time.monotonic() + 10  # a stopped trial's last batch may still be on its way
        while True:
            steps = [m.step for m in client.get_metric_history(row["mlflow_run_id"], "val_acc")]
            if len(steps) >= row["epochs"] or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert sorted(steps) == list(range(1, row["epochs"] + 1)), row
        for key in ("train_loss", "reg_loss", "lr", "recon_err_0"):
            assert len(client.get_metric_history(row["mlflow_run_id"], key)) == row["epochs"], key


def test_artifacts_of_finished_trials_and_the_parent(study):
    client = study["client"]
    done = [r for r in study["rows"] if r["status"] == "done"]
    assert done
    for row in done:
        names = {a.path for a in client.list_artifacts(row["mlflow_run_id"])}
        svd = {a.path for a in client.list_artifacts(row["mlflow_run_id"], "svd")}
        assert "reconstructions.png" in names and "svd/vectors.png" in svd
        run = client.get_run(row["mlflow_run_id"])
        assert run.outputs and run.outputs.model_outputs, "no logged model"
    parent = _runs(study, "study")[0].info.run_id
    assert {a.path for a in client.list_artifacts(parent, "spec")} == {"spec/spec.yaml"}
    assert "results/results.parquet" in {a.path for a in client.list_artifacts(parent, "results")}


def _best_checkpoint_state(study, row) -> dict:
    """The best trial's checkpoint at its first best report (what the trial logged as its model)."""
    trial_dir = Path(row["checkpoint_path"]).parent
    reports = [json.loads(x) for x in (trial_dir / "result.json").read_text().splitlines() if x.strip()]
    values = [r["val_acc"] for r in reports]
    index = values.index(max(values))
    ckpt = trial_dir / f"checkpoint_{index:06d}" / "seed_0.pt"
    return torch.load(ckpt, map_location="cpu", weights_only=True)["model"]


def test_best_model_is_registered_and_predicts_like_its_checkpoint(study, tmp_path):
    import mlflow.pytorch

    from racecar_study.data import load_dataset
    from racecar_study.study.results import read_results
    from racecar_study.study.tracking_hooks import best_run_id

    client = study["client"]
    table = read_results(study["folder"] / "results.parquet")
    best = best_run_id(table)
    version = client.get_model_version_by_alias(NAME, "best")
    assert version.run_id == best
    assert _runs(study, "study")[0].data.tags["racecar.best_run_id"] == best
    row = next(r for r in study["rows"] if r["mlflow_run_id"] == best)
    assert row["status"] == "done"

    mlflow.set_tracking_uri(study["url"])
    try:
        model = mlflow.pytorch.load_model(f"models:/{NAME}@best", dst_path=str(tmp_path)).eval()
    finally:
        mlflow.set_tracking_uri(None)
    reference = copy.deepcopy(model)
    reference.load_state_dict(_best_checkpoint_state(study, row))
    x = load_dataset("peak", n_per_class=10).x_test[:8].float()
    with torch.no_grad():
        torch.testing.assert_close(model(x), reference.eval()(x))


def test_resuming_a_finished_study_touches_no_run(study, capsys):
    """Every trial has ended: resume starts nothing, and the study's runs stay as they were (a
    killed study's resume into the same runs: test_tracking_resume_killed.py)."""
    with _Cwd(study["work"]):
        rc = main(["resume", str(study["folder"]), "--tracking-uri", study["url"], "--plain"])
    assert rc == 0 and "nothing to resume" in capsys.readouterr().out
    parents = _runs(study, "study")
    assert len(parents) == 1 and "racecar.resumed" not in parents[0].data.tags
    assert parents[0].info.status == "FINISHED"
    children = _runs(study, "trial")
    assert len(children) == TRIALS
    rows = pq.read_table(study["folder"] / "results.parquet").to_pylist()
    assert {r["mlflow_run_id"] for r in rows} == {c.info.run_id for c in children}
    assert len(study["client"].search_model_versions(f"name = '{NAME}'")) == 1


def test_unreachable_tracking_uri_stops_before_anything_is_created(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    spec = _write(tmp_path, {**SPEC, "name": "unreachable"})
    dead = f"http://127.0.0.1:{free_port()}"
    start = time.perf_counter()
    rc = main(["run", str(spec), "--tracking-uri", dead, "--plain"])
    out, err = capsys.readouterr()
    assert rc == 2, err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1 and "127.0.0.1" in lines[0], err
    assert not (tmp_path / "runs").exists()
    assert time.perf_counter() - start < 30


def test_disabled_tracking_creates_no_runs(mlflow_server, tmp_path, capsys, monkeypatch):
    from mlflow import MlflowClient

    monkeypatch.chdir(tmp_path)
    raw = copy.deepcopy(SPEC)
    raw.update(name="untracked", tracking={"enabled": False, "tracking_uri": mlflow_server.url})
    raw["train"]["epochs"] = 1
    raw["search"]["num_samples"] = 1
    rc = main(["run", str(_write(tmp_path, raw)), "--plain"])
    capsys.readouterr()
    assert rc == 0
    rows = pq.read_table(tmp_path / "runs" / "untracked" / "results.parquet").to_pylist()
    assert len(rows) == 1 and rows[0]["mlflow_run_id"] is None
    assert MlflowClient(mlflow_server.url).get_experiment_by_name("untracked") is None
    assert not (tmp_path / "runs" / "untracked" / "tracking_spool").exists()
