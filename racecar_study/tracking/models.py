"""Trial models as MLflow 3 logged models (explicit client, no process-global run), and the registry.

`save_model_dir` writes an MLflow PyTorch model (signature, input example) to a local folder;
`upload_model_dir` turns such a folder into a logged model of a run.

MLflow 3 defaults to the "pt2" format (a torch.export graph: forward pass only, eval mode). We save
"pickle" instead, so that the loaded model is the whole RacecarNet: reverse pass, analysis and
fine-tuning for transfer work on it. Loading therefore needs `racecar_study` importable.
"""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import torch

from racecar_study.core.logs import quiet_logger
from racecar_study.tracking.uris import is_http

MODEL_NAME = "model"
SERIALIZATION = "pickle"
ALIAS = "best"


def best_network(net: torch.nn.Module, best_state_dict: dict | None) -> torch.nn.Module:
    """A CPU copy of `net` holding the best weights, in eval mode."""
    best = copy.deepcopy(net).cpu()
    if best_state_dict is not None:
        best.load_state_dict({k: v.detach().cpu() for k, v in best_state_dict.items()})
    return best.eval()


def save_model_dir(
    net: torch.nn.Module, example: np.ndarray, path: Path, metadata: dict | None = None
) -> Path:
    import mlflow.pytorch
    from mlflow.models import infer_signature

    with torch.no_grad():
        logits = net(torch.as_tensor(example)).numpy()
    signature = infer_signature(example, logits)
    requirements = [f"torch=={torch.__version__.split('+')[0]}", f"numpy=={np.__version__}"]
    with quiet_logger("mlflow.pytorch"):  # its warning about pickle, on every save: the choice is deliberate
        mlflow.pytorch.save_model(
            net,
            str(path),
            signature=signature,
            input_example=example,
            pip_requirements=requirements,
            metadata=metadata,
            serialization_format=SERIALIZATION,
        )
    return path


def upload_model_dir(client, experiment_id: str, run_id: str, local_dir: Path, step: int = 0) -> str:
    """Create a logged model for `run_id` from a saved model folder; returns its model id."""
    from mlflow.entities import LoggedModelOutput
    from mlflow.models import Model

    model = client.create_logged_model(experiment_id, name=MODEL_NAME, source_run_id=run_id)
    try:
        mlmodel = Model.load(str(local_dir))
        mlmodel.model_id = mlmodel.model_uuid = model.model_id
        mlmodel.run_id = run_id
        mlmodel.artifact_path = model.artifact_location
        mlmodel.save(str(Path(local_dir) / "MLmodel"))
        client.log_model_artifacts(model.model_id, str(local_dir))
        client.finalize_logged_model(model.model_id, "READY")
    except Exception:
        try:
            client.finalize_logged_model(model.model_id, "FAILED")
        except Exception:
            pass
        raise
    client.log_outputs(run_id, [LoggedModelOutput(model.model_id, step)])
    return model.model_id


def latest_model_id(client, run_id: str) -> str | None:
    run = client.get_run(run_id)
    outputs = run.outputs.model_outputs if run.outputs else []
    if not outputs:
        return None
    return max(outputs, key=lambda o: o.step).model_id


def register_best(client, name: str, run_id: str, alias: str = ALIAS) -> str | None:
    """Register the run's latest logged model under `name` and point `alias` at it; the version, or
    None when the run has no logged model. Registering the same model twice reuses its version."""
    from mlflow.exceptions import MlflowException

    model_id = latest_model_id(client, run_id)
    if model_id is None:
        return None
    try:
        client.create_registered_model(name, tags={"racecar.study": name})
    except MlflowException as e:
        if "already exists" not in str(e).lower() and "ALREADY_EXISTS" not in str(e.error_code):
            raise
    source = f"models:/{model_id}"
    if not is_http(client.tracking_uri):
        # A direct database store resolves models:/ URIs through the process-global tracking URI
        # (an MLflow TODO), not this client's: hand it the logged model's artifact location instead.
        source = client.get_logged_model(model_id).artifact_location
    existing = [
        v
        for v in client.search_model_versions(f"name = '{name}'")
        if getattr(v, "model_id", None) == model_id or v.source == source
    ]
    version = (
        existing[0]
        if existing
        else client.create_model_version(name, source=source, run_id=run_id, model_id=model_id)
    )
    client.set_registered_model_alias(name, alias, version.version)
    return str(version.version)
