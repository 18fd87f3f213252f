"""A stop signal whose exception Python drops (raised inside an at-fork hook or a __del__, where it
prints 'Exception ignored' and carries on) still stops a study that is starting Ray."""

import subprocess
import sys

PROBE = """
import os, signal, sys, time
import ray
from racecar_study.study import cluster

class Collected:
    def __del__(self):  # SIGTERM while Python runs this: the handler's SystemExit is dropped
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(1)

def init(**kwargs):  # as ray.init: its own SIGTERM handler exits; the signal comes in a hook
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(signum))
    Collected()

shut = []
ray.init, ray.shutdown = init, lambda: shut.append(1)
try:
    cluster.connect(None)
    print("went on")
except KeyboardInterrupt:
    print("stopped; shut down %d" % len(shut))
"""


def test_a_sigterm_dropped_while_ray_starts_stops_the_launch():
    proc = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, timeout=120)
    assert proc.stdout.strip() == "stopped; shut down 1", proc.stdout + proc.stderr
    assert "SystemExit: 15" in proc.stderr  # Python did drop it


STARTING = """
import os, signal, sys, time
from racecar_study.study import runner
from racecar_study.cli.main import main

def run_study(spec, opts):  # SIGTERM (a batch system's time limit) while the command starts
    os.kill(os.getpid(), signal.SIGTERM)
    time.sleep(5)

runner.run_study = run_study
print("rc:%d" % main(["run", sys.argv[1]]))
"""


def test_sigterm_stops_a_starting_study_as_ctrl_c_does(tmp_path, capsys, monkeypatch):
    """Before Ray: SIGTERM killed the command silently (exit -15). While `ray.init` runs: Ray's
    own handler ended it with exit 15 and no word. Both are now 'interrupted', exit 130."""
    from study_helpers import run_cli, spec_dict, write_spec

    from racecar_study.study import cluster

    spec = write_spec(tmp_path, spec_dict())
    proc = subprocess.run(
        [sys.executable, "-c", STARTING, str(spec)], capture_output=True, text=True, timeout=120
    )
    assert proc.stdout.strip() == "rc:130" and proc.stderr.strip() == "racecar-study: interrupted", proc

    def ray_exits(address):  # what ray.init's SIGTERM handler does
        sys.exit(15)

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(cluster, "connect", ray_exits)
    rc, _, err = run_cli(capsys, "run", str(spec), "--plain")
    assert rc == 130 and err.strip() == "racecar-study: interrupted", err
    assert not (tmp_path / "runs" / "tiny").exists()
