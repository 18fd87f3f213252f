"""Clients bound to an explicit tracking URI, short HTTP timeouts, and the launch-time reachability check."""

from __future__ import annotations

import os
import urllib.error
import urllib.request

from racecar_study.tracking.errors import TrackingUnavailable
from racecar_study.tracking.uris import is_http, redact_uri, sqlite_path

# MLflow reads these on every request. Its defaults (120 s timeout, 7 retries with backoff factor 2)
# would stall a trial for minutes when the server is gone; a user's own settings still win. The
# run-URL print costs a request per ended run and clutters worker logs.
CLIENT_ENV_DEFAULTS = {
    "MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT": "true",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "15",
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
    "MLFLOW_HTTP_REQUEST_BACKOFF_JITTER": "0.2",
}
HEALTH_TIMEOUT_S = 3.0


def use_client_env_defaults() -> None:
    for key, value in CLIENT_ENV_DEFAULTS.items():
        os.environ.setdefault(key, value)


def make_client(uri: str):
    """An MlflowClient for `uri` (tracking and registry), independent of the process default."""
    from mlflow import MlflowClient

    use_client_env_defaults()
    return MlflowClient(tracking_uri=uri, registry_uri=uri)


def check_reachable(uri: str, timeout: float = HEALTH_TIMEOUT_S) -> None:
    """Raise TrackingUnavailable unless `uri` answers: GET /health for a server, a usable folder for
    SQLite. Fast: one short request, no retries."""
    if is_http(uri):
        url = uri.rstrip("/") + "/health"
        try:
            with urllib.request.urlopen(urllib.request.Request(url, method="GET"), timeout=timeout) as r:
                if r.status != 200:
                    raise TrackingUnavailable(
                        f"tracking server {redact_uri(uri)} unreachable: HTTP {r.status}"
                    )
        except urllib.error.HTTPError as e:
            raise TrackingUnavailable(
                f"tracking server {redact_uri(uri)} unreachable: HTTP {e.code}"
            ) from None
        except (urllib.error.URLError, OSError) as e:
            reason = getattr(e, "reason", e)
            raise TrackingUnavailable(f"tracking server {redact_uri(uri)} unreachable: {reason}") from None
        return
    db = sqlite_path(uri)
    if db is not None:
        try:
            db.parent.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise TrackingUnavailable(f"tracking store {uri} unusable: {e.strerror or e}") from None
        if not os.access(db.parent, os.W_OK):
            raise TrackingUnavailable(f"tracking store {uri} unusable: {db.parent} is not writable")
    elif uri.startswith("file:") or "://" not in uri:
        raise TrackingUnavailable(
            f"tracking store {uri} unusable: MLflow 3 needs a database or a server "
            "(sqlite:///path/mlflow.db or http://host:port)"
        )
