"""Retaining freed CPU memory (core/allocator.py) stops RR steps from page-faulting their
activations back in. Measured in fresh processes: glibc's thresholds are per process and, once
fixed, stay fixed."""

import json
import subprocess
import sys
from subprocess import PIPE

import pytest

STEPS = r"""
import json, resource, sys, torch
from torch import nn
from racecar_study.core import MethodConfig, RacecarNet, build_method
from racecar_study.core.allocator import retain_freed_memory
retained = retain_freed_memory() if sys.argv[1] == "retain" else False
torch.set_num_threads(1)  # two of these run side by side
torch.manual_seed(0)
# One activation of 128 x 16 x 72 x 72 floats is 42 MB, above the 32 MiB that glibc's adaptive mmap
# threshold can rise to: by default each is mmapped, and faulted in afresh, every step. (ResNet-20's
# 8 MB activations fault too, but unevenly: steps 4-9 once summed to under 5,000 faults, and its
# compiled kernels took a minute to build cold.) The eager reverse pass: what this tests is the heap.
net = RacecarNet(
    nn.Sequential(
        nn.Conv2d(3, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(16, 10),
    ),
    fuse=False,
)
opt = torch.optim.Adam(net.parameters(), lr=1e-4)
method = build_method(MethodConfig("rr", lam=1e-6, reduction="sum"))
x, y = torch.rand(128, 3, 72, 72), torch.randint(0, 10, (128,))
faults = []
for _ in range(6):
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    out = method.step(net, x, y)
    opt.zero_grad(set_to_none=True)
    out.loss.backward()
    opt.step()
    faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
print(json.dumps({"retained": retained, "faults": faults[2:]}))  # steps 3-6: the heap grows before
"""


def _faults(*modes: str) -> list[dict]:
    """Each mode in its own process, all at once: faults are counted per process, and the suite
    waits for one process's time instead of the sum."""
    procs = [
        subprocess.Popen([sys.executable, "-c", STEPS, m], stdout=PIPE, stderr=PIPE, text=True) for m in modes
    ]
    outs = [p.communicate() for p in procs]
    for p, (_, err) in zip(procs, outs):
        assert p.returncode == 0, err[-3000:]
    return [json.loads(out.strip().splitlines()[-1]) for out, _ in outs]


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt: Linux only")
def test_retained_memory_stops_rr_steps_page_faulting():
    default, retained = _faults("default", "retain")
    if not retained["retained"]:
        pytest.skip("this C library has no mallopt (not glibc)")
    # Each sum leaves out its process's largest step: the retained heap can still grow by a few
    # tensors once after the warm-up, while the default faults every step.
    runs = {"default": default["faults"], "retained": retained["faults"]}
    spent = {mode: sum(faults) - max(faults) for mode, faults in runs.items()}
    if spent["default"] < 5_000:
        pytest.skip(f"this glibc keeps RR activations by itself ({default['faults']} faults per step)")
    # Measured, steps 3-6 at one thread: 220,000-224,000 faults a step by default, 0 retained.
    assert spent["retained"] <= spent["default"] / 10, (default, retained)
