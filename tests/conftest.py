"""Suite-wide settings: one torch thread per test process. Tests are small; on 2 shared cores,
more threads spin rather than compute (measured: 170 s -> 8 s for the model contract tests)."""

import os

import pytest
import torch

os.environ.setdefault("RAY_AUTH_MODE", "disabled")
torch.set_num_threads(1)


class _KilledDriver:
    """Runs `racecar-study ...` as a driver process in its own session and SIGKILLs it, with the
    Ray processes it started, once `after` trials have finished (results.parquet)."""

    @staticmethod
    def finished(results) -> set[str]:
        import pyarrow.parquet as pq

        try:
            rows = pq.read_table(results).to_pylist()
        except (OSError, ValueError):  # not written yet
            return set()
        return {r["trial_id"] for r in rows if r["status"] in ("done", "stopped")}

    def run(self, args: list[str], cwd, results, log_path, after: int = 2, timeout: float = 150) -> set[str]:
        """The trials finished when the kill was decided."""
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
                while len(before := self.finished(results)) < after:
                    assert driver.poll() is None, open(log_path).read()[-3000:]
                    assert time.monotonic() < deadline, f"no {after} trials finished in time"
                    time.sleep(0.1)
                time.sleep(1.5)  # Tune snapshots its state every second (runner.TUNE_ENV)
            finally:
                os.killpg(driver.pid, signal.SIGKILL)  # the driver and the Ray processes it started
                driver.wait()
        return before


@pytest.fixture
def killed_driver() -> _KilledDriver:
    return _KilledDriver()
