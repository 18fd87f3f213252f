"""`racecar-study ui` (a local MLflow server on the study store) and `racecar-study sync` (re-send a
study's spooled tracking records)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from racecar_study.cli.errors import UsageError

START_TIMEOUT_S = 180.0


def _port(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a port number: {text!r}") from None
    if not 1 <= v <= 65535:
        raise argparse.ArgumentTypeError(f"port must be in 1..65535, got {v}")
    return v


def register(sub) -> None:
    p = sub.add_parser(
        "ui", help="start a local MLflow server (UI + API) on the study store; Ctrl-C stops it"
    )
    p.add_argument("--port", type=_port, default=None, help="port on 127.0.0.1 (default: a free one)")
    p.add_argument(
        "--tracking-uri",
        default=None,
        help="backend store (default: $MLFLOW_TRACKING_URI or sqlite:///<repo>/mlflow/store/mlflow.db)",
    )
    p.set_defaults(func=ui)

    p = sub.add_parser("sync", help="re-send what a study could not log to MLflow (its tracking spool)")
    p.add_argument("study_dir", type=Path, metavar="STUDY_DIR", help="the study folder, e.g. runs/<name>")
    p.add_argument("--tracking-uri", default=None, help="send there instead of the URI the spool names")
    p.set_defaults(func=sync)


def ui(args) -> int:
    from racecar_study.tracking.server import free_port, port_in_use, start_server, stop_server, wait_healthy
    from racecar_study.tracking.uris import is_http, redact_uri, resolve_tracking_uri

    backend = resolve_tracking_uri(args.tracking_uri)
    if is_http(backend):
        raise UsageError(f"{redact_uri(backend)} is already a server: open it in a browser")
    if backend.startswith("file:") or "://" not in backend:
        raise UsageError(f"--tracking-uri {backend}: give a database URI such as sqlite:///path/mlflow.db")
    port = args.port or free_port()
    if port_in_use(port):
        raise UsageError(f"port {port} on 127.0.0.1 is in use; pick another with --port")
    url = f"http://127.0.0.1:{port}"
    proc = start_server(port, backend)
    try:
        print(f"starting MLflow on {url} (store {redact_uri(backend)}) ...", flush=True)
        if not wait_healthy(url, proc, timeout=START_TIMEOUT_S):
            raise UsageError(f"mlflow server did not start on {url} (exit code {proc.poll()})")
        print(f"MLflow UI: {url}  (Ctrl-C to stop)", flush=True)
        return 0 if proc.wait() == 0 else 1  # the server stopped by itself
    except KeyboardInterrupt:
        return 0
    finally:
        stop_server(proc)


def sync(args) -> int:
    from racecar_study.tracking.errors import TrackingUnavailable
    from racecar_study.tracking.spool import SPOOL_DIRNAME
    from racecar_study.tracking.sync import sync_spool

    if not args.study_dir.is_dir():
        raise UsageError(f"study folder not found: {args.study_dir}")
    if not (args.study_dir / SPOOL_DIRNAME).is_dir():
        print(f"nothing to sync: {args.study_dir} has no {SPOOL_DIRNAME}/")
        return 0
    try:
        result = sync_spool(args.study_dir, args.tracking_uri)
    except TrackingUnavailable as e:
        raise UsageError(str(e)) from None
    for note in result.notes:
        print(f"note: {note}")
    print(f"synced {result.records} records from {result.files} spool files")
    for line in result.failed:
        print(f"not synced: {line}", file=sys.stderr)
    return 0 if result.complete else 1
