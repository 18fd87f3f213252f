"""`racecar-study train`: one model, in-process (no Ray), outputs to a folder."""

from __future__ import annotations

import sys
from pathlib import Path

import yaml

from racecar_study.cli.argtypes import non_negative, positive
from racecar_study.cli.errors import UsageError


def _key_values(items: list[str], flag: str) -> dict:
    out = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise UsageError(f"{flag} takes KEY=VALUE, got '{item}'")
        out[key] = yaml.safe_load(value)
    return out


def register(sub) -> None:
    p = sub.add_parser("train", help="train one model in-process and write its outputs to --out")
    p.add_argument("--data", help="data set name (see `racecar-study datasets`); required unless --resume")
    p.add_argument("--data-opt", action="append", metavar="KEY=VALUE", help="data set / task-view option")
    p.add_argument("--arch", help="architecture (see `racecar-study archs`); required unless --resume")
    p.add_argument("--model-opt", action="append", metavar="KEY=VALUE", help="architecture option")
    p.add_argument("--method", default="std", help="std | rr | ort | pre")
    p.add_argument(
        "--lam", type=non_negative(), default=None, help="racecar lambda (rr needs one; 0 trains as std)"
    )
    p.add_argument(
        "--lam-ratio",
        type=positive(float),
        help="lambda over depth: state m (0 = the input) gets lam * ratio**m",
    )
    p.add_argument("--reduction", choices=["sum", "mean"], default="sum")
    p.add_argument("--ort-weight", type=non_negative(), default=0.1)
    p.add_argument("--pre-epochs", type=int, default=10)
    p.add_argument("--epochs", type=positive(int), default=10)
    p.add_argument("--batch-size", type=positive(int), default=100)
    p.add_argument("--lr", type=positive(float), default=1e-3)
    p.add_argument("--optimizer", choices=["adam", "adamw", "sgd"], default="adam")
    p.add_argument("--schedule", choices=["none", "cosine", "step"], default="none")
    p.add_argument("--weight-decay", type=non_negative(), default=0.0)
    p.add_argument("--device", default="auto")
    p.add_argument("--precision", choices=["fp32", "bf16"], default="fp32")
    p.add_argument("--seed", type=non_negative(int), default=0)
    p.add_argument("--out", required=True, type=Path, help="output folder")
    p.add_argument("--overwrite", action="store_true", help="replace a previous run's outputs in --out")
    p.add_argument(
        "--resume",
        action="store_true",
        help="continue the unfinished run in --out from its checkpoint.pt, with its config.yaml's settings",
    )
    p.add_argument("--quiet", action="store_true")
    # what --resume takes from config.yaml instead: any of these given is a usage error
    fixed = [a for a in p._actions if a.dest not in ("help", "out", "resume", "quiet")]
    p.set_defaults(func=run, run_flags={a.option_strings[0]: (a.dest, a.default) for a in fixed})


