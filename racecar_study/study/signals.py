"""SIGTERM (`kill`, a batch system's time limit) and SIGHUP (a closed terminal) end a run or a
study the way Ctrl-C does, keeping what finished, instead of ending the process on the spot."""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

STOP_SIGNALS = (signal.SIGTERM, signal.SIGHUP)


@contextmanager
def stop_signals(handler: Callable[[int, object], None]) -> Iterator[None]:
    """While the body runs, the stop signals call `handler`; their previous handlers come back
    after. Signals can be set only in the main thread: elsewhere this does nothing."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {sig: signal.signal(sig, handler) for sig in STOP_SIGNALS}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def raise_interrupt(signum: int, frame: object) -> None:
    """As Ctrl-C in a plain Python loop (`train`)."""
    raise KeyboardInterrupt


def send_ctrl_c(signum: int, frame: object) -> None:
    """Ctrl-C to this process, for whoever handles SIGINT (Ray Tune, in a study's driver)."""
    os.kill(os.getpid(), signal.SIGINT)
