"""Seeded, stratified index selection shared by data sets and views."""

from __future__ import annotations

import numpy as np


def _by_class(labels: np.ndarray) -> list[np.ndarray]:
    return [np.flatnonzero(labels == c) for c in np.unique(labels)]


def stratified_split(
    labels: np.ndarray, fraction: float, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """(keep, take) index arrays, both sorted: round(fraction * n_c) of each class n_c go to `take`."""
    take = []
    for members in _by_class(np.asarray(labels)):
        k = int(round(fraction * len(members)))
        take.append(rng.permutation(members)[:k])
    taken = np.sort(np.concatenate(take)) if take else np.zeros(0, dtype=np.int64)
    keep = np.setdiff1d(np.arange(len(labels)), taken)
    return keep, taken


def per_class(labels: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """Sorted indices of `n` random members of every class; the caller checks there are enough."""
    picks = [rng.permutation(members)[:n] for members in _by_class(np.asarray(labels))]
    return np.sort(np.concatenate(picks)) if picks else np.zeros(0, dtype=np.int64)
