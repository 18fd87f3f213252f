"""`racecar-study datasets`: list the data sets; `datasets show NAME --opt k=v`: sizes of one view."""

from __future__ import annotations

import argparse
import sys

import yaml

_MAX_CLASS_ROWS = 20


def register(subparsers) -> None:
    p = subparsers.add_parser("datasets", help="list data sets and whether they are available here")
    p.add_argument(
        "--cache-dir", default=None, help="data cache folder (default $RACECAR_CACHE_DIR or .cache/data)"
    )
    p.set_defaults(func=run_list)
    sub = p.add_subparsers(dest="datasets_command", metavar="{show}")
    show = sub.add_parser("show", help="split sizes, input shape and class counts of one view")
    show.add_argument("name", help="data set name, e.g. peak or image_folder:PATH")
    show.add_argument(
        "--opt",
        action="extend",
        nargs="+",
        default=[],
        metavar="KEY=VALUE",
        help="a data set or view option, value in YAML: --opt classes=[0,1] 'transform=[{rotate: 30}]'",
    )
    show.add_argument("--seed", type=int, default=0)
    show.add_argument("--cache-dir", default=argparse.SUPPRESS, help="data cache folder")
    show.add_argument("--no-cache", action="store_true", help="build in memory; read and write no cache")
    show.set_defaults(func=run_show)


def _fail(message: str) -> int:
    print(f"racecar-study: error: {message}", file=sys.stderr)
    return 2


def parse_options(pairs: list[str]) -> dict:
    """{key: YAML value} from ["key=value", ...]; ValueError names a malformed pair."""
    options = {}
    for pair in pairs:
        key, sep, text = pair.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"--opt takes KEY=VALUE, got {pair!r}")
        if key.strip() in options:
            raise ValueError(f"--opt {key.strip()!r} given twice")
        try:
            options[key.strip()] = yaml.safe_load(text)
        except yaml.YAMLError as e:
            raise ValueError(f"--opt {key.strip()}: not valid YAML: {str(e).splitlines()[0]}") from None
    return options


def run_list(args: argparse.Namespace) -> int:
    from racecar_study.data import list_datasets

    rows = [("data set", "size", "available here")]
    for info in list_datasets(args.cache_dir):
        rows.append((info.name, info.size, "yes" if info.available else f"no: {info.reason}"))
    w0, w1 = (max(len(r[i]) for r in rows) for i in range(2))
    for name, size, available in rows:
        print(f"{name:<{w0}}  {size:<{w1}}  {available}")
    return 0


def run_show(args: argparse.Namespace) -> int:
    from racecar_study.data import DataError, load_dataset

    try:
        options = parse_options(args.opt)
        s = load_dataset(
            args.name, seed=args.seed, cache_dir=args.cache_dir, use_cache=not args.no_cache, **options
        )
    except (ValueError, DataError) as e:  # DataError is a ValueError; both are the user's to fix
        return _fail(str(e))
    print(f"{s.name} (seed {args.seed})")
    print(s.description)
    print(f"input shape: {'x'.join(map(str, s.input_shape))}, {s.num_classes} classes")
    counts = {
        split: s.split(split)[1].bincount(minlength=s.num_classes).tolist()
        for split in ("train", "val", "test")
    }
    rows = [("class", "train", "val", "test")]
    for k, name in enumerate(s.class_names[:_MAX_CLASS_ROWS]):
        rows.append((f"{k} {name}", *(str(counts[split][k]) for split in ("train", "val", "test"))))
    if s.num_classes > _MAX_CLASS_ROWS:
        rows.append((f"... {s.num_classes - _MAX_CLASS_ROWS} more", "", "", ""))
    rows.append(("total", *(str(sum(counts[split])) for split in ("train", "val", "test"))))
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    for row in rows:
        print(f"{row[0]:<{widths[0]}}" + "".join(f"  {v:>{w}}" for v, w in zip(row[1:], widths[1:])))
    return 0
