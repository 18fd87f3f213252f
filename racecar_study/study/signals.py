"""SIGTERM (`kill`, a batch system's time limit) and SIGHUP (a closed terminal) end a run or a
study the way Ctrl-C does, keeping what finished, instead of ending the process on the spot; and a
Ctrl-C that Python lost on the way is not forgotten."""

from __future__ import annotations

import os
import signal
import sys
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


_interrupts: list[int] = []  # SIGINTs seen by `remembered_interrupts`' handler


@contextmanager
def remembered_interrupts() -> Iterator[None]:
    """Ctrl-C raises KeyboardInterrupt as usual, and is remembered: Python drops an exception
    raised inside a weakref callback or __del__ ("Exception ignored in ..."), and a signal handler
    can run there (a Ctrl-C during Tune's start-up imports was lost so, and the study ran on).
    `interrupt_lost()` tells, at a later safe point, that one went missing."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: object) -> None:
        _interrupts.append(signum)
        raise KeyboardInterrupt

    def unraisable(info) -> None:  # the dropped one is remembered: no "Exception ignored" block
        if not (info.exc_type is KeyboardInterrupt and _interrupts):
            hook(info)

    _interrupts.clear()
    previous, hook = signal.signal(signal.SIGINT, handler), sys.unraisablehook
    sys.unraisablehook = unraisable
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
        sys.unraisablehook = hook
        _interrupts.clear()


def interrupt_lost() -> bool:
    """A Ctrl-C reached `remembered_interrupts`' handler, yet the program goes on."""
    return bool(_interrupts)


@contextmanager
def arrived_signals() -> Iterator[set[int]]:
    """The signals that arrived while the body ran (filled in at its end), as CPython notes them
    below their Python handlers (its wakeup fd): a handler's exception that Python dropped (raised
    inside an at-fork hook while `ray.init` starts its processes) still shows here."""
    arrived: set[int] = set()
    if threading.current_thread() is not threading.main_thread():
        yield arrived
        return
    read, write = os.pipe()
    os.set_blocking(read, False)
    os.set_blocking(write, False)
    previous = signal.set_wakeup_fd(write, warn_on_full_buffer=False)
    try:
        yield arrived
    finally:
        signal.set_wakeup_fd(previous)
        try:
            arrived.update(os.read(read, 1024))
        except BlockingIOError:  # none
            pass
        os.close(read)
        os.close(write)
