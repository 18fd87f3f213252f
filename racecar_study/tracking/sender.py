"""Metric batches sent from a background thread, so that the training loop never waits on the network.

The training thread only hands over epochs, `(step, timestamp_ms, metrics)` with the metrics dict
as reported: no rows are built and no thread is woken per epoch (issue 5: on a small net each
microsecond of GIL time in the loop shows). The sender thread wakes on its own every
`min_interval_s`, builds the rows of everything handed over since (metric_rows: numeric values,
`epoch` left out) and sends them in `log_batch` requests of at most 1000 metrics. A flush or close
wakes it at once; with `min_interval_s` <= 0 every hand-over does.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Collection, Mapping
from typing import Any

from racecar_study.tracking.link import Link
from racecar_study.tracking.params import BATCH_METRICS, chunks, metric_entities, metric_rows

Epoch = tuple[int, int, Mapping[str, Any]]  # (step, timestamp_ms, metrics)


def epoch_rows(epochs: list[Epoch]) -> list[list]:
    """[key, value, timestamp_ms, step] rows of the epochs, in order."""
    return [row for step, ts, metrics in epochs for row in metric_rows(metrics, step, ts)]


class MetricSender:
    def __init__(self, link: Link, run_id: str | None, min_interval_s: float = 5.0):
        self.link, self.run_id, self.min_interval_s = link, run_id, min_interval_s
        self._pending: list[Epoch] = []
        self._cv = threading.Condition()
        self._busy = False
        self._flush = False
        self._closed = False
        self._last_send = time.monotonic()  # first request after min_interval_s, not on epoch 1
        # Started here, at trial setup, not by the first epoch inside the training loop.
        self._thread = threading.Thread(target=self._loop, name="racecar-mlflow-sender", daemon=True)
        self._thread.start()

    def submit(self, epochs: list[Epoch]) -> None:
        if not epochs:
            return
        with self._cv:
            self._pending.extend(epochs)
            if self.min_interval_s <= 0:
                self._cv.notify()

    def discard_steps(self, steps: Collection[int]) -> int:
        """Drop pending epochs whose step is in `steps` (already logged); returns how many."""
        with self._cv:
            keep = [e for e in self._pending if e[0] not in steps]
            dropped, self._pending = len(self._pending) - len(keep), keep
        return dropped

    def pending(self) -> list[Epoch]:
        with self._cv:
            return list(self._pending)

    def request_flush(self) -> None:
        """Send what is pending now, without waiting for it."""
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
            self._spool(epoch_rows(left))
        return not left

    def close(self, timeout: float) -> bool:
        done = self.flush(timeout)
        with self._cv:
            self._closed = True
            self._cv.notify()
        return done

    def _wait_s(self) -> float | None:
        """How long the thread sleeps before it looks again (under the lock); None: until notified."""
        if self.min_interval_s <= 0:
            return None if not self._pending else 0.0
        due = self._last_send + self.min_interval_s - time.monotonic()
        return due if self._pending else self.min_interval_s

    def _loop(self) -> None:
        while True:
            with self._cv:
                while not self._closed:
                    wait = self._wait_s()
                    if self._pending and (self._flush or wait <= 0):
                        break
                    self._cv.wait(wait)
                if self._closed and not self._pending:
                    return
                epochs, self._pending = self._pending, []
                self._busy = True
            try:
                self._send(epoch_rows(epochs))
            finally:
                with self._cv:
                    self._busy = False
                    self._last_send = time.monotonic()
                    self._cv.notify_all()

    def _send(self, rows: list[list]) -> None:
        for part in chunks(rows, BATCH_METRICS):
            record = {"kind": "metrics", "rows": list(part)}
            if self.run_id is None:
                self.link.spool.write(record)
                continue
            metrics = metric_entities(part)
            self.link.send(record, lambda m=metrics: self.link.client.log_batch(self.run_id, metrics=m))

    def _spool(self, rows: list[list]) -> None:
        for part in chunks(rows, BATCH_METRICS):
            self.link.spool.write({"kind": "metrics", "rows": list(part)})
