"""Node-local scratch folders for checkpoints on their way to Tune's storage.

Tune can end a trial inside `tune.report` and kill its worker there (ASHA stopping it, the study
ending), so a TemporaryDirectory around the report is never cleaned up: each such trial left its
last checkpoint in /tmp. Folders are named by host and PID instead, and every trial that starts
removes those on its host whose process is gone.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import socket
import tempfile
from collections.abc import Iterator
from pathlib import Path

PREFIX = "racecar-ckpt-"


def _host() -> str:
    return re.sub(r"[^A-Za-z0-9.]", "_", socket.gethostname())


def _host_prefix() -> str:
    """The names of this host's folders start so; the PID and a random part follow."""
    return f"{PREFIX}{_host()}-"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


@contextlib.contextmanager
def checkpoint_folder(root: Path | None = None) -> Iterator[Path]:
    """An empty folder named racecar-ckpt-HOST-PID-*, removed on exit (if the process lives)."""
    folder = Path(tempfile.mkdtemp(prefix=f"{_host_prefix()}{os.getpid()}-", dir=root))
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def sweep(root: Path | None = None) -> list[Path]:
    """Remove this host's checkpoint folders whose process has ended; returns them. Folders of
    other hosts (a /tmp shared between containers) and of live processes are left alone."""
    root, prefix = Path(root or tempfile.gettempdir()), _host_prefix()
    gone = []
    for folder in root.glob(f"{prefix}*"):
        pid, sep, _ = folder.name[len(prefix) :].partition("-")
        if sep and pid.isdigit() and not _alive(int(pid)):
            shutil.rmtree(folder, ignore_errors=True)
            gone.append(folder)
    return gone
