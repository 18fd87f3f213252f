"""Secrets come only from environment variables; nothing recorded may carry them.

`scrub` replaces the value of a secret-looking key, any value containing a secret environment
variable's value, and passwords inside URLs, with `***`.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from typing import Any

from racecar_study.tracking.uris import redact_uri

REDACTED = "***"
SECRET_KEY_RE = re.compile(
    r"(token|passw(or)?d|secret|api[_.-]?key|access[_.-]?key|private[_.-]?key|credential|"
    r"connection[_.-]?string|auth(orization)?$|sas$)",
    re.IGNORECASE,
)
# Environment variables whose values are secrets even though the names look harmless.
KNOWN_SECRET_ENV = (
    "MLFLOW_TRACKING_TOKEN",
    "MLFLOW_TRACKING_PASSWORD",
    "MLFLOW_TRACKING_CLIENT_CERT_PATH",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AZURE_STORAGE_ACCESS_KEY",
    "AZURE_STORAGE_CONNECTION_STRING",
    "AZURE_CLIENT_SECRET",
    "DATABRICKS_TOKEN",
    "GOOGLE_APPLICATION_CREDENTIALS",
)
MIN_SECRET_LEN = 6  # shorter values ("1", "true") would redact half of everything
_URL_PASSWORD_RE = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*://[^/\s:@]+):([^@\s/]+)@")


def is_secret_key(key: str) -> bool:
    return bool(SECRET_KEY_RE.search(key))


def secret_values(environ: Mapping[str, str] | None = None) -> list[str]:
    env = os.environ if environ is None else environ
    names = {k for k in env if is_secret_key(k)} | {k for k in KNOWN_SECRET_ENV if k in env}
    values = {env[k] for k in names if len(env.get(k, "")) >= MIN_SECRET_LEN}
    return sorted(values, key=len, reverse=True)


def scrub_text(text: str, secrets: list[str] | None = None) -> str:
    """`text` with every secret env value and every URL password replaced by `***`."""
    for value in secret_values() if secrets is None else secrets:
        text = text.replace(value, REDACTED)
    return _URL_PASSWORD_RE.sub(rf"\1:{REDACTED}@", text)


def scrub(items: Mapping[str, object]) -> dict[str, str]:
    """Params or tags as strings, with secret-looking keys' values and secret values redacted."""
    secrets = secret_values()
    out = {}
    for key, value in items.items():
        text = str(value)
        out[key] = REDACTED if is_secret_key(key) and text else scrub_text(text, secrets)
    return out


def scrub_tree(obj: Any, secrets: list[str] | None = None) -> Any:
    """A nested dict/list with secret-looking keys' values and secret substrings redacted."""
    secrets = secret_values() if secrets is None else secrets
    if isinstance(obj, Mapping):
        return {
            k: REDACTED if is_secret_key(str(k)) and v not in (None, "") else scrub_tree(v, secrets)
            for k, v in obj.items()
        }
    if isinstance(obj, list | tuple):
        return [scrub_tree(v, secrets) for v in obj]
    return scrub_text(obj, secrets) if isinstance(obj, str) else obj


__all__ = ["REDACTED", "is_secret_key", "redact_uri", "scrub", "scrub_text", "scrub_tree", "secret_values"]
