"""Metric batches sent from a background thread, so that the training loop never waits on the network.

Rows submitted while a request is in flight, or within `min_interval_s` of the last one, are
coalesced into the next `log_batch` (at most 1000 metrics per request).
"""

from __future__ import annotations

import threading
import time

from racecar_study.tracking.link import Link
from racecar_study.tracking.params import BATCH_METRICS, chunks


class MetricSender:
    def __init__(self, link: Link, run_id: str | None, min_interval_s: float = 5.0):
        self.link, self.run_id, self.min_interval_s = link, run_id, min_interval_s
        self._pending: list[list] = []
        self._cv = threading.Condition()
        self._busy = False
        self._flush = False
        self._closed = False
        self._last_send = time.monotonic()  # first request after min_interval_s, not on epoch 1
        self._thread: threading.Thread | None = None

    def submit(self, rows: list[list]) -> None:
        if not rows:
            return
        with self._cv:
            idle = not self._pending  # otherwise the thread already sleeps until the next send is due
            self._pending.extend(rows)
            if self._thread is None:
                self._thread = threading.Thread(target=self._loop, name="racecar-mlflow-sender", daemon=True)
                self._thread.start()
            elif idle:
                self._cv.notify()

    def request_flush(self) -> None:
        """Send what is pending now, without waiting for it (the end of training)."""
        with self._cv:
            if self._pending:
                self._last_send = float("-inf")
                self._cv.notify()

    def flush(self, timeout: float) -> bool:
        """Send everything submitted so far; after `timeout` seconds spool what is still waiting."""
        deadline = time.monotonic() + timeout
        with self._cv:
            self._flush = True
            self._cv.notify()
            while (self._pending or self._busy) and time.monotonic() < deadline:
                self._cv.wait(min(0.05, max(0.0, deadline - time.monotonic())))
            self._flush = False
            left, self._pending = self._pending, []
        if left:
            self._spool(left)
        return not left

    def close(self, timeout: float) -> bool:
        done = self.flush(timeout)
        with self._cv:
            self._closed = True
            self._cv.notify()
        return done

    def _loop(self) -> None:
        while True:
            with self._cv:
                while not self._closed:
                    wait = self._last_send + self.min_interval_s - time.monotonic()
                    if self._pending and (self._flush or wait <= 0):
                        break
                    self._cv.wait(wait if self._pending and wait > 0 else None)
                if self._closed and not self._pending:
                    return
                rows, self._pending = self._pending, []
                self._busy = True
            try:
                self._send(rows)
            finally:
                with self._cv:
                    self._busy = False
                    self._last_send = time.monotonic()
                    self._cv.notify_all()

    def _send(self, rows: list[list]) -> None:
        from mlflow.entities import Metric

        for part in chunks(rows, BATCH_METRICS):
            record = {"kind": "metrics", "rows": list(part)}
            if self.run_id is None:
                self.link.spool.write(record)
                continue
            metrics = [Metric(key=k, value=v, timestamp=ts, step=s) for k, v, ts, s in part]
            self.link.send(record, lambda m=metrics: self.link.client.log_batch(self.run_id, metrics=m))

    def _spool(self, rows: list[list]) -> None:
        for part in chunks(rows, BATCH_METRICS):
            self.link.spool.write({"kind": "metrics", "rows": list(part)})
