"""Suite-wide settings: one torch thread per test process. Tests are small; on 2 shared cores,
more threads spin rather than compute (measured: 170 s -> 8 s for the model contract tests)."""

import os

import pytest
import torch

os.environ.setdefault("RAY_AUTH_MODE", "disabled")
torch.set_num_threads(1)


class _KilledDriver:
    """Runs `racecar-study ...` as a driver process in its own session and SIGKILLs it, with the
    Ray processes it started, once Tune's saved state holds `after` ended trials."""

    @staticmethod
    def finished(results) -> set[str]:
        import pyarrow.parquet as pq

        try:
            rows = pq.read_table(results).to_pylist()
        except (OSError, ValueError):  # not written yet
            return set()
        return {r["trial_id"] for r in rows if r["status"] in ("done", "stopped")}

    @staticmethod
    def saved(results) -> set[str]:
        """Trials ended in Tune's newest saved state (it saves about every second, runner.TUNE_ENV).
        The kill comes as soon as it holds `after` of them. A fixed 1.5 s after results.parquet
        showed them let a fast host finish all 5 trials of the resume test first, and so did
        waiting for the saved state to catch up with a results.parquet that kept growing."""
        import json

        from racecar_study.study import tune_state
        from racecar_study.study.layout import TUNE_NAME

        newest = tune_state.newest(results.parent / TUNE_NAME)  # the files Tune restores from
        states = [p for p in newest if p.name.startswith("experiment_state-")]
        try:
            trials = [json.loads(t[0]) for t in json.loads(states[0].read_text())["trial_data"]]
            return {t["trial_id"] for t in trials if t["status"] == "TERMINATED"}
        except (IndexError, OSError, ValueError, KeyError):  # none yet, or one being written
            return set()

    def run(self, args: list[str], cwd, results, log_path, after: int = 2, timeout: float = 150) -> set[str]:
        """The trials Tune had saved as ended when the kill was decided."""
        import signal
        import subprocess
        import sys
        import time

        with open(log_path, "w") as log:
            driver = subprocess.Popen(
                [sys.executable, "-m", "racecar_study.cli", *args],
                cwd=cwd,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
            try:
                deadline = time.monotonic() + timeout
                while len(before := self.saved(results)) < after:
                    assert driver.poll() is None, open(log_path).read()[-3000:]
                    assert time.monotonic() < deadline, f"no {after} trials finished in time"
                    time.sleep(0.05)
            finally:
                os.killpg(driver.pid, signal.SIGKILL)  # the driver and the Ray processes it started
                driver.wait()
        return before


def _rr_step_peak_bytes(net, x, y) -> int:
    """Peak of live CPU-allocator bytes during one RR training step (lambda 0.5), from the
    profiler's allocation events in time order. A step before it compiles what it compiles."""
    from torch.profiler import ProfilerActivity, profile

    from racecar_study.core import MethodConfig, build_method

    method = build_method(MethodConfig("rr", lam=0.5))
    method.step(net, x, y).loss.backward()
    net.zero_grad(set_to_none=True)
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        method.step(net, x, y).loss.backward()
    events = [e for e in prof.profiler.kineto_results.events() if e.name() == "[memory]"]
    events.sort(key=lambda e: e.start_ns())
    live = peak = 0
    for e in events:
        live += e.nbytes()
        peak = max(peak, live)
    return peak


@pytest.fixture
def rr_step_peak():
    return _rr_step_peak_bytes


@pytest.fixture
def killed_driver() -> _KilledDriver:
    return _KilledDriver()
