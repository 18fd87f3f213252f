"""A tracked study whose driver is killed mid-way (SIGKILL to its process group, Ray included) and
then resumed against the same real `mlflow server`: still one parent run, one child per trial, no
metric step logged twice, results.parquet points at those children and the best model is @best."""

from __future__ import annotations

import os
from collections import Counter

import pyarrow.parquet as pq
import yaml

from racecar_study.cli.main import main

NAME = "killed_resume"
EPOCHS = 10
TRIALS = 5
# One trial at a time, each a second or two of training, so the kill lands between (or inside) trials.
SPEC = {
    "name": NAME,
    "data": {"name": "peak", "n_per_class": 100},
    "model": {"arch": "peak_mlp", "hidden": 64},
    "method": {"name": "rr", "lam": 1e-6},
    "train": {"epochs": EPOCHS, "batch_size": 10},
    "search": {
        "space": {"train.lr": {"loguniform": [1e-4, 1e-2]}},
        "num_samples": TRIALS,
        "max_concurrent": 1,
        "seed": 3,
    },
    "scheduler": {"kind": "none"},
    "checkpoint": {"every": 1, "keep": 2},
}
METRICS = ("train_loss", "val_acc", "lr")


def _runs(client, experiment_id: str, role: str):
    from racecar_study.tracking.runs import search_all

    return search_all(client, [experiment_id], f"tags.`racecar.role` = '{role}'")


def test_killed_tracked_study_resumes_into_the_same_runs(mlflow_server, tmp_path, capsys, killed_driver):
    from mlflow import MlflowClient

    spec = tmp_path / "spec.yaml"
    spec.write_text(yaml.safe_dump(SPEC, sort_keys=False))
    folder = tmp_path / "runs" / NAME
    args = ["run", str(spec), "--plain", "--tracking-uri", mlflow_server.url]
    results = folder / "results.parquet"
    killed_driver.run(args, tmp_path, results, tmp_path / "driver.log", timeout=60)  # the third trains
    assert len(killed_driver.finished(results)) < TRIALS, "the study ended before the kill"

    old = os.getcwd()
    os.chdir(tmp_path)
    try:
        rc = main(["resume", str(folder), "--tracking-uri", mlflow_server.url, "--plain"])
    finally:
        os.chdir(old)
    _, err = capsys.readouterr()
    assert rc == 0, err

    client = MlflowClient(mlflow_server.url)
    exp = client.get_experiment_by_name(NAME)
    parents = _runs(client, exp.experiment_id, "study")
    assert len(parents) == 1, [p.info.run_id for p in parents]
    assert parents[0].info.status == "FINISHED" and parents[0].data.tags["racecar.resumed"] == "1"
    children = _runs(client, exp.experiment_id, "trial")
    assert len(children) == TRIALS, sorted(c.data.tags["racecar.trial_id"] for c in children)
    assert {c.data.tags["mlflow.parentRunId"] for c in children} == {parents[0].info.run_id}
    assert len({c.data.tags["racecar.trial_id"] for c in children}) == TRIALS

    rows = pq.read_table(folder / "results.parquet").to_pylist()
    assert len(rows) == TRIALS and {r["status"] for r in rows} == {"done"}, rows
    by_trial = {c.data.tags["racecar.trial_id"]: c for c in children}
    assert {r["trial_id"] for r in rows} == set(by_trial)
    for row in rows:
        run = by_trial[row["trial_id"]]
        assert row["mlflow_run_id"] == run.info.run_id
        assert run.info.status == "FINISHED", row["trial_id"]
        for key in METRICS:
            steps = [m.step for m in client.get_metric_history(run.info.run_id, key)]
            twice = sorted(s for s, n in Counter(steps).items() if n > 1)
            assert not twice, f"{row['trial_id']} {key}: steps logged twice: {twice}"
            assert sorted(steps) == list(range(1, EPOCHS + 1)), (row["trial_id"], key, steps)

    version = client.get_model_version_by_alias(NAME, "best")
    assert version.run_id in {r["mlflow_run_id"] for r in rows}
    assert parents[0].data.tags["racecar.best_run_id"] == version.run_id
    assert len(client.search_model_versions(f"name = '{NAME}'")) == 1
