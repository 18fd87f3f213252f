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
