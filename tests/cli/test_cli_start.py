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
