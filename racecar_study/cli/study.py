"""`racecar-study validate | run | resume | results`: studies on Ray Tune (racecar_study.study)."""

from __future__ import annotations

import sys
import time

from racecar_study.cli.argtypes import positive
from racecar_study.cli.errors import UsageError


def _launch_flags(p, new: bool) -> None:
    p.add_argument("--address", help="attach to an existing Ray cluster (HOST:PORT of its head, or auto)")
    p.add_argument(
        "--shared-storage",
        action="store_true",
        help="assert that a file:// --storage path is on a filesystem every node shares",
    )
    p.add_argument("--tracking-uri", help="MLflow tracking server (default: the spec's tracking settings)")
    p.add_argument("--plain", action="store_true", help="plain progress lines even on a terminal")
    if new:
        p.add_argument(
            "--storage", help="study root: a folder (default runs/) or a URI (s3://, gs://, file://)"
        )
        p.add_argument(
            "--smoke", action="store_true", help="<= 2 epochs, <= 4 trials, tiny data: a quick look"
        )
        p.add_argument(
            "--overwrite", action="store_true", help="delete an existing study of the same name first"
        )


def register(sub) -> None:
    p = sub.add_parser("validate", help="check a study spec and print its resolved form")
    p.add_argument("spec", help="study spec (YAML)")
    p.add_argument("--smoke", action="store_true", help="show the spec as --smoke would run it")
    p.set_defaults(func=validate)

    p = sub.add_parser("run", help="run a study on Ray Tune (local, or a cluster with --address)")
    p.add_argument("spec", help="study spec (YAML)")
    _launch_flags(p, new=True)
    p.set_defaults(func=run)

    p = sub.add_parser("resume", help="continue a stopped study where it left off")
    p.add_argument("folder", help="the study folder, e.g. runs/<name>")
    _launch_flags(p, new=False)
    p.set_defaults(func=resume)

    p = sub.add_parser("results", help="the best trials of a study (from its results.parquet)")
    p.add_argument("folder", help="the study folder, e.g. runs/<name>")
    p.add_argument("--top", type=positive(int), default=10, help="how many trials to show (default 10)")
    p.set_defaults(func=results)


def validate(args) -> int:
    from racecar_study.study.netcheck import check_networks
    from racecar_study.study.runner import LaunchOptions, load_tables, resolve_spec
    from racecar_study.study.spec import dump_spec, load_spec

    spec = resolve_spec(load_spec(args.spec), LaunchOptions(smoke=args.smoke))
    check_networks(spec, load_tables(spec, seeds=spec.seeds[:1]))  # the data's shape: one seed's table
    sys.stdout.write(dump_spec(spec))
    return 0


def _console():
    from rich.console import Console

    console = Console()
    # Logs and pipes get rich's 80 columns by default: too narrow for a row of search parameters.
    return console if console.is_terminal else Console(width=160)


def _options(args, **extra):
    from racecar_study.study.progress import ProgressView
    from racecar_study.study.runner import LaunchOptions

    def view(spec):
        return ProgressView(spec, _console(), live=False if args.plain else None)

    return LaunchOptions(
        address=args.address,
        shared_storage=args.shared_storage,
        tracking_uri=args.tracking_uri,
        view_factory=view,
        **extra,
    )


def _report(outcome, started: float) -> int:
    """The summary; exit 130 for an interrupted study (resume it), 1 when no trial finished.
    `started`: perf_counter when the command began (its wall time includes Ray's start-up)."""
    from racecar_study.study.progress import print_summary

    console = _console()
    folder = _shown(outcome.paths.folder)
    print_summary(console, outcome.table, folder)
    shown = _shown(outcome.paths.results)
    if outcome.ran:
        wall = time.perf_counter() - started
        took = f"wall time {wall:.1f} s ({outcome.wall_s:.1f} s of it in Ray Tune's run)"
    else:
        took = f"nothing to resume: all {outcome.total} trials have ended"
    console.print(f"{took}; results in {shown}", highlight=False)
    if outcome.unfinished:
        console.print(
            f"{outcome.unfinished} of {outcome.total} trials did not finish; "
            f"continue with: racecar-study resume {folder}",
            highlight=False,
        )
        return 130
    finished = sum(outcome.counts.get(s, 0) for s in ("done", "stopped"))
    return 0 if finished else 1


def _shown(path) -> str:
    from pathlib import Path

    try:
        return str(Path(path).relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def run(args) -> int:
    started = time.perf_counter()
    with _stoppable():
        from racecar_study.study.runner import run_study
        from racecar_study.study.spec import load_spec

        spec = load_spec(args.spec)
        opts = _options(args, storage=args.storage, smoke=args.smoke, overwrite=args.overwrite)
        return _report(run_study(spec, opts), started)


def resume(args) -> int:
    started = time.perf_counter()
    with _stoppable():
        from racecar_study.study.runner import resume_study

        return _report(resume_study(args.folder, _options(args)), started)


def _stoppable():
    """`kill` and a closed terminal stop the command as Ctrl-C does from its first line on (the
    study's driver hands them to Tune once Ray is up: runner._attached)."""
    from racecar_study.study.signals import raise_interrupt, stop_signals

    return stop_signals(raise_interrupt)


def results(args) -> int:
    from pathlib import Path

    from racecar_study.study.progress import print_summary
    from racecar_study.study.results import read_results

    path = Path(args.folder) / "results.parquet"
    if not path.is_file():
        raise UsageError(f"{args.folder}: no results.parquet (not a study folder, or no trial has finished)")
    try:
        table = read_results(path)
    except (OSError, ValueError) as e:  # pyarrow's ArrowInvalid is a ValueError
        raise UsageError(
            f"{path}: not a readable results table ({str(e).splitlines()[0]}); "
            f"`racecar-study resume {args.folder}` writes it again from Tune's state"
        ) from None
    print_summary(_console(), table, args.folder, k=args.top, browse=False)
    return 0
