"""Fashion-MNIST (70k images) from the warm Arrow cache vs torchvision's own IDX reader.

Both end as float32 tensors in [0, 1]; the cache side includes its full checksum pass over the
mapped file. Runs interleave so a busy machine slows both alike. Also times cold builds of a
view (three classes, random rotation): on the cached base set, as every trial of a study after
the first sees it, and from the source files with nothing cached. Prints JSON; targets:
ratio <= 0.25, cold view < 5 s.

    .venv/bin/python benchmarks/data_load.py [--root /usr/share/datasets/fashion-mnist] [--repeats 5]
"""

from __future__ import annotations

import argparse
import gc
import gzip
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

from racecar_study.data import load_dataset

VIEW = {"classes": [0, 1, 2], "transform": [{"rotate": [-30, 30]}]}


def _timed(fn) -> float:
    gc.collect()
    start = time.perf_counter()
    result = fn()
    elapsed = time.perf_counter() - start
    del result
    return elapsed


def _torchvision_layout(root: Path, tmp: Path) -> Path:
    """root's IDX files, un-gzipped into <tmp>/tv/FashionMNIST/raw/ (what torchvision looks for)."""
    raw = tmp / "tv" / "FashionMNIST" / "raw"
    raw.mkdir(parents=True)
    for gz in root.glob("*-ubyte.gz"):
        (raw / gz.stem).write_bytes(gzip.decompress(gz.read_bytes()))
    return tmp / "tv"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", default="/usr/share/datasets/fashion-mnist", help="IDX .gz folder")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    root = Path(args.root)
    if not (root / "train-images-idx3-ubyte.gz").is_file():
        print(f"no Fashion-MNIST in {root}: apt-get install dataset-fashion-mnist", file=sys.stderr)
        return 2
    from torchvision.datasets import FashionMNIST

    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        tv_root, cache_dir = _torchvision_layout(root, tmp), tmp / "cache"

        def ours():
            return load_dataset("fashion_mnist", root=str(root), cache_dir=cache_dir)

        def theirs():
            train, test = (FashionMNIST(str(tv_root), train=t, download=False) for t in (True, False))
            return [(d.data.float().div_(255).unsqueeze_(1), d.targets.long()) for d in (train, test)]

        cold_full = _timed(ours)
        s, tv = ours(), theirs()  # warm both, and check they agree
        assert torch.equal(s.x_train, tv[0][0]) and torch.equal(s.y_test, tv[1][1]), "readers disagree"
        del s, tv
        ours_s, theirs_s = [], []
        for _ in range(args.repeats):
            theirs_s.append(_timed(theirs))
            ours_s.append(_timed(ours))

        def view(folder: Path):
            return load_dataset("fashion_mnist", root=str(root), cache_dir=folder, **VIEW)

        cold_view = _timed(lambda: view(cache_dir))
        cache_mb = sum(p.stat().st_size for p in cache_dir.iterdir()) / 2**20
        cold_source = _timed(lambda: view(tmp / "fresh"))

    ours_med, theirs_med = statistics.median(ours_s), statistics.median(theirs_s)
    report = {
        "dataset": "fashion_mnist (70,000 images, float32 1x28x28)",
        "cache_load_median_s": round(ours_med, 4),
        "torchvision_median_s": round(theirs_med, 4),
        "ratio_cache_over_torchvision": round(ours_med / theirs_med, 3),
        "target_ratio": 0.25,
        "cache_load_s": [round(t, 4) for t in ours_s],
        "torchvision_s": [round(t, 4) for t in theirs_s],
        "cold_full_build_s": round(cold_full, 3),
        "cold_view": VIEW,
        "cold_view_build_s": round(cold_view, 3),
        "cold_view_from_source_s": round(cold_source, 3),
        "target_cold_view_s": 5.0,
        "cache_files_mb": round(cache_mb, 1),
        "meets_targets": ours_med / theirs_med <= 0.25 and max(cold_view, cold_source) < 5.0,
        "cpus": os.cpu_count(),
        "load_average_1min": round(os.getloadavg()[0], 2),
        "torch_threads": torch.get_num_threads(),
    }
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
