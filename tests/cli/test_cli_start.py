"""The command line answers --help and usage errors without importing torch (about 3 s here):
each command imports what it needs when it runs."""

import subprocess
import sys

PROBE = """
import sys
from racecar_study.cli.main import build_parser
try:
    build_parser().parse_args(sys.argv[1:])
except SystemExit:
    pass
heavy = [m for m in ("torch", "ray", "mlflow", "optuna", "sklearn") if m in sys.modules]
print("heavy:" + ",".join(heavy))
"""


def _imported(*argv: str) -> str:
    proc = subprocess.run(
        [sys.executable, "-c", PROBE, *argv], capture_output=True, text=True, timeout=60, check=True
    )
    (line,) = [x for x in proc.stdout.splitlines() if x.startswith("heavy:")]
    return line.removeprefix("heavy:")


def test_help_and_parse_errors_import_no_heavy_library():
    assert _imported("--help") == ""
    assert _imported("train", "--help") == ""
    assert _imported("datasets", "--nope") == ""  # argparse's one-line error, exit 2


RESULTS_PROBE = """
import sys
from racecar_study.cli.main import main
rc = main(["results", sys.argv[1]])
heavy = [m for m in ("torch", "ray", "mlflow", "optuna", "sklearn") if m in sys.modules]
print("rc:%d heavy:%s" % (rc, ",".join(heavy)))
"""


def test_results_reads_its_table_without_torch(tmp_path):
    """`results` only reads results.parquet (0.6 s here; it took 3 s importing torch)."""
    from racecar_study.study.results import FIXED, to_table, write_results
    from racecar_study.study.spec import parse_spec

    spec = parse_spec(
        {
            "name": "t",
            "data": {"name": "digits"},
            "model": {"arch": "mlp"},
            "search": {"space": {"train.lr": {"loguniform": [1e-4, 1e-2]}}},
        }
    )

    row = {name: None for name, _ in FIXED}
    row.update(trial_id="a1", status="done", final_metric=0.5, best_metric=0.75, epochs=2)
    row["config.train.lr"] = 1e-3
    write_results(to_table([row], spec), tmp_path / "results.parquet")
    proc = subprocess.run(
        [sys.executable, "-c", RESULTS_PROBE, str(tmp_path)], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stderr
    assert "a1" in proc.stdout and "0.75" in proc.stdout, proc.stdout
    assert proc.stdout.strip().splitlines()[-1] == "rc:0 heavy:", proc.stdout


def _results_probe(folder) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", RESULTS_PROBE, str(folder)], capture_output=True, text=True, timeout=60
    )


def test_a_usage_error_is_told_without_importing_torch(tmp_path):
    """`results` of a folder that is no study: one line, exit 2, and torch is not imported to tell
    that the error is a usage error (the error types were imported to match it: 3 s)."""
    proc = _results_probe(tmp_path / "nothing")
    assert proc.stdout.strip().splitlines()[-1] == "rc:2 heavy:", proc.stdout + proc.stderr
    assert proc.stderr.startswith("racecar-study: error: ") and len(proc.stderr.splitlines()) == 1


INTERRUPT_PROBE = """
import sys
from unittest import mock
from racecar_study.cli import main as cli

# a command that Ctrl-C stops (while it imports torch, say)
with mock.patch.object(cli, "build_parser") as parser:
    parser.return_value.parse_args.return_value.func.side_effect = KeyboardInterrupt
    rc = cli.main(["anything"])
print("rc:%d torch:%s" % (rc, "torch" in sys.modules))
"""


def test_ctrl_c_is_one_line_and_touches_no_module():
    """Ctrl-C during `import torch` left a half-imported torch, and matching the interrupt against
    the usage errors imported it again: an AttributeError traceback instead of 'interrupted'."""
    proc = subprocess.run([sys.executable, "-c", INTERRUPT_PROBE], capture_output=True, text=True, timeout=60)
    assert proc.stdout.strip() == "rc:130 torch:False", proc.stdout + proc.stderr
    assert proc.stderr.strip() == "racecar-study: interrupted"


def test_every_usage_error_names_an_exception_class():
    import importlib

    from racecar_study.cli.errors import USAGE_ERRORS, is_usage_error
    from racecar_study.study.errors import LaunchError

    for module, name in USAGE_ERRORS:
        cls = getattr(importlib.import_module(module), name)
        assert issubclass(cls, Exception) and is_usage_error(cls("x")), (module, name)
    assert is_usage_error(LaunchError("x")) and not is_usage_error(RuntimeError("x"))
