"""Keep freed CPU memory in the process instead of handing it back to the OS every step (glibc).

glibc's malloc serves large blocks with mmap and gives free memory at the top of its heap back to
the OS, with thresholds it adapts as the program runs. An RR step frees and re-allocates large
activations in an order that defeats that adaptation: on ResNet-20 at batch 128 glibc returned
memory and the kernel faulted it back in, zeroed, on every step (5,000-40,000 minor page faults
and 60-70 ms of system time per step, where a Std step had none). With both thresholds fixed
high, freed blocks stay in the heap for the next step, as PyTorch's CUDA caching allocator keeps
GPU memory: no faults. The cost is that the resident size stays at its peak between steps.

Only glibc has `mallopt`; elsewhere (macOS, musl) this does nothing.
"""

from __future__ import annotations

import ctypes
import sys

M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
RETAIN_BYTES = 1 << 30  # keep up to 1 GiB free at the heap top; blocks below it come from the heap
MMAP_FALLBACK = 32 << 20  # the largest mmap threshold older glibc accepts on 64-bit

_retained = False


def retain_freed_memory() -> bool:
    """Fix glibc's trim and mmap thresholds for this process (idempotent). True when in effect."""
    global _retained
    if _retained:
        return True
    if not sys.platform.startswith("linux"):
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):  # no C library symbols, or not glibc
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    mmap_ok = mallopt(M_MMAP_THRESHOLD, RETAIN_BYTES) == 1 or mallopt(M_MMAP_THRESHOLD, MMAP_FALLBACK) == 1
    _retained = mmap_ok and mallopt(M_TRIM_THRESHOLD, RETAIN_BYTES) == 1
    return _retained
