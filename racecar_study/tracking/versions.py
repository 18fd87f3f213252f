"""Provenance tags: package versions (from metadata, nothing imported) and the git commit."""

from __future__ import annotations

import subprocess
from importlib import metadata

from racecar_study.tracking.uris import repo_root

PACKAGES = ("racecar_study", "torch", "ray", "optuna", "mlflow", "pyarrow")


def package_versions() -> dict[str, str]:
    out = {}
    for name in PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


def git_commit() -> str | None:
    """HEAD of the checkout the package runs from, with `-dirty` if it has local changes; None
    without git."""
    try:
        head = subprocess.run(
            ["git", "-C", str(repo_root()), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(repo_root()), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=5,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return f"{head}-dirty" if dirty else head or None
