"""One driver per study folder.

`run`, `run --overwrite` and `resume` hold an exclusive lock on `<study>/.driver.lock` while they
drive the study, so a second driver cannot restore a running study (Tune would run its trials
twice), write over its results, or delete its folder. The lock is a `flock`: the kernel drops it
when its process ends, however it ends, so a killed driver's study resumes at once. The file keeps
the holder's pid for the message.
"""

from __future__ import annotations

import os
from pathlib import Path

from racecar_study.study.errors import LaunchError

LOCK_NAME = ".driver.lock"

try:
    import fcntl
except ImportError:  # not POSIX: no lock (Ray's multi-node support is Linux's)
    fcntl = None


def _busy(folder: Path, fd: int) -> LaunchError:
    os.lseek(fd, 0, os.SEEK_SET)
    pid = os.read(fd, 32).decode(errors="replace").strip() or "unknown"
    return LaunchError(
        f"{folder}: another racecar-study driver (pid {pid}) is running this study; "
        "wait for it to end or stop it first"
    )


def check_free(folder: Path) -> None:
    """Raise LaunchError if a driver holds the study's lock; creates nothing."""
    path = Path(folder) / LOCK_NAME
    if fcntl is None or not path.is_file():
        return
    fd = os.open(path, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        raise _busy(folder, fd) from None
    finally:
        os.close(fd)  # closing drops a shared lock taken just to look


class StudyLock:
    """`with StudyLock(folder):` holds the study's lock, or raises LaunchError naming the holder."""

    def __init__(self, folder: Path):
        self.folder = Path(folder)
        self._fd: int | None = None

    def __enter__(self) -> StudyLock:
        if fcntl is None:
            return self
        fd = os.open(self.folder / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            error = _busy(self.folder, fd)
            os.close(fd)
            raise error from None
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        self._fd = fd
        return self

    def __exit__(self, *exc) -> None:
        if self._fd is not None:
            os.close(self._fd)  # releases the lock
            self._fd = None
