"""RR step vs Std step: time and peak-memory ratios, measured side by side in one process.

Prints one JSON line per model. Time: median over interleaved steps (std, rr, std, rr, ...).
Memory: weights and optimizer state plus the peak of live allocator bytes during one
step (profiler allocation events, CPU allocator), i.e. the step's real peak.

On a shared host the ratio of one process moves with the neighbours' load (ResNet-20: 2.0 to 2.4
between processes run back to back, elementwise passes suffer more than convolutions), so
`--processes N` measures each model in N fresh processes, one after another, and prints the
median of their ratios with every run's figure.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time

import torch

from racecar_study.core import MethodConfig, build_method
from racecar_study.core.allocator import retain_freed_memory
from racecar_study.models import build_model

MODELS = {
    "peak_mlp": dict(arch="peak_mlp", input_shape=(1, 28, 28), classes=2, batch=100),
    "resnet20": dict(arch="resnet20", input_shape=(3, 32, 32), classes=10, batch=128),
    # the same with RacecarNet.rebuild off: reverse chain outputs kept (faster, more memory)
    "resnet20_kept": dict(arch="resnet20", input_shape=(3, 32, 32), classes=10, batch=128, rebuild=False),
    # the same with RacecarNet.fuse off: every chain and term eager (core/fused.py unused)
    "resnet20_eager": dict(arch="resnet20", input_shape=(3, 32, 32), classes=10, batch=128, fuse=False),
}


def _setup(cfg, variant):
    torch.manual_seed(0)
    net = build_model(cfg["arch"], cfg["input_shape"], cfg["classes"])
    net.rebuild = cfg.get("rebuild", True)
    net.fuse = cfg.get("fuse", True)
    net.train()
    opt = torch.optim.Adam(net.parameters(), lr=1e-4)
    method = "std" if variant == "std" else "rr"
    m = build_method(MethodConfig(method, lam=1e-6, reduction="sum"))
    return net, opt, m


def _step(net, opt, method, x, y):
    out = method.step(net, x, y)
    opt.zero_grad(set_to_none=True)
    out.loss.backward()
    opt.step()


def _peak_bytes(net, opt, method, x, y) -> int:
    """Peak of live CPU-allocator bytes during one training step, from the profiler's allocation
    events in time order (what was allocated before the step, weights and optimizer state, is
    not part of it)."""
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        _step(net, opt, method, x, y)
    events = sorted(
        (e for e in prof.profiler.kineto_results.events() if e.name() == "[memory]"),
        key=lambda e: e.start_ns(),
    )
    live = peak = 0
    for e in events:
        live += e.nbytes()
        peak = max(peak, live)
    return peak


def measure(name, cfg, steps, warmup):
    shape = (cfg["batch"], *cfg["input_shape"])
    g = torch.Generator().manual_seed(0)
    x = torch.rand(shape, generator=g)
    y = torch.randint(0, cfg["classes"], (cfg["batch"],), generator=g)
    runs = {k: _setup(cfg, k) for k in ("std", "rr")}
    for net, opt, m in runs.values():  # compile fused kernels (core/fused.py) before the clock
        _step(net, opt, m, x, y)
    times = {k: [] for k in runs}
    for i in range(warmup + steps):
        for k, (net, opt, m) in runs.items():
            t0 = time.perf_counter()
            _step(net, opt, m, x, y)
            if i >= warmup:
                times[k].append(time.perf_counter() - t0)
    n_param = sum(p.numel() * p.element_size() for p in runs["std"][0].parameters())
    fixed = n_param * 3  # weights and Adam's two moments, held across steps
    mem = {k: fixed + _peak_bytes(net, opt, m, x, y) for k, (net, opt, m) in runs.items()}
    med = {k: statistics.median(v) for k, v in times.items()}
    return {
        "model": name,
        "batch": cfg["batch"],
        "threads": torch.get_num_threads(),
        "std_step_s": round(med["std"], 5),
        "rr_step_s": round(med["rr"], 5),
        "time_ratio": round(med["rr"] / med["std"], 3),
        "std_peak_mb": round(mem["std"] / 2**20, 2),
        "rr_peak_mb": round(mem["rr"] / 2**20, 2),
        "memory_ratio": round(mem["rr"] / mem["std"], 3),
        "targets": {"time_ratio": 2.0, "memory_ratio": 1.7},
    }


def across_processes(name: str, args: argparse.Namespace) -> dict:
    """The model measured in `args.processes` fresh processes: median ratios, and each run's."""
    argv = [
        sys.executable,
        __file__,
        "--models",
        name,
        "--steps",
        str(args.steps),
        "--warmup",
        str(args.warmup),
    ]
    argv += ["--release-memory"] if args.release_memory else []
    runs = [
        json.loads(subprocess.run(argv, check=True, capture_output=True, text=True).stdout)
        for _ in range(args.processes)
    ]
    out = dict(runs[0])
    for key in ("std_step_s", "rr_step_s", "time_ratio", "std_peak_mb", "rr_peak_mb", "memory_ratio"):
        out[key] = round(statistics.median(r[key] for r in runs), 5 if key.endswith("_s") else 3)
    out["processes"] = args.processes
    out["time_ratio_runs"] = [r["time_ratio"] for r in runs]
    out["memory_ratio_runs"] = [r["memory_ratio"] for r in runs]
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--models", nargs="*", default=list(MODELS))
    ap.add_argument(
        "--release-memory",
        action="store_true",
        help="leave glibc's thresholds as they are (the Trainer retains freed memory by default)",
    )
    ap.add_argument("--processes", type=int, default=1, help="fresh processes per model; the median counts")
    args = ap.parse_args()
    if args.processes > 1:
        for name in args.models:
            print(json.dumps(across_processes(name, args)), flush=True)
        return
    if not args.release_memory:
        retain_freed_memory()  # as the Trainer does (TrainConfig.retain_cpu_memory)
    for name in args.models:
        steps = args.steps if not name.startswith("resnet") else max(5, args.steps // 3)
        print(json.dumps(measure(name, MODELS[name], steps, args.warmup)), flush=True)


if __name__ == "__main__":
    main()