def run(args) -> int:
    if args.resume:
        return resume(args)
    missing = [flag for flag in ("--data", "--arch") if getattr(args, flag[2:]) is None]
    if missing:
        raise UsageError(f"the following arguments are required: {', '.join(missing)} (or --resume)")
    from racecar_study.core.methods import method_class, method_names
    from racecar_study.study.experiment import previous_outputs, remove_outputs, train_to_dir
    from racecar_study.study.spec import LAM_HINT, parse_spec

    if args.lam is None and args.method in method_names() and method_class(args.method).weighed_by_lam:
        raise UsageError(f"--lam: --method {args.method} needs a lambda, or it trains as std ({LAM_HINT})")

    raw = {
        "name": args.out.name or "train",
        "data": {"name": args.data, **_key_values(args.data_opt, "--data-opt")},
        "model": {"arch": args.arch, **_key_values(args.model_opt, "--model-opt")},
        "method": {
            "name": args.method,
            "lam": args.lam or 0.0,
            "lam_ratio": args.lam_ratio,
            "reduction": args.reduction,
            "ort_weight": args.ort_weight,
            "pre_epochs": args.pre_epochs,
        },
        "train": {
            "epochs": args.epochs,
            "batch_size": args.batch_size,
            "lr": args.lr,
            "optimizer": args.optimizer,
            "schedule": args.schedule,
            "weight_decay": args.weight_decay,
            "device": args.device,
            "precision": args.precision,
        },
        "seeds": [args.seed],
        "tracking": {"enabled": False},
    }
    raw["name"] = "".join(c if c.isalnum() or c in "_.-" else "_" for c in raw["name"]).lstrip(".") or "train"
    spec = parse_spec(raw, "flags")
    if args.out.exists() and not args.out.is_dir():
        raise UsageError(f"--out {args.out} exists and is not a folder")
    from racecar_study.study.layout import cannot_create

    if not args.out.exists() and (problem := cannot_create(args.out)):
        raise UsageError(f"--out: {problem}")
    try:
        from racecar_study.core.trainer import resolve_device

        resolve_device(args.device)
    except (ValueError, RuntimeError) as e:
        raise UsageError(f"--device: {e}") from None
    if args.out.is_dir() and (found := previous_outputs(args.out)):
        if not args.overwrite:
            raise UsageError(
                f"--out {args.out} holds a previous run ({', '.join(found)}); "
                "pass --overwrite to replace it or choose another folder"
            )
        remove_outputs(args.out)
    return _finish(args, lambda progress: train_to_dir(spec, args.seed, args.out, progress), args.epochs)


def resume(args) -> int:
    """`train --resume --out DIR`: the run in DIR continues from its checkpoint."""
    from racecar_study.study.experiment import previous_outputs, resume_in_dir, saved_run

    given = [flag for flag, (dest, default) in args.run_flags.items() if getattr(args, dest) != default]
    if given:
        drop = ", ".join(given)
        raise UsageError(f"--resume takes the run's settings from --out's config.yaml; drop {drop}")
    found = previous_outputs(args.out) if args.out.is_dir() else []
    if "model.pt" in found:
        raise UsageError(f"--resume: the run in {args.out} has ended (model.pt is there); nothing to resume")
    if "config.yaml" not in found or "checkpoint.pt" not in found:
        raise UsageError(
            f"--resume: {args.out} holds no run to resume (it needs config.yaml and checkpoint.pt; "
            f"found {', '.join(found) or 'neither'})"
        )
    epochs = saved_run(args.out)[0].train.epochs
    return _finish(args, lambda progress: resume_in_dir(args.out, progress), epochs)


def _finish(args, train, epochs: int) -> int:
    """Train with progress lines; report an interruption, a divergence or the final metrics."""
    from racecar_study.core.callbacks import Progress
    from racecar_study.study.experiment import Interrupted, previous_outputs
    from racecar_study.study.signals import raise_interrupt, stop_signals

    progress = None if args.quiet else Progress(every=max(1, epochs // 10))
    try:
        with stop_signals(raise_interrupt):  # kill and a closed terminal stop as Ctrl-C does
            run_ = train(progress)
    except Interrupted as stop:
        done = len(stop.run.trainer.history)
        kept = sorted(previous_outputs(args.out))
        when = "" if stop.checkpoint_epoch is None else f" (checkpoint of epoch {stop.checkpoint_epoch})"
        print(
            f"racecar-study: interrupted after {done} of {epochs} epochs; "
            f"{', '.join(kept) or 'nothing'} in {args.out}{when}; continue with --resume --out {args.out}",
            file=sys.stderr,
        )
        return 130
    last = run_.trainer.history[-1]
    if run_.trainer.diverged:
        print(
            f"racecar-study: diverged: train_loss is {last['train_loss']} at epoch {run_.trainer.epoch}; "
            f"{', '.join(sorted(previous_outputs(args.out)))} in {args.out}, no SVD or pictures",
            file=sys.stderr,
        )
        return 1
    shown = ", ".join(f"{k}={last[k]:.4g}" for k in ("train_acc", "val_acc", "reg_loss") if k in last)
    print(f"done: {shown}; outputs in {args.out}")
    return 0
