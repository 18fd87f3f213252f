"""Fixtures for the study tests; the helpers live in study_helpers.py (re-exported here)."""

from __future__ import annotations

from pathlib import Path

import pytest
from study_helpers import TINY, free_port, run_cli, spec_dict, write_spec  # noqa: F401


@pytest.fixture(autouse=True)
def _tmp_tracking_store(tmp_path_factory, monkeypatch):
    """A spec that turns tracking on writes to a temporary store, never the repo's mlflow/store."""
    store = tmp_path_factory.mktemp("mlflow-store")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{store / 'mlflow.db'}")


@pytest.fixture
def workdir(tmp_path, monkeypatch) -> Path:
    monkeypatch.chdir(tmp_path)
    return tmp_path
