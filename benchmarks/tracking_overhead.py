"""Tracking on vs off for one peak_mlp trial (rr, 50 epochs, same seed): does MLflow slow training?

Repeats in ABBA order (off on, on off, ...) after one untimed warm-up pair, so that drift in the
machine's load cancels out. "fit" is the training loop with the tracking callback: per-epoch
metrics handed to the background sender (a dict copy per epoch; rows are built when sent, at most
every 5 s, so a 0.3 s fit sends nothing), the last batch sent when training ends. "hooks" is the
part of "fit" the training thread spent inside the callback (the rest of any difference is the
sender thread and a local server competing for the CPU). "setup" (child run, params) and "final"
(pictures, model upload, ending the run; measured on the first 3 repeats, the others just close
the run) are fixed per-trial costs, reported apart. Prints one JSON object:
"ratio" = median(on) / median(off), "ratio_paired_median" = median of per-pair ratios (sturdier on
a shared machine), "ratio_of_minima" = the least-disturbed runs.

`--path trainable` measures the same trial through the study trainable's code instead: a SeedGroup
built from a StudySpec (experiment.build_run, one seed), stepped one epoch at a time, with the
study's tracking hooks (study/tracking_hooks.py: child run, per-report metrics with the report's
timestamp, the best weights kept; nothing is sent at ASHA rungs, the driver logs what a stopped
trial held from Tune's result.json, which is not timed here) on or no hooks at all; `tune.report`
itself (Ray) is left out.

    python benchmarks/tracking_overhead.py [--store server|sqlite] [--repeats 21] [--epochs 50] [--threads 1]
        [--path loop|trainable]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import torch

from racecar_study.core import Callback, MethodConfig, TrainConfig, Trainer, build_method
from racecar_study.data import load_dataset
from racecar_study.models import build_model
from racecar_study.study.spec import StudySpec
from racecar_study.tracking import StudyTracking, trial_callback
from racecar_study.tracking.server import free_port, start_server, stop_server, wait_healthy


class _Timed(Callback):
    """Delegates to the tracking callback and adds up the time the training thread spends in it."""

    def __init__(self, inner):
        self.inner, self.seconds = inner, 0.0

    def _call(self, name, *args):
        t = time.perf_counter()
        getattr(self.inner, name)(*args)
        self.seconds += time.perf_counter() - t

    def on_fit_start(self, trainer):
        self._call("on_fit_start", trainer)

    def on_epoch_end(self, trainer, metrics):
        self._call("on_epoch_end", trainer, metrics)

    def on_fit_end(self, trainer):
        self._call("on_fit_end", trainer)


FINALS = 3  # repeats that also log pictures and the model (seconds each); the others just close


def _trainer(splits, epochs: int, callbacks) -> Trainer:
    torch.manual_seed(0)
    net = build_model("peak_mlp", splits.input_shape, splits.num_classes)
    cfg = TrainConfig(epochs=epochs, batch_size=100, lr=1e-4, device="cpu", seed=0)
    return Trainer(net, build_method(MethodConfig(name="rr", lam=1e-6)), cfg, list(callbacks))


def _off(splits, epochs):
    tr = _trainer(splits, epochs, [])
    t = time.perf_counter()
    tr.fit((splits.x_train, splits.y_train), (splits.x_test, splits.y_test))
    return time.perf_counter() - t, tr.history[-1]["train_loss"]


def _on(splits, epochs, ctx, i, final: bool):
    t = time.perf_counter()
    cb = trial_callback(ctx, f"t{i}", f"trial_{i}", {"train": {"epochs": epochs}, "method": {"lam": 1e-6}})
    setup = time.perf_counter() - t
    timed = _Timed(cb)
    tr = _trainer(splits, epochs, [timed])
    t = time.perf_counter()
    tr.fit((splits.x_train, splits.y_train), (splits.x_test, splits.y_test))
    fit = time.perf_counter() - t
    t = time.perf_counter()
    if final:
        cb.log_final(tr.net, tr.net.state_dict(), splits.input_shape, splits.x_train[:8])
    else:
        cb.close()
    final = time.perf_counter() - t
    return fit, setup, final, timed.seconds, tr.history[-1]["train_loss"], cb.gap_report()


def _study_spec(epochs: int, uri: str) -> StudySpec:
    return StudySpec.model_validate(
        {
            "name": "bench",
            "data": {"name": "peak"},
            "model": {"arch": "peak_mlp"},
            "method": {"name": "rr", "lam": 1e-6},
            "train": {"epochs": epochs, "batch_size": 100, "lr": 1e-4, "device": "cpu"},
            "scheduler": {"kind": "asha", "grace_period": 1, "reduction_factor": 3},
            "tracking": {"tracking_uri": uri},
        }
    )


def _group(spec: StudySpec, splits):
    from racecar_study.study.experiment import build_run
    from racecar_study.study.seeds import SeedGroup

    return SeedGroup([build_run(spec, s, splits=splits) for s in spec.seeds], spec.metric)


def _trainable_off(spec, splits):
    group = _group(spec, splits)
    t = time.perf_counter()
    while not group.done:
        group.step()
    return time.perf_counter() - t, group.runs[0].trainer.history[-1]["train_loss"]


def _trainable_on(spec, splits, ctx, i, final: bool):
    from racecar_study.study.hooks import TrialInfo
    from racecar_study.study.tracking_hooks import CONTEXT_KEY, TrackingTrial

    group = _group(spec, splits)
    hook = TrackingTrial()
    run0 = group.runs[0]
    info = TrialInfo(f"t{i}", f"trial_{i}", spec, {}, {CONTEXT_KEY: ctx}, False, "node", "host", run0)
    t = time.perf_counter()
    extra = hook.on_trial_start(info)
    setup = time.perf_counter() - t
    inside = 0.0
    t = time.perf_counter()
    while not group.done:
        metrics = {**group.step(), **extra}
        h = time.perf_counter()
        hook.on_report(metrics, None)
        inside += time.perf_counter() - h
    fit = time.perf_counter() - t
    t = time.perf_counter()
    if final:
        hook.on_trial_end(metrics)
    else:
        hook.cb.close()
    final_s = time.perf_counter() - t
    loss = group.runs[0].trainer.history[-1]["train_loss"]
    return fit, setup, final_s, inside, loss, hook.cb.gap_report()


def run(store: str, repeats: int, epochs: int, path: str = "loop") -> dict:
    splits = load_dataset("peak")
    with tempfile.TemporaryDirectory(prefix="racecar-bench-") as tmp:
        root = Path(tmp)
        backend = f"sqlite:///{root / 'mlflow.db'}"
        proc = None
        uri = backend
        if store == "server":
            port = free_port()
            proc = start_server(port, backend, root / "artifacts", log_path=root / "server.log")
            uri = f"http://127.0.0.1:{port}"
            if not wait_healthy(uri, proc, timeout=180):
                raise SystemExit(f"mlflow server did not start: {(root / 'server.log').read_text()[-2000:]}")
        try:
            spec = StudySpec.model_validate(
                {
                    "name": "bench",
                    "data": {"name": "peak"},
                    "model": {"arch": "peak_mlp"},
                    "tracking": {"tracking_uri": uri},
                }
            )
            (root / "study").mkdir()
            tracking = StudyTracking.open(spec, root / "study")
            ctx = tracking.trial_context()
            off_fn, on_fn = _off, _on
            if path == "trainable":
                from racecar_study.study.tracking_hooks import MIN_INTERVAL_S

                ctx = {**ctx, "min_interval_s": MIN_INTERVAL_S}  # what a study's trials get
                study_spec = _study_spec(epochs, uri)

                def off_fn(splits, epochs):
                    return _trainable_off(study_spec, splits)

                def on_fn(splits, epochs, ctx, i, final):
                    return _trainable_on(study_spec, splits, ctx, i, final)

            off_fn(splits, epochs)
            on_fn(splits, epochs, ctx, "warmup", final=True)
            off, on, setup, final, hooks, same, gaps = [], [], [], [], [], True, []
            for i in range(repeats):
                if i % 2:  # ABBA order: drift in the machine's load cancels out
                    t_on, t_setup, t_final, t_hooks, loss_on, gap = on_fn(splits, epochs, ctx, i, i < FINALS)
                    t_off, loss_off = off_fn(splits, epochs)
                else:
                    t_off, loss_off = off_fn(splits, epochs)
                    t_on, t_setup, t_final, t_hooks, loss_on, gap = on_fn(splits, epochs, ctx, i, i < FINALS)
                off.append(t_off)
                on.append(t_on)
                setup.append(t_setup)
                if i < FINALS:
                    final.append(t_final)
                hooks.append(t_hooks)
                same &= loss_on == loss_off
                gaps += gap
            tracking.finish(None, None)
            gaps += tracking.gap_report()
        finally:
            if proc is not None:
                stop_server(proc)
    med = statistics.median
    return {
        "benchmark": "tracking_overhead",
        "path": path,
        "model": "peak_mlp",
        "method": "rr",
        "epochs": epochs,
        "store": store,
        "repeats": repeats,
        "torch_threads": torch.get_num_threads(),
        "fit_off_s": [round(x, 4) for x in off],
        "fit_on_s": [round(x, 4) for x in on],
        "fit_off_median_s": round(med(off), 4),
        "fit_on_median_s": round(med(on), 4),
        "ratio": round(med(on) / med(off), 4),
        "ratio_paired_median": round(med(a / b for a, b in zip(on, off)), 4),
        "ratio_of_minima": round(min(on) / min(off), 4),
        "hooks_median_s": round(med(hooks), 4),
        "ratio_hooks_only": round((med(off) + med(hooks)) / med(off), 4),
        "setup_median_s": round(med(setup), 4),
        "final_median_s": round(med(final), 4),
        "ratio_with_setup_and_final": round((med(on) + med(setup) + med(final)) / med(off), 4),
        "same_final_loss": same,
        "target": 1.05,
        "gaps": gaps,
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--store", choices=["server", "sqlite"], default="server")
    p.add_argument("--repeats", type=int, default=21)
    p.add_argument("--epochs", type=int, default=50)
    p.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch intra-op threads (1: a busy shared machine stalls OpenMP teams far less)",
    )
    p.add_argument(
        "--path",
        choices=["loop", "trainable"],
        default="loop",
        help="loop: a core Trainer with the tracking callback; trainable: the study trainable's "
        "SeedGroup with the study's tracking hooks",
    )
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    print(json.dumps(run(args.store, args.repeats, args.epochs, args.path)))


if __name__ == "__main__":
    main()
