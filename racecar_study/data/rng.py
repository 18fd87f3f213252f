"""Seeded random streams, one per purpose, never the global RNG.

Each purpose (a split of a generated set, a view, a transform step) gets its own stream derived
from (seed, tags), so adding a view does not shift the random numbers of another.
PCG64 with SeedSequence is bit-for-bit identical on every platform.
"""

from __future__ import annotations

import hashlib

import numpy as np


def _tag_word(tag: object) -> int:
    return int.from_bytes(hashlib.sha256(str(tag).encode()).digest()[:8], "little")


def generator(seed: int, *tags: object) -> np.random.Generator:
    """A numpy Generator for `seed` and a purpose named by `tags`."""
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence([seed, *map(_tag_word, tags)])))
