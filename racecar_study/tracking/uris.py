"""Where runs are recorded: the default local SQLite store, overrides, and URIs safe to print."""

from __future__ import annotations

import os
import re
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

STORE_DB = "mlflow.db"
ARTIFACTS = "artifacts"


def repo_root() -> Path:
    """The parent of the package folder (the checkout, for an editable install)."""
    return Path(__file__).resolve().parents[2]


def default_store_dir() -> Path:
    return repo_root() / "mlflow" / "store"


def default_tracking_uri() -> str:
    """`sqlite:///<repo>/mlflow/store/mlflow.db`; creates the store folder and its artifacts folder."""
    store = default_store_dir()
    (store / ARTIFACTS).mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{store / STORE_DB}"


def resolve_tracking_uri(explicit: str | None = None, spec_uri: str | None = None) -> str:
    """`--tracking-uri`, then spec.tracking.tracking_uri, then $MLFLOW_TRACKING_URI, then the default."""
    for uri in (explicit, spec_uri, os.environ.get("MLFLOW_TRACKING_URI")):
        if uri and uri.strip():
            return uri.strip()
    return default_tracking_uri()


def is_http(uri: str) -> bool:
    return uri.startswith(("http://", "https://"))


def sqlite_path(uri: str) -> Path | None:
    """The database file of a `sqlite:///...` URI, else None."""
    if not uri.startswith("sqlite:///"):
        return None
    return Path(uri[len("sqlite:///") :])


def artifact_location(uri: str, experiment: str) -> str | None:
    """Explicit artifact root for a SQLite store (`<db folder>/artifacts/<experiment>`); None for a
    server, which places artifacts itself (its --artifacts-destination)."""
    db = sqlite_path(uri)
    if db is None:
        return None
    folder = db.parent / ARTIFACTS / re.sub(r"[^A-Za-z0-9_.-]", "_", experiment)
    folder.mkdir(parents=True, exist_ok=True)
    return folder.resolve().as_uri()


def redact_uri(uri: str) -> str:
    """The URI without a password in its user-info part (`http://user:***@host`)."""
    try:
        parts = urlsplit(uri)
    except ValueError:
        return uri
    if parts.password is None:
        return uri
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return urlunsplit(parts._replace(netloc=f"{parts.username}:***@{host}"))
