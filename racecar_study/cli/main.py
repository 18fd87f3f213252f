"""`racecar-study`: one entry point, one module per command group (each has `register`)."""

from __future__ import annotations

import argparse
import importlib
import sys

from racecar_study.cli.errors import is_usage_error

COMMAND_MODULES = ["train", "datasets", "archs", "study", "tracking"]


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line, exit 2 (argparse would print the usage block too)
        self.exit(2, f"racecar-study: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="racecar-study", description="Racecar-training studies: train, search, track.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(f"racecar_study.cli.{name}")
        except ModuleNotFoundError as e:
            if e.name == f"racecar_study.cli.{name}":
                continue  # a command group not built yet
            raise
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("racecar-study: interrupted", file=sys.stderr)
        return 130
    except Exception as e:
        if not is_usage_error(e):
            raise
        print(f"racecar-study: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
