"""The MNIST two-image SVD test (METHOD.md) against the initial weight scale.

784 -> 10 linear layer, Adam lr 1e-4, batch 2, 1000 epochs, lambda 1e-5 (sum), Ort weight 0.1,
seeds 0-2. For each initialisation and method, prints the best |cosine| between the top-2 right
singular vectors of W and each training digit (the 0, the 1). RR pulls the singular values along
the digits towards 1: below 1 at the start (PyTorch's default) the digits become the top vectors;
above 1 (std 0.1) RR shrinks them and the top vectors are the noise.

    .venv/bin/python benchmarks/mnist2_init_scale.py [--epochs 1000] [--seeds 3]
"""

from __future__ import annotations

import argparse
import json

import numpy as np
import torch

from racecar_study.core import MethodConfig, TrainConfig, Trainer, build_method
from racecar_study.core.analysis import first_layer_svd
from racecar_study.data import load_dataset
from racecar_study.models import build_model

INITS = ("default", 0.05, 0.1)  # PyTorch's default, or a truncated normal of this std (bias 0)
METHODS = (("std", 0.0), ("ort", 0.0), ("rr", 1e-5))


def best_cosines(init, method: str, lam: float, epochs: int, seed: int, splits, digits) -> list[float]:
    torch.manual_seed(seed)
    net = build_model("linear", splits.input_shape, 10)
    if init != "default":
        layer = next(m for m in net.modules() if isinstance(m, torch.nn.Linear))
        with torch.no_grad():
            torch.nn.init.trunc_normal_(layer.weight, std=init, a=-2 * init, b=2 * init)
            layer.bias.zero_()
    cfg = MethodConfig(method, lam=lam, reduction="sum", ort_weight=0.1)
    train = TrainConfig(epochs=epochs, batch_size=2, lr=1e-4, seed=seed)
    Trainer(net, build_method(cfg), train).fit((splits.x_train, splits.y_train))
    vectors = first_layer_svd(net, input_shape=splits.input_shape).right_vectors[:2]
    return [round(float(c), 3) for c in np.abs(vectors @ digits.T).max(0)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=1000)
    ap.add_argument("--seeds", type=int, default=3)
    args = ap.parse_args()
    torch.set_num_threads(1)
    splits = load_dataset("mnist2")
    digits = splits.x_train.flatten(1).double().numpy()
    digits /= np.linalg.norm(digits, axis=1, keepdims=True)
    for init in INITS:
        for method, lam in METHODS:
            runs = [
                best_cosines(init, method, lam, args.epochs, s, splits, digits) for s in range(args.seeds)
            ]
            print(json.dumps({"init": init, "method": method, "best_abs_cos_0_1": runs}), flush=True)


if __name__ == "__main__":
    main()
