"""Where a study lives.

The study folder holds the driver's files (spec.yaml, study.json, optuna.db, results.parquet) and,
for local or shared-path storage, Ray Tune's experiment in `tune/`. With an object-store URI
(s3://, gs://, ...) Tune's experiment goes to `<URI>/<name>/tune` and the driver's files stay in
`runs/<name>/` on the driver's machine.
"""

from __future__ import annotations

import errno
import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

from racecar_study.study.errors import LaunchError

DEFAULT_ROOT = "runs"
TUNE_NAME = "tune"
STUDY_FILE = "study.json"


@dataclass(frozen=True)
class StudyPaths:
    folder: Path  # driver-side, absolute
    storage: str  # RunConfig(storage_path=...): an absolute path or a URI

    @property
    def spec_file(self) -> Path:
        return self.folder / "spec.yaml"

    @property
    def study_file(self) -> Path:
        return self.folder / STUDY_FILE

    @property
    def optuna_db(self) -> Path:
        return self.folder / "optuna.db"

    @property
    def results(self) -> Path:
        return self.folder / "results.parquet"

    @property
    def tune_path(self) -> str:
        return f"{self.storage.rstrip('/')}/{TUNE_NAME}"

    @property
    def tune_dir(self) -> Path | None:
        """Tune's experiment as a folder on this machine (storage a path or file://PATH); None
        for an object store."""
        scheme = _scheme(self.storage)
        if scheme and scheme != "file":
            return None
        return Path(urlparse(self.storage).path if scheme else self.storage) / TUNE_NAME


def _scheme(storage: str) -> str:
    return urlparse(storage).scheme if "://" in storage else ""


def check_storage(storage: str, address: str | None, shared: bool) -> None:
    """With a cluster (`address`), trials on every node must reach the storage."""
    scheme = _scheme(storage)
    if address is None or (scheme and scheme != "file") or (scheme == "file" and shared):
        return
    raise LaunchError(
        f"--storage: trials on other nodes cannot write to the head-local path '{storage}'; "
        "give an object-store URI (s3://..., gs://...) or file://PATH on a shared filesystem "
        "with --shared-storage"
    )


def study_paths(name: str, storage: str | None, address: str | None, shared: bool) -> StudyPaths:
    """Paths for a new study; a storage that remote trials cannot reach is a LaunchError."""
    storage = storage or DEFAULT_ROOT
    check_storage(storage, address, shared)
    scheme = _scheme(storage)
    if scheme and scheme != "file":
        return StudyPaths(Path(DEFAULT_ROOT, name).resolve(), f"{storage.rstrip('/')}/{name}")
    local = Path(urlparse(storage).path if scheme else storage).expanduser().resolve()
    folder = local / name
    if not folder.resolve().is_relative_to(local):
        raise LaunchError(f"name: '{name}' would escape the storage folder {local}")
    return StudyPaths(folder, f"file://{folder}" if scheme else str(folder))


def cannot_create(folder: Path) -> str | None:
    """Why `folder` could not be made, or None: a probe folder is created and removed in the
    nearest folder that exists on the way to it, so nothing is left behind."""
    folder = Path(folder).expanduser().absolute()
    existing = next(p for p in folder.parents if p.exists())
    try:
        if not existing.is_dir():
            raise NotADirectoryError(errno.ENOTDIR, os.strerror(errno.ENOTDIR))
        os.rmdir(tempfile.mkdtemp(prefix=".racecar-probe-", dir=existing))
    except OSError as e:
        return f"cannot create {folder}: {e.strerror or e}"
    return None


def check_writable(paths: StudyPaths) -> None:
    """The study folder can be made (checked before Ray starts)."""
    if problem := cannot_create(paths.folder):
        raise LaunchError(f"--storage: {problem}")


def write_study_file(paths: StudyPaths, **info) -> None:
    tmp = paths.study_file.with_suffix(".tmp")
    tmp.write_text(json.dumps({"folder": str(paths.folder), "storage": paths.storage, **info}, indent=2))
    os.replace(tmp, paths.study_file)


def read_study_file(folder: str | os.PathLike) -> tuple[StudyPaths, dict]:
    """The paths and launch facts recorded by `run`; a folder that is not a study is a LaunchError."""
    path = Path(folder).expanduser().resolve()
    if not (path / STUDY_FILE).is_file():
        raise LaunchError(
            f"{folder}: not a study folder (no {STUDY_FILE}); start one with `racecar-study run SPEC`"
        )
    info = json.loads((path / STUDY_FILE).read_text())
    if Path(info["folder"]) != path:
        # optuna.db's path is inside the saved searcher state; a moved folder would split them.
        raise LaunchError(f"{folder}: the study was created at {info['folder']}; resume it there")
    return StudyPaths(path, info["storage"]), info
