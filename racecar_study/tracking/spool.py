"""The local spool: JSON lines of what could not be sent, one file per trial (`_study` for the parent).

The first line is a header naming the run (tracking URI without passwords, experiment, parent run,
trial id); every further line is one record that `sync_spool` replays. Files that records point at
(pictures, models) are copied under `files/<spool name>/`. Writing never raises: a spool that
cannot be written is counted in `lost`.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import threading
import time
import warnings
from collections import Counter
from pathlib import Path
from typing import Any

SPOOL_DIRNAME = "tracking_spool"
STUDY_SPOOL = "_study"
SUFFIX = ".jsonl"
SYNCED = ".synced"


def safe_name(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", text)[:120] or "_"


class Spool:
    def __init__(self, folder: str | os.PathLike, name: str, header: dict[str, Any]):
        self.folder = Path(folder)
        self.name = safe_name(name)
        self.path = self.folder / f"{self.name}{SUFFIX}"
        self.header = header
        self.lost = 0
        self.written = 0
        self._lock = threading.Lock()

    def files_dir(self) -> Path:
        return self.folder / "files" / self.name

    def keep_copy(self, src: str | os.PathLike, label: str) -> str:
        """Copy a file or folder into the spool; returns the path relative to the spool folder."""
        dst = self.files_dir() / f"{label}-{time.time_ns()}"
        dst.parent.mkdir(parents=True, exist_ok=True)
        if Path(src).is_dir():
            shutil.copytree(src, dst)
        else:
            shutil.copy2(src, dst)
        return str(dst.relative_to(self.folder))

    def write(self, record: dict[str, Any]) -> None:
        try:
            line = json.dumps(record, default=str)
            with self._lock:
                self.folder.mkdir(parents=True, exist_ok=True)
                fresh = not self.path.exists() or self.path.stat().st_size == 0
                with open(self.path, "a") as f:
                    if fresh:
                        f.write(json.dumps({"kind": "header", **self.header}, default=str) + "\n")
                    f.write(line + "\n")
                self.written += 1
        except (OSError, TypeError, ValueError) as e:
            self.lost += 1
            if self.lost == 1:
                warnings.warn(f"tracking spool {self.path} not writable: {e}", RuntimeWarning, stacklevel=2)


def read_spool(path: Path) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """(header, records) of one spool file."""
    lines = [json.loads(x) for x in path.read_text().splitlines() if x.strip()]
    if not lines or lines[0].get("kind") != "header":
        raise ValueError(f"{path}: not a tracking spool (no header line)")
    return lines[0], lines[1:]


def rewrite_spool(path: Path, header: dict[str, Any], records: list[dict[str, Any]]) -> None:
    """Atomically replace a spool file by the records still pending; none left marks it synced."""
    if not records:
        os.replace(path, path.with_name(path.name + SYNCED))
        return
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text("".join(json.dumps(r, default=str) + "\n" for r in [header, *records]))
    os.replace(tmp, path)


def pending_files(folder: Path) -> list[Path]:
    """Spool files with records still to send; the study's own file last (it registers models)."""
    if not folder.is_dir():
        return []
    files = sorted(folder.glob(f"*{SUFFIX}"))
    return sorted(files, key=lambda p: p.stem == STUDY_SPOOL)


def describe(records: list[dict[str, Any]]) -> str:
    """'12 metric values, 1 model, 2 artifact sets, end status' for a gap report line."""
    counts: Counter = Counter()
    for r in records:
        kind = r.get("kind")
        if kind == "metrics":
            counts["metric values"] += len(r.get("rows", []))
        elif kind == "params":
            counts["params"] += len(r.get("params", {}))
        elif kind == "tags":
            counts["tags"] += len(r.get("tags", {}))
        elif kind in ("artifacts", "artifact"):
            counts["artifact sets"] += 1
        elif kind == "model":
            counts["models"] += 1
        elif kind == "register":
            counts["model registration"] += 1
        elif kind == "terminate":
            counts["end status"] += 1
        else:
            counts[str(kind)] += 1
    return ", ".join(
        f"{n} {k}" if k not in ("end status", "model registration") else k for k, n in counts.items()
    )
