"""A tracking client that never raises: each call either reaches the server or lands in the spool.

After a failure the link stays offline for a while (15 s, doubling to 5 min) and spools directly,
so a lost server costs one failed request, not one per epoch.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from racecar_study.tracking.spool import Spool

FIRST_BACKOFF_S = 15.0
MAX_BACKOFF_S = 300.0


def is_outage(err: BaseException) -> bool:
    """A server or store that did not answer (vs. one that answered with an error for this call)."""
    from mlflow.exceptions import MlflowException

    if not isinstance(err, MlflowException):
        return True
    return "API request to" in str(err) or "database is locked" in str(err)


def short_reason(err: BaseException) -> str:
    text = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
    return text[:200]


class Link:
    def __init__(self, client, spool: Spool):
        self.client = client
        self.spool = spool
        self.errors: list[str] = []
        self._offline_until = 0.0
        self._backoff = FIRST_BACKOFF_S
        self._lock = threading.Lock()

    @property
    def online(self) -> bool:
        return time.monotonic() >= self._offline_until

    def go_offline(self, err: BaseException) -> None:
        with self._lock:
            self.errors.append(short_reason(err))
            self._offline_until = time.monotonic() + self._backoff
            self._backoff = min(self._backoff * 2, MAX_BACKOFF_S)

    def try_call(self, call: Callable[[], Any]) -> bool:
        """Run `call` unless offline; True if it succeeded. Never raises."""
        if not self.online:
            return False
        try:
            call()
        except Exception as e:  # any failure: training must go on, the caller keeps the data
            if is_outage(e):
                self.go_offline(e)
            else:
                with self._lock:
                    self.errors.append(short_reason(e))
            return False
        with self._lock:
            self._backoff = FIRST_BACKOFF_S
        return True

    def send(self, record: dict[str, Any], call: Callable[[], Any]) -> bool:
        """Run `call`; on failure, or while offline, spool `record`. True if sent."""
        if self.try_call(call):
            return True
        self.spool.write(record)
        return False
