"""Fixtures for the data-wing tests: private cache folders, fake source files, a scratch registry."""

from __future__ import annotations

from pathlib import Path

import pytest
from data_helpers import fake_fashion

from racecar_study.data import cache, registry


@pytest.fixture
def cache_dir(tmp_path) -> Path:
    return tmp_path / "cache"


@pytest.fixture
def fashion_root(tmp_path) -> Path:
    root = tmp_path / "fashion"
    fake_fashion(root)
    return root


@pytest.fixture
def stats():
    """The cache counters, reset for the test."""
    cache.STATS.hits = cache.STATS.builds = cache.STATS.corrupt = 0
    return cache.STATS


@pytest.fixture
def scratch_registry():
    """Register test-only data sets; they are removed afterwards."""
    before = dict(registry._REGISTRY)
    yield registry.register_dataset
    registry._REGISTRY.clear()
    registry._REGISTRY.update(before)
