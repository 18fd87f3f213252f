"""Finding things again by tag: the study's experiment, its parent run, a trial's child run."""

from __future__ import annotations

from racecar_study.tracking.uris import artifact_location

TAG_STUDY = "racecar.study"
TAG_ROLE = "racecar.role"
TAG_STUDY_DIR = "racecar.study_dir"
TAG_TRIAL_ID = "racecar.trial_id"
TAG_TRIAL_NAME = "racecar.trial_name"
TAG_PARENT = "mlflow.parentRunId"


def quote(value: str) -> str:
    """A filter-string literal (MLflow's filter grammar has no escapes: pick the other quote)."""
    return f'"{value}"' if "'" in value else f"'{value}'"


def tag_filter(**tags: str) -> str:
    """`tags.\\`racecar.role\\` = 'trial' AND ...` from keyword pairs (dots written as __)."""
    return " AND ".join(f"tags.`{k.replace('__', '.')}` = {quote(v)}" for k, v in tags.items())


def search_all(client, experiment_ids: list[str], filter_string: str, order_by: list[str] | None = None):
    runs, token = [], None
    while True:
        page = client.search_runs(
            experiment_ids, filter_string, max_results=1000, order_by=order_by, page_token=token
        )
        runs.extend(page)
        token = page.token
        if not token:
            return runs


def get_or_create_experiment(client, name: str, uri: str, study: str) -> str:
    """The experiment's id; created once, with an explicit artifact root for a SQLite store. A
    concurrent creator (or a deleted experiment of that name) is handled, never duplicated."""
    from mlflow.exceptions import MlflowException

    exp = client.get_experiment_by_name(name)
    if exp is None:
        try:
            return client.create_experiment(
                name, artifact_location=artifact_location(uri, name), tags={TAG_STUDY: study}
            )
        except MlflowException:
            exp = client.get_experiment_by_name(name)  # lost the race: someone else created it
            if exp is None:
                raise
    if exp.lifecycle_stage == "deleted":
        client.restore_experiment(exp.experiment_id)
    if exp.tags.get(TAG_STUDY) != study:
        client.set_experiment_tag(exp.experiment_id, TAG_STUDY, study)
    return exp.experiment_id


def find_parent(client, experiment_id: str, study_dir: str):
    runs = search_all(
        client,
        [experiment_id],
        tag_filter(racecar__role="study", racecar__study_dir=study_dir),
        order_by=["attributes.start_time DESC"],
    )
    return runs[0] if runs else None


def find_child(client, experiment_id: str, parent_run_id: str, trial_id: str):
    runs = search_all(
        client,
        [experiment_id],
        tag_filter(mlflow__parentRunId=parent_run_id, racecar__trial_id=trial_id),
        order_by=["attributes.start_time ASC"],
    )
    return runs[0] if runs else None


def children(client, experiment_id: str, parent_run_id: str):
    return search_all(client, [experiment_id], tag_filter(mlflow__parentRunId=parent_run_id))


def create_child(
    client,
    experiment_id: str,
    parent_run_id: str,
    trial_id: str,
    trial_name: str,
    study: str,
    extra_tags: dict[str, str] | None = None,
):
    tags = {
        TAG_PARENT: parent_run_id,
        TAG_TRIAL_ID: trial_id,
        TAG_TRIAL_NAME: trial_name,
        TAG_ROLE: "trial",
        TAG_STUDY: study,
        **(extra_tags or {}),
    }
    return client.create_run(experiment_id, tags=tags, run_name=trial_name)
